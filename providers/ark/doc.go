// Package ark is the adapter for Volcengine Ark (火山方舟), the upstream of ByteDance's Doubao
// Seedream and SeedEdit image models. It registers the provider type "ark".
//
// Upstream: POST {base}/images/generations with base DefaultBaseURL
// (https://ark.cn-beijing.volces.com/api/v3; the BytePlus twin is
// https://ark.ap-southeast.bytepluses.com/api/v3 with model ids lacking the "doubao-" prefix).
// Auth is "Authorization: Bearer <ARK_API_KEY>"; bodies are JSON only. Wire format, errors and
// quirks: ../shared/PROVIDERS.md §3.1; official Go SDK: github.com/volcengine/volcengine-go-sdk,
// service/arkruntime; error codes: https://www.volcengine.com/docs/82379/1299023.
//
// How the canonical request maps:
//   - There is no count field: every model has MaxN 1 and the front door fans larger n out.
//   - Width×Height becomes size "WxH". Each model has its own vocabulary (3.0-t2i: sides
//     512–2048; 4.0: 921,600–16,777,216 pixels; 4.5 and 5.0: 3,686,400–16,777,216 pixels;
//     aspect 1:16–16:1 for 4.x/5.0); the symbolic "1K/2K/4K" sizes are not exposed. A request
//     without a size sends the model's default (Model.Size.Default: 1024x1024 on 3.0-t2i,
//     2048x2048 on 4.x/5.0), so what billing prices is what the upstream is asked for.
//   - SeedEdit 3.0 (doubao-seededit-3-0-i2i-250628) is an edit without mask: exactly one JPEG or
//     PNG image and an instruction; it takes no size (the adapter sends size "adaptive") and an
//     explicit size is refused.
//   - Seedream 4.0/4.5/5.0 take reference images on generate (up to 10/14/14) and also serve
//     edits without mask; 3.0-t2i refuses any image.
//   - Input images go inline as data URIs in "image" (a string for one, an array for several).
//   - seed (−1 … 2147483647, −1 = random, seed 004) and guidance_scale (1 … 10) exist only on
//     3.0-t2i and SeedEdit; output_format (jpeg|png) only on 5.0. A seed of −1 is sent as is and
//     never echoed on the images.
//   - watermark: the upstream default is true. The adapter always sends watermark=false unless
//     the request's Extra["watermark"] is the JSON value true. "watermark" is the only Extra key.
//   - response_format url|b64_json is passed through as a hint. Images are JPEG unless
//     output_format says png; the content type of returned bytes is sniffed.
//
// The answer is {"model","created":<unix>,"data":[{"url"|"b64_json","size":"WxH"}],"usage"}.
// URLs are signed and valid 24 hours (Output.Expires = created + 24 h). A data item with
// "error" is an image that failed; it is skipped, and when every image failed the call fails
// with the first item's error kind.
//
// Errors use {"error":{"code","message","param","type"}}: param and type are sometimes empty and
// the request id is embedded in the message ("Request id: …"). Each call sends a fresh
// X-Client-Request-Id, which Ark echoes; it becomes Result.UpstreamRequestID and appears in error
// logs. Codes: InvalidParameter/MissingParameter → invalid request (Param when the upstream names
// a known field); *SensitiveContentDetected* and *RiskDetection → content policy;
// AuthenticationError, AccountOverdueError, AccessDenied → upstream auth;
// InvalidEndpointOrModel.*, InvalidEndpoint.*, ModelNotOpen → model not found;
// RateLimitExceeded.*, QuotaExceeded.* → upstream rate limited (Retry-After honoured); 5xx →
// unavailable. Streaming (SSE) and group generation (sequential_image_generation) are not used.
//
// A model id outside the built-in catalog (an "ep-…" endpoint id, or a model added in config) is
// passed through with the checks the wire format itself imposes.
//
// What this adapter does exactly as the Modelverse adapter does (the authenticated JSON POST, the
// decoding of data[] answers, the plumbing of the error envelope, the checks every request
// passes) lives in providers/internal/arkwire, and the skeleton of the fake in
// providers/internal/arkwire/arkfake; what is Ark's own stays here.
package ark
