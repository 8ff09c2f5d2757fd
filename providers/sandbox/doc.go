// Package sandbox is imagegw's built-in development and test provider. It calls no upstream and
// needs no credential: it renders deterministic PNG images in process, so the whole gateway (front
// door, billing, rate limits, url⇄b64 conversion, fan-out of large n) can be run, demonstrated and
// tested offline.
//
// # What it draws
//
// Every image is a PNG whose background pattern and colours derive from a hash of the prompt and
// the image's seed, with a caption panel that shows the model, size, seed, image index, the prompt
// (wrapped and truncated) and the other parameters it was given (negative prompt, steps, guidance,
// strength, quality, style). The same request with the same seed gives the same bytes, byte for
// byte. When the request has no seed the sandbox picks a random one below 2^53 (so JavaScript
// clients read it exactly) and returns it in Output.Seed; image i of a call uses seed+i, so a
// client reproduces image i by sending that image's Output.Seed. A front door that fans one request
// out into several calls should pass seed+offset to the later calls, or their images repeat.
//
// Operations:
//   - generate: the pattern, with any reference images (ParamReferenceImage) blended in by
//     strength (default 0.5);
//   - edit: pixels where the mask's alpha is 0 (OpenAI's convention) are repainted with the
//     generated pattern and caption, all other pixels keep the source image exactly; without a
//     mask the source's own fully transparent pixels are the area, like dall-e-2. Further images
//     after the first tint the repainted area like reference images;
//   - variation: the source image with its hue rotated by an angle derived from the seed, and the
//     caption drawn on top.
//
// The output size is the requested size; for edit and variation without one, the source image's
// size (scaled down to fit 2048 on the longer side). An aspect ratio (sandbox-image only) becomes
// 1024 on the longer side, the shorter one rounded to a multiple of 8.
//
// # Models and prices
//
// "sandbox-image" (USD 0.01 per image; generate, edit, variation), "sandbox-steps" (CNY 0.0032 per
// megapixel-step, steps 1..50, default 20) and "sandbox-fixed" (CNY 0.0032 per megapixel-step at a
// fixed 4 steps). These prices exist to exercise the gateway's billing rules; they are not real
// prices of anything. See catalog.go.
//
// # Options
//
// Channel options (providers.Config.Options):
//   - "latency": a Go duration ("300ms") added to every call, honouring cancellation and the
//     channel's timeout (KindCanceled, KindUpstreamTimeout);
//   - "fail": a providers.Kind ("upstream_unavailable") every call of this channel fails with,
//     for failover tests with one broken and one healthy channel.
//
// Unknown options are refused when the channel is built. APIKey and BaseURL are ignored: there is
// no upstream.
//
// # Prompt directives
//
// For demos and end-to-end tests a prompt may carry directives (several may be combined, each at
// most once):
//   - [sandbox:fail=KIND] fails the call with that providers.Kind, for example
//     [sandbox:fail=content_policy] or [sandbox:fail=upstream_rate_limited] (which carries a
//     Retry-After of one second);
//   - [sandbox:withhold=K] renders n images but withholds the last K (Result.Withheld = K, like
//     Ideogram's unsafe images), so billing of partial deliveries can be tested; withholding all
//     n is a KindContentPolicy failure;
//   - [sandbox:latency=DURATION] adds latency to this call (at most 60s).
//
// A malformed or unknown directive is a KindInvalidRequest naming "prompt".
package sandbox
