// Package fake is a strict in-process imitation of OpenAI's Images API (New) and of an
// OpenAI-compatible host after seed 001 (NewCompatible), for the adapter's tests, the simulator
// (cmd/imagegw-sim mounts it under a path prefix with http.StripPrefix) and benchmarks. No test
// that uses it reaches the internet.
//
// The OpenAI fake follows PROVIDERS.md §5 and checks what the real API checks:
//   - Authorization: Bearer <key>, answering OpenAI's own 401 bodies (no key; invalid_api_key
//     with the key masked).
//   - POST /v1/images/generations takes JSON only; /v1/images/edits and /v1/images/variations
//     take multipart/form-data only (one "image" part or repeated "image[]" parts, "mask", text
//     scalars). Unknown fields are 400 unknown_parameter; wrong types 400 invalid_type.
//   - Per-model rules: sizes, qualities, styles (dall-e-3), n (dall-e-3 only 1: "You must provide
//     n=1 for this model."), prompt lengths, response_format rejected for gpt-image with
//     unknown_parameter, gpt-image-only fields (background, output_format, output_compression,
//     moderation, input_fidelity) refused for dall-e, transparent backgrounds only for png/webp,
//     compression only for jpeg/webp; edits: dall-e-2 takes exactly one square PNG under 4 MB
//     (with an alpha channel when there is no mask), gpt-image up to 16 PNG/JPEG/WebP files
//     under 50 MB each with their real Content-Type (application/octet-stream is refused), the
//     mask a PNG with alpha and the size of the first image; variations only for dall-e-2.
//   - Answers in the real shape: created, data[].url (dall-e, default) or data[].b64_json,
//     revised_prompt for dall-e-3; gpt-image always base64 (PNG, JPEG or lossless WebP per
//     output_format) with background, output_format, quality, size and usage.
//   - A prompt containing ContentPolicyTrigger is refused as the real safety system does
//     (content_policy_violation for dall-e, moderation_blocked for gpt-image).
//   - Image URLs point at the fake itself (PublicURL, or the request's host and mount prefix),
//     carry a signed query with several '&' (serialized as \u0026 by the JSON encoder) and stop
//     working after URLTTL (60 minutes by default) on the fake's clock, with a 403 XML error as
//     the blob store behind dall-e answers. Images are real, deterministic per request inputs.
//
// The compatible fake serves seed 001's six models on POST /v1/images/generations with width and
// height (multiples of 8, 256 up to the model's maximum) or size, negative_prompt,
// num_inference_steps (1–100), guidance_scale (0–20) and seed (0…2^31−1), answering
// {"created","data":[{"url"}]} (or b64_json), errors in OpenAI's envelope. Where seed 001 is
// silent (ranges, minimum side, URL lifetime of one hour) the fake's values are assumptions.
//
// Wording of error messages the sources do not quote (image checks, content type) is the fake's
// own; the shapes, types, params and codes follow the real API where PROVIDERS.md records them.
//
// Streaming (gpt-image only, PROVIDERS.md §5.5): "stream": true (the text "true" in a multipart
// edit) answers text/event-stream with, for each image, partial_images (0–3) events
// "image_generation.partial_image" ("image_edit.partial_image" for edits) carrying b64_json,
// created_at, size, quality, background, output_format and partial_image_index, then one
// "image_generation.completed" ("image_edit.completed") with the same fields (no index) and
// usage. partial_images without stream is a 400, as are both on dall-e (unknown_parameter).
// Refusals found before the stream starts (validation, the safety trigger) are ordinary JSON
// errors. Options.StreamPause lets a test hold the stream before any event.
package fake
