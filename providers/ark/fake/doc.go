// Package fake is a strict fake of Volcengine Ark's image API (POST /api/v3/images/generations),
// built from ../shared/PROVIDERS.md §3.1 and §7, for tests, the simulator (cmd/imagegw-sim) and
// benchmarks. It never reaches the network.
//
// It is as strict as the real API where the documents say how the real API behaves, and
// stricter where they do not (marked [INFER] below):
//   - Auth: "Authorization: Bearer <key>"; anything else is a 401 AuthenticationError envelope.
//   - JSON only: a multipart or other body is a 400 InvalidParameter [INFER: exact message].
//   - Unknown fields (for example "n") are refused with 400 InvalidParameter [INFER].
//   - Per-model rules with Ark's own 400 messages: 3.0-t2i sizes 512–2048 per side and "the
//     parameter `image` is not supported by the current model"; SeedEdit requires exactly one
//     JPEG/PNG image (≤ 10 MB, sides > 14 px, aspect in (1/3, 3)) and size "adaptive"; 4.0 takes
//     1K/2K/4K or 921,600–16,777,216 pixels; 4.5 takes 2K/4K or 3,686,400–16,777,216 pixels
//     ("image size must be at least 3686400 pixels", "the specified size is not supported for
//     model doubao-seedream-4-5" for 1K/adaptive); 5.0 takes 2K/3K/4K or 4.5's bounds; aspect
//     1:16–16:1 for 4.x/5.0; output_format only on 5.0; seed (−1 … 2147483647) and
//     guidance_scale (1 … 10) only on 3.0-t2i and SeedEdit [INFER: the real 4.x may ignore them].
//   - Answers in the real shape: model, created, data[].url|b64_json with data[].size, usage
//     {generated_images, output_tokens = Σ w·h / 256, total_tokens}; X-Client-Request-Id echoed.
//   - Images are JPEG (PNG with output_format png), deterministic per seed, served by the fake
//     itself under /fake-tos/… with a signed TOS-style query (X-Tos-Date, X-Tos-Expires,
//     X-Tos-Signature, joined by '&') that expires after 24 h (Options.URLTTL) on the fake's
//     clock (Options.Now).
//   - sequential_image_generation "auto" with sequential_image_generation_options.max_images k
//     returns k images (a group).
//   - Fields left out take Ark's documented defaults, not the gateway catalog's: size 1024x1024
//     on 3.0-t2i and 2048x2048 (2K) on 4.x/5.0, SeedEdit's output the input image's size; no
//     seed, or seed −1, is a random seed (seed 004: −1 = random), a fixed seed a fixed image.
//
// Prompt triggers simulate the content filter: a prompt containing "fake:sensitive-input" gets a
// 400 InputTextSensitiveContentDetected; "fake:sensitive-output" a 400
// OutputImageSensitiveContentDetected; "fake:partial-fail" a 200 whose last data item is
// {"error":{"code":"OutputImageSensitiveContentDetected",…}} (the only item for a single image).
//
// Every request passes through Script first, so tests can script faults.
package fake
