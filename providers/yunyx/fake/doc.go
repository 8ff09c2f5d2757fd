// Package fake is a strict fake of yunyx's image API (POST /v1/images/generations, seed 003)
// for tests, the simulator (cmd/imagegw-sim) and benchmarks.
//
// It checks "Authorization: Bearer <key>", a JSON content type, the two models
// (FLUX.1-schnell, stable-diffusion-3-5-large), the required image_size (400 "image_size: Field
// required" without it) from its six-value enum, prompt_enhancement (a boolean; false when
// absent) and seed 0…9 999 999 999 (random when absent), and refuses every other field
// (batch_size, negative_prompt, num_inference_steps, guidance_scale, image, …) with a 400.
// LastGeneration reports the size, count and seed an accepted request ran with. Success answers
// {"images":[{"url"}],"timings":{"inference"},"seed"}; the URLs point back at the fake
// (GET /outputs/…), carry a signed query whose "&" arrives as \u0026, serve real PNG bytes and
// expire after one hour (Options.URLTTL, Options.Now).
//
// yunyx documents no error bodies; the fake answers SiliconFlow's (401 "Invalid token", 400
// {"code":20015,…}) and 404 {"code":20012,…} for an unknown model, per seed 003's "404 模型不存在"
// (PROVIDERS.md §4.5 [INFER]).
//
// Every request first passes Fake.Script, so tests can script faults. Mount it under a prefix with
// http.StripPrefix and set Options.PublicURL to the prefixed address.
package fake
