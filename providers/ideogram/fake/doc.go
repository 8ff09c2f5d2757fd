// Package fake is a strict fake of Ideogram's API (legacy and 3.0) for tests, the simulator
// (cmd/imagegw-sim) and benchmarks. It never reaches the network.
//
// It serves Ideogram's own paths: POST /generate (JSON {"image_request": …}), /remix and /upscale
// (multipart with an image_request JSON text part and image_file), /edit and /reframe (flat
// multipart), /describe, and /v1/ideogram-v3/{generate,remix,edit,reframe,replace-background}
// (multipart with image, magic_prompt, "16x9" ratios and the 3.0 resolution list). Mount it under
// /ideogram with http.StripPrefix to play AiHubMix.
//
// Like the real API it checks the Api-Key header (401, and 403 on /remix, /upscale and 3.0 remix,
// with {"error": "..."}); the content type (JSON for /generate, multipart elsewhere; 3.0 generate
// takes both); required fields, unknown fields, enums (models, resolutions, aspect ratios,
// rendering speeds, magic prompt, style types and presets, palettes), ranges (num_images 1-8, seed
// 0-2147483647, image_weight/resemblance/detail 1-100) and per-model rules (/edit only V_2 and
// V_2_TURBO; resolution and style_type not with V_1; negative_prompt not with V_2A; color_palette
// not with V_1 or V_2A); and seed 002's mask rules (only black and white pixels, exactly the
// image's size, not all white). Every 4xx answer is {"error": "<message>"}.
//
// Answers have Ideogram's shape: created as an ISO-8601 string, data[] items with prompt (prefixed
// "Enhanced: " to play MagicPrompt), resolution, is_image_safe, seed, url and style_type, and
// upscaled_resolution on upscale. Fields left out take Ideogram's documented defaults (model V_2,
// aspect ratio 1:1 rendered at 1024x1024, num_images 1, describe_model_version V_3), never the
// gateway catalog's. As upstream, a seeded call of several images gives every image that seed and
// so the same picture (seed 002: "单次生成多张图时不要使用 seed,否则会生成相同图像"); without a seed
// each image gets its own. A prompt containing UnsafeTrigger gets its first image back with
// is_image_safe=false and no url; a prompt containing RejectTrigger gets the 422 safety answer.
// More than Options.MaxInFlight calls in flight get 429.
//
// Image URLs point at the fake itself (GET /api/images/ephemeral/<id>.png?exp=<unix>&sig=<hex>);
// they serve a deterministic PNG of the announced size (see PNG) until Options.URLTTL has passed on
// the fake's clock, then answer 403. Every request first passes through Fake.Script, so tests can
// script faults.
package fake
