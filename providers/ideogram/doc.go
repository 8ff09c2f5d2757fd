// Package ideogram is the adapter for Ideogram's image API, on the official host
// (https://api.ideogram.ai) or behind AiHubMix (https://aihubmix.com/ideogram, seed 002), with every
// operation Ideogram has: generate, edit with a mask, remix (and variations as a remix without a
// prompt), upscale, describe, reframe and replace background.
//
// # Upstream
//
// Ideogram has two API generations with different wire formats (PROVIDERS.md §2, Appendix A):
//
//   - Legacy, for models V_1, V_1_TURBO, V_2, V_2_TURBO, V_2A, V_2A_TURBO: POST /generate takes JSON
//     {"image_request": {...}}; /remix and /upscale take multipart with an image_request part holding
//     JSON text next to image_file; /edit (V_2 and V_2_TURBO only) and /reframe take flat multipart
//     fields; /describe takes image_file. Sizes are RESOLUTION_W_H (78 values, V_2 and newer; V_1
//     takes aspect ratios only) or ASPECT_W_H; the prompt-rewriting switch is magic_prompt_option.
//   - Ideogram 3.0 (model V_3 in the catalog; no model field on the wire): multipart
//     /v1/ideogram-v3/{generate,remix,edit,reframe,replace-background} with image (not image_file),
//     magic_prompt, rendering_speed (TURBO, DEFAULT, QUALITY: also the price tier), "16x9"-style
//     aspect ratios and its own list of 69 "WxH" resolutions, which is not a respelling of the
//     legacy list.
//
// Upscale and describe are the same endpoints whatever the model, so every catalog model offers
// them. Auth is the header "Api-Key: <key>", never a Bearer token. All calls are synchronous.
//
// # Mapping
//
// quality low/medium/high → rendering_speed TURBO/DEFAULT/QUALITY (3.0 only); prompt_enhancement →
// magic_prompt ON/OFF; width×height → resolution (it must be in the model's list: the catalog's
// SizeRule is the exact list); AspectRatio "W:H" → ASPECT_W_H or WxH. Ideogram's own knobs arrive as
// Request.Extra fields (constants Extra*): rendering_speed, magic_prompt, style_type, aspect_ratio,
// resolution, color_palette (object, JSON text, or a preset name), image_weight, resemblance,
// detail, style_codes, style_preset, describe_model_version, mask_format and
// style_reference_images. Each is refused with KindUnsupported where the model or the operation's
// endpoint cannot carry it.
//
// What billing prices is what is sent: num_images is always sent (n, at least 1); a 3.0 call that
// names no rendering speed sends DEFAULT (its price tier); a generate, remix or variation that
// names no size sends the default aspect ratio 1:1, which Ideogram renders at 1024x1024, the
// catalog's default size. Edit and replace-background keep the source image's size and upscale
// doubles it; no size is sent for them.
//
// Seeds: Ideogram gives every image of a call the one seed sent, so a seeded call of several images
// returns one picture several times (seed 002). Every catalog model has SeedRepeats, and the front
// door splits a seeded n > 1 into one-image calls with seed, seed+1, ….
//
// Images: Images[0] is the source image of every operation but generate. Style reference images
// (3.0 only, sent as style_reference_images) come after it, and Extra style_reference_images says
// how many there are (the front door sets it from the style_reference_images file parts). Without
// that count every image of a generate is a style reference, and the other operations take exactly
// one image. Masks follow OpenAI (alpha 0 = change) and are converted to Ideogram's black-and-white
// mask of the image's exact size (black = change); mask_format "bw" says the mask is already
// black-and-white. A mask that marks nothing to change is refused.
//
// # Answers and quirks
//
// created is an ISO-8601 string; data[].prompt is the magic-prompt rewrite (RevisedPrompt); seed and
// resolution come per image (upscaled_resolution wins when present). Items with is_image_safe=false
// carry no image: they are skipped and counted in Result.Withheld, and when none is safe the call
// fails with KindContentPolicy. Image URLs are ephemeral signed links (…?exp=<unix>&sig=…); Expires
// comes from exp when present, else URLLifetime. Errors: 422 {"error": "..."} is a safety rejection
// (KindContentPolicy); 401, and 403 on remix and upscale, mean the key was refused
// (KindUpstreamAuth); 429 (Ideogram allows 10 requests in flight) is KindUpstreamRateLimited.
//
// Prices are seed 002's (Price.Source "seed 002"), except the describe price and the legacy
// reframe price, which no source gives and are assumed (see priceSource in catalog.go).
//
// Docs: https://developer.ideogram.ai/api-reference, https://docs.aihubmix.com/en/api/IdeogramAI,
// pricing https://ideogram.ai/features/api-pricing.
package ideogram
