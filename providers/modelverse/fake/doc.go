// Package fake is a strict fake of UCloud Modelverse's image API (POST /v1/images/generations)
// for the FLUX.1-dev / FLUX.1 Kontext / Step1X-Edit family, built from seed 004 and
// ../shared/PROVIDERS.md §3.2 and §7, for tests, the simulator (cmd/imagegw-sim) and benchmarks.
// It never reaches the network.
//
// It is as strict as the real API where the documents say how it behaves, and stricter where
// they do not (marked [INFER]):
//   - Auth: "Authorization: Bearer <key>"; anything else is a 401 auth_error envelope
//     ("Validate Certification failed").
//   - JSON only: multipart and other bodies are a 400 param_error [INFER: message].
//   - Models under both spellings (seed ids and the renamed lower-case ids with '/' suffixes);
//     any other model is a 400 model_error ("No permission to use the model").
//   - Per-model fields exactly as seed 004 lists them: n 1–4 only on FLUX.1-dev and the
//     text2image models (n=1 is tolerated elsewhere); image optional on FLUX.1-dev, required on
//     Kontext and Step1X; images[] required on the multi models (at most 10 [INFER]); size
//     WxH within [256x256, 1536x1536] only on FLUX.1-dev; strength 0–1 only on FLUX.1-dev;
//     aspect_ratio 21:9 … 9:21 on the text2image and multi models; steps 1–50 on FLUX.1-dev and
//     Step1X; negative_prompt on Step1X; seed −1 … 2147483647 and guidance_scale 1–10 on all. A
//     field the model does not take, an unknown field, a wrong type or a value out of range is a
//     400 param_error [INFER: the real API may ignore unknown fields].
//   - Fields left out take seed 004's defaults, not the gateway catalog's: n 1, size 1024x1024
//     on FLUX.1-dev, aspect_ratio 1:1 on text2image; a single-image edit keeps its input's size.
//     No seed, or seed −1, gives each image a random seed (seed 004: "如果不提供，则自动生成随机
//     种子"); a fixed seed s gives the images of one call seeds s, s+1, … [INFER].
//   - Errors are {"error":{"message","type","param":<request id>,"code"}}; the request id is
//     also sent as X-Request-Id [INFER].
//   - Answers {"created","data":[{"url"}|{"b64_json":"data:image/png;base64,…"}],"usage":
//     {"input_tokens_details":{}}}: b64_json carries the data: prefix, as the real API does.
//   - Images are PNG, deterministic per seed, served by the fake under /image/… with a signed
//     query (Expires=…&Signature=…) that stops working after 7 days (Options.URLTTL) on the
//     fake's clock (Options.Now).
//
// A prompt containing "fake:sensitive" gets a 400 sensitive_check_error, simulating the content
// filter. Every request passes through Script first, so tests can script faults.
package fake
