// Package sffake is the engine behind the SiliconFlow and yunyx fake upstreams
// (providers/siliconflow/fake, providers/yunyx/fake): one strict implementation of
// POST /v1/images/generations driven by a per-vendor Spec (its models and their rules), plus the
// signed, expiring image URLs the fake serves itself.
//
// What it reproduces (PROVIDERS.md §1, §4 and the §7 checklist):
//   - "Authorization: Bearer <key>" checked first; a wrong or missing key answers 401 with the bare
//     JSON string "Invalid token".
//   - Only application/json bodies; the model's own rules for every field (image_size required
//     and within its list or bounds, batch_size 1–4, num_inference_steps ranges and fixed-step
//     models, guidance_scale, cfg, prompt_enhancement, image/image2/image3, seed
//     0…9 999 999 999), answered with 400 {"code":20015,"message":"<field>: …","data":null}; an
//     unknown model with {"code":20012,…} (status per vendor). Optional fields left out get the
//     vendor's documented default (ModelSpec.DefaultSteps, batch_size 1, a random seed), never
//     one of the gateway's catalog; Server.LastGeneration reports what was run.
//   - Success as {"images":[{"url"}],"timings":{"inference"},"seed"} encoded by encoding/json, so
//     the "&" of the signed URLs arrives as \u0026, with seeds beyond int32 when none is given.
//   - GET on the image URLs returns real PNG bytes (deterministic per size, seed and index) until
//     the URL expires (1 hour by default, on a configurable clock); then 403 with an
//     object-storage style XML body. A tampered URL fails its signature check the same way.
//
// Assumptions beyond the vendor documents are marked in the code: the wording of 20015 messages
// (the field name first), the content-safety rejection (a prompt containing UnsafeMarker), and
// that fields a model's schema lacks are refused rather than ignored (stricter than the real API
// may be, so adapter mistakes surface in tests).
package sffake
