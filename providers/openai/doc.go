// Package openai is the adapter for OpenAI's Images API ("openai") and for any host that speaks
// it ("openai-compatible", such as the aggregator of seed 001).
//
// # OpenAI
//
// Base URL https://api.openai.com/v1 (DefaultBaseURL); auth "Authorization: Bearer <key>", with
// the optional OpenAI-Organization and OpenAI-Project headers from the channel options
// "organization" and "project". Endpoints (PROVIDERS.md §5):
//
//   - POST /images/generations, JSON: dall-e-2, dall-e-3, gpt-image-1, gpt-image-1-mini.
//   - POST /images/edits, multipart: dall-e-2 (exactly one square PNG under 4 MB) and gpt-image
//     (up to 16 PNG/JPEG/WebP images under 50 MB each). One image is sent as the part "image",
//     several as repeated "image[]" parts; the optional "mask" (a PNG under 4 MB, same size as the
//     first image, alpha 0 = edit) follows; scalars are text parts. File parts carry the image's
//     own Content-Type (gpt-image refuses application/octet-stream) and a filename the adapter
//     makes up, never the client's.
//   - POST /images/variations, multipart: dall-e-2 only, one square PNG under 4 MB, no prompt.
//
// Quirks the adapter handles:
//   - dall-e-3 makes one image per call (its MaxN is 1; the front door fans out).
//   - gpt-image models always answer base64 and reject response_format with 400
//     unknown_parameter, so the field is never sent to them (nor to any model id the adapter does
//     not recognise as dall-e). For dall-e the client's response_format is passed on, saving a
//     download when it wants b64_json.
//   - dall-e URLs expire 60 minutes after creation; Output.Expires says when.
//   - Width and height zero mean "auto" (gpt-image) or the model's default (dall-e): no size is
//     sent. Quality and style "auto" are not sent either.
//   - Extension field (Request.Extra): "input_fidelity" ("high" or "low") on gpt-image-1 edits.
//     Any other Extra key is refused with KindUnsupported naming it.
//   - b64_json is decoded straight from the response bytes (no intermediate string), any
//     "data:...;base64," prefix stripped, and the content type sniffed from the bytes.
//   - gpt-image answers echo what they did: top-level background, output_format, quality and
//     size (the ones chosen when the request said "auto") and the call's token usage. They
//     become Result.Reported (from any OpenAI-compatible host that sends them too); the size is
//     also each Output's size. Values that are not short lower-case words, "auto", sizes that do
//     not parse and negative token counts are dropped as not reported.
//
// Streaming (providers.Streamer, PROVIDERS.md §5.5): gpt-image generations and edits can be sent
// with "stream": true and partial_images 1–3 (multipart text parts "true" and the number for
// edits). The answer is text/event-stream: "image_generation.partial_image" /
// "image_edit.partial_image" events are decoded and handed to the caller as they arrive; the
// "….completed" events, in order, make the Result (and their quality, background, output_format
// and usage the StreamDetails; Result.Reported combines them: usage summed, settings where all
// events agree); an "error" event (or any event whose data has an "error" member,
// as the SDKs read them) is classified like an error answer. Each event is capped at the channel's
// response cap and the stream at that cap times partial_images+1. A stream cut after some images
// completed delivers those; cut before, it is a transport error. An error status, or a host that
// answers JSON despite the flag, is read as Generate or Edit would read it.
//
// Errors arrive in OpenAI's envelope {"error":{"message","type","param","code"}} (param and code
// may be null). Mapping: 401/403 → KindUpstreamAuth; 429 rate_limit_exceeded →
// KindUpstreamRateLimited with Retry-After (or retry-after-ms); 429 insufficient_quota (and the
// billing_* codes) → KindUpstreamAuth, because our account cannot pay: a provider fault an
// operator must fix, where retrying later is pointless and failing over to another channel is
// right; content_policy_violation and moderation_blocked → KindContentPolicy; 400
// unknown_parameter (or unsupported_parameter) naming a parameter → KindUnsupported with Param;
// any other 400 → KindInvalidRequest with Param when the upstream names one (image[] → image,
// num_inference_steps → steps, width/height → size); 404 → KindModelNotFound; 5xx →
// KindUpstreamUnavailable. Messages are written here; the upstream's own message is kept only in
// Error.Err for logs, with the API key scrubbed (OpenAI's 401 echoes part of it).
//
// # OpenAI-compatible hosts
//
// CompatibleName registers a channel type for hosts that speak the same API with seed 001's
// extension fields: width/height (multiples of 8), negative_prompt, num_inference_steps,
// guidance_scale and seed. It has no default base URL (config must give one, including the
// version path) and only generates. Its catalog is seed 001's six models (flux-1.1-pro,
// flux-dev, flux-schnell, stable-diffusion-xl, dall-e-3, midjourney-v6) with generic
// capabilities and no prices (seed 001 quotes none). Options:
//
//   - size_field: "width_height" (default, as seed 001), "size" ("WxH" as OpenAI) or "both".
//   - extensions: comma-separated subset of negative_prompt, seed, num_inference_steps,
//     guidance_scale that the host takes (default all four; "none" for none). The catalog
//     advertises exactly these, so the front door refuses the rest with a 400.
//   - response_format: "true" to pass the client's response_format on (default false).
//   - max_n: images per call with "n" (default 1, so the front door fans out).
//   - url_ttl: lifetime of the host's image URLs as a Go duration (default unknown).
//   - organization, project: as for OpenAI.
//
// The answer's data[].url or data[].b64_json are both understood; created may be Unix seconds or
// an ISO-8601 string; a seed in the answer (per item or top level) is reported, else the seed
// that was sent.
//
// Docs: https://platform.openai.com/docs/api-reference/images (archived copies in PROVIDERS.md,
// sources S25–S29, S46); seed 001 for the compatible host.
package openai
