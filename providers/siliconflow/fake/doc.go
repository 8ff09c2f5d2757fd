// Package fake is a strict fake of SiliconFlow's image API (POST /v1/images/generations) for
// tests, the simulator (cmd/imagegw-sim) and benchmarks. It never touches the network beyond the
// listener it is served on.
//
// It checks "Authorization: Bearer <key>" (answering the bare JSON string "Invalid token" with
// 401), a JSON content type, and each model's own schema from PROVIDERS.md §1.2: image_size
// required (it is marked so; only the Qwen-Image-Edit models refuse it), its lists or free-form
// bounds (seed 000's custom resolutions for FLUX.1-schnell, SD 3.5 and SD 2.1), batch_size 1–4
// where the model has it, num_inference_steps ranges with the documented default of 20 when
// absent, the fixed 4 steps of FLUX.1-schnell, Pro/FLUX.1-schnell and SD 3.5 large turbo (any
// other value is a 20015), guidance_scale 0–20, cfg 0.1–20 (Qwen-Image), image/image2/image3,
// seed 0…9 999 999 999. Validation failures answer 400 {"code":20015,…} ("image_size: Field
// required" for a missing size); an unknown model 400 {"code":20012,…}. LastGeneration reports
// the size, steps, count and seed an accepted request ran with, defaults applied.
//
// Success answers {"images":[{"url"}],"timings":{"inference"},"seed","shared_id"} with an
// x-siliconcloud-trace-id header. The URLs point back at the fake (GET /outputs/…), carry an
// OSS-style signed query (OSSAccessKeyId, Expires, Signature: "&" arrives as \u0026 because the
// body is encoded by encoding/json), serve real PNG bytes deterministic per size, seed and index,
// and expire after one hour (Options.URLTTL, Options.Now).
//
// Faults: every request first passes Fake.Script (providertest), so tests can script statuses,
// delays, truncation, resets and the vendor's own error bodies. Mount it under a prefix with
// http.StripPrefix and set Options.PublicURL to the prefixed address.
package fake
