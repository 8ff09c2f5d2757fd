// Package siliconflow is the adapter for SiliconFlow (SiliconCloud), a Chinese model host whose
// image API is POST {base}/images/generations with a JSON body (PROVIDERS.md §1, seed 000).
//
// # Upstream
//
//   - Base URL: https://api.siliconflow.cn/v1 (mainland, DefaultBaseURL) or
//     https://api.siliconflow.com/v1 (international). Keys of the two sites are not
//     interchangeable; a key used on the wrong site answers 401.
//   - Auth: "Authorization: Bearer <key>". Env: SILICONFLOW_API_KEY, SILICONFLOW_BASE_URL.
//   - Docs: https://docs.siliconflow.cn/cn/api-reference/images/images-generations,
//     https://docs.siliconflow.cn/en/userguide/capabilities/images,
//     https://docs.siliconflow.com/en/faqs/error-code.
//
// # Translation
//
//   - size → image_size "WxH", checked against the model's list or free-form bounds. It is always
//     sent (PROVIDERS.md §1.2 marks it required): a request without a size gets the model's
//     Size.Default, the size billing prices, so the upstream never picks one of its own.
//     Janus-Pro-7B ignores the value and always outputs 384x384; it is sent 384x384. The
//     Qwen-Image-Edit models take no image_size (the output follows the input) and are priced
//     per image, so no size is billed for them. Aspect ratios are refused.
//   - Seed 000 §2 says resolutions can be customised, and its §3 example prices 1024x512 on SD 3.5
//     large turbo: the models whose reference lists six sizes (FLUX.1-schnell, SD 3.5 large and
//     large turbo, SD 2.1) take any WxH with sides 512–1024 in multiples of 64 (the envelope of
//     their lists, an assumption); the "or others" models keep their documented free-form rule.
//   - n → batch_size on the models that have it (SD family, Kolors: MaxN 4); elsewhere MaxN is 1
//     and the front door fans out.
//   - steps → num_inference_steps, sent on every model that takes it: the request's steps, else
//     the model's DefaultSteps (20), which billing prices. FLUX.1-schnell, Pro/FLUX.1-schnell and
//     SD 3.5 large turbo always run 4 steps (FixedSteps 4): the field is omitted for them (it is
//     not in the FLUX.1-schnell schema), and a steps value other than 4 is refused.
//   - guidance_scale (SD family, Kolors, 0–20); Qwen/Qwen-Image takes "cfg" (0.1–20) instead,
//     which clients pass as the extension field Extra["cfg"].
//   - seed is int64: 0 … 9 999 999 999.
//   - Reference images travel inline as data URIs: image for image-to-image on SDXL, SD 2.1 and
//     Kolors (OpGenerate with ParamReferenceImage); image, image2, image3 for Qwen-Image-Edit-2509.
//   - Qwen/Qwen-Image-Edit and Qwen-Image-Edit-2509 are OpEdit models (instruction edits, like
//     OpenAI's /v1/images/edits without a mask): they need an image, refuse image_size (the output
//     follows the input, so Width/Height stay unknown) and refuse a mask (KindUnsupported,
//     param "mask"). No SiliconFlow model takes a mask.
//   - Quality, style, strength, background, output format/compression, moderation and user have no
//     place on this wire and are refused with KindUnsupported naming them.
//   - Models added by configuration (not in the catalog) get everything the wire can carry passed
//     on unchecked; the upstream judges it. Their default size and steps live in the configuration,
//     which the adapter does not see, so nothing is filled in for them.
//
// # Answers and quirks
//
// Success is {"images":[{"url"}],"timings":{"inference"},"seed"}: URLs only (no b64 option), valid
// for one hour (Output.Expires), no created time (Result.Created stays zero), one seed for the
// whole call (set on every image, parsed as int64 since it can exceed int32), the request id in
// the x-siliconcloud-trace-id header (Result.UpstreamRequestID). Signed URLs contain "&", which
// the upstream's JSON encodes as \u0026; decoding restores it. Error answers and their kinds are
// listed on parseError; the 401 body is a bare string, not an object.
//
// Prices: seed 000 §3 gives two (¥0.0032 per megapixel-step for SD 3.5 large turbo, ¥0.37 per
// image for FLUX.1-pro), whose Price.Source is "seed 000"; every other price in catalog.go is an
// assumption (Source providers.Assumed).
package siliconflow
