// Package modelverse is the adapter for UCloud Modelverse (api.modelverse.cn), an
// OpenAI-compatible model marketplace that resells FLUX.1 [dev], FLUX.1 Kontext [pro]/[max] and
// Step1X-Edit (and Seedream and gpt-image-1, not in the built-in catalog). It registers the
// provider type "modelverse".
//
// Upstream: POST {base}/images/generations with base DefaultBaseURL
// (https://api.modelverse.cn/v1), "Authorization: Bearer <key>", JSON bodies. Wire format and
// errors: seed 004 (UCloudDoc-Team/modelverse api_doc/image-generation.md @ f6c4c45) and
// ../shared/PROVIDERS.md §3.2; per-model pages under api_doc/image_api/ in the same repository.
//
// Model ids contain '/' and exist in two spellings: the seed's ("black-forest-labs/FLUX.1-dev",
// "…/Flux-Kontext-Pro-multi", "stepfun-ai/Step1X-Edit") and the lower-case ids Modelverse
// renamed them to ("black-forest-labs/flux.1-dev", "…/flux-kontext-pro/multi",
// "…/flux-kontext-pro/text-to-image", "stepfun-ai/step1x-edit"). Both are in the catalog and
// sent exactly as given; they name one upstream model (UpstreamModel maps either to the seed's).
//
// Free quotas: seed 004 gives each model free images (FLUX.1-dev 10, every other model 5). They
// are a trial quota of the Modelverse account that holds the channel's key, shared by every
// request sent with it and by both spellings of a model; they lower the operator's cost, not a
// key's price. The catalog states them once per upstream model (see upstreams in catalog.go) and
// carries them in Price.FreeImages on both spellings. Prices: none is documented; every one is
// providers.Assumed.
//
// Each model takes its own fields, exactly as the seed lists them:
//   - FLUX.1-dev: generate; n 1–4; size WxH with sides 256–1536; one optional reference image
//     ("image") with strength 0–1 (strength without an image is refused); steps 1–50.
//   - Kontext Pro/Max: edit without mask; exactly one image ("image"); no size (the output
//     follows the input).
//   - Kontext Pro/Max multi: edit without mask; one or more images ("images", up to 4, an
//     assumption); aspect_ratio 21:9 … 9:21.
//   - Kontext Pro/Max text2image: generate; n 1–4; aspect_ratio 21:9 … 9:21 only.
//   - Step1X-Edit: edit without mask; exactly one image; steps 1–50; negative_prompt.
//   - All: seed −1 … 2147483647 (−1 = random, never echoed on the images) and guidance_scale
//     1–10.
//
// What billing prices is what is sent: a request that leaves them out gets the seed's defaults
// written on the wire (n 1 where n exists; size 1024x1024 on FLUX.1-dev; steps 28 on FLUX.1-dev
// and Step1X; aspect_ratio 1:1 on text2image). Where the upstream picks the pixels itself (an
// aspect ratio, an edit that follows its input) billing prices an estimated size.
//
// Input images go inline as data URIs. response_format is sent only for FLUX.1-dev (the later
// revision of the docs lists it only there); other models answer with URLs that the front door
// downloads. b64_json comes back prefixed with "data:image/png;base64,", which is stripped. URLs
// are valid 7 days (Output.Expires = created + 7 days). The model takes no Extra keys.
//
// Errors use {"error":{"message","type","param","code"}} where param is the request id, never a
// parameter name: it goes to the log error only. Codes: param_error/invalid_messages → invalid
// request (without Param), tokens_too_long → invalid request on prompt, sensitive_check_error →
// content policy, model_error ("No permission to use the model") → model not found, auth_error →
// upstream auth, rate_limit → upstream rate limited (Retry-After honoured), timeout and
// gateway_timeout_error → upstream timeout, internal_error/model_server_error → unavailable.
//
// A model id outside the built-in catalog is passed through with the checks the wire format
// itself imposes ("image" for one input image, "images" for several; no response_format).
//
// What this adapter does exactly as the Ark adapter does (the authenticated JSON POST, the
// decoding of data[] answers, the plumbing of the error envelope, the checks every request
// passes) lives in providers/internal/arkwire, and the skeleton of the fake in
// providers/internal/arkwire/arkfake; what is Modelverse's own stays here.
package modelverse
