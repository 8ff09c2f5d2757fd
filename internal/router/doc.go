// Package router decides, for each upstream call, the order in which a model's channels are
// tried, and keeps every channel's health per model.
//
// Order: the model's strategy decides.
//
//   - priority (the default): the routes of an alias's target come before those of its first
//     fallback, and so on (catalog.Route.Group); inside a group, tiers by Route.Priority, 0
//     first; inside a tier a random order drawn by Route.Weight without replacement (weights 3
//     and 1 put the first channel first 75 % of the time); routes of weight 0 are standbys,
//     after the tier's weighted routes.
//   - cheapest: over all of the model's routes (targets and fallbacks alike), the route whose
//     price for the request (what the key pays for it from that channel) is lowest first; equal
//     prices by priority, then weight; routes without a price last.
//   - fastest: over all routes, the route with the lowest recent median latency first; a route
//     without a recent successful call counts as fastest (so a new or recovered channel gets
//     measured); ties by priority, then weight.
//
// For cheapest and fastest, routes whose breaker would refuse a call right now go after the
// others. Disabled channels are left out; when every channel of a model is disabled Order fails
// with a 503.
//
// Health: every channel and upstream model pair has a circuit breaker. It opens after
// Breaker.Failures failed calls in a row, or when at least Breaker.ErrorRate of the calls of the
// last Breaker.Window failed (once Breaker.MinRequests were made in it). An upstream 429 with
// Retry-After opens it for that long. An open breaker refuses calls without any network call
// until its cooldown ends; then it is half-open and lets Breaker.HalfOpenProbes calls through at
// once: a success closes it, a failure opens it again. Provider faults (5xx, timeouts, refused
// or broken connections, bad answers, a refused credential, 429, the model missing upstream)
// count as failures; an upstream answer refusing the request itself (400, content policy) counts
// as a success; a canceled call and a call refused before it reached the upstream count as
// neither. Latency (p50, p95 of the last successful calls of the last 10 minutes), the success
// rate of the window and the calls in flight are kept for the admin API and the fastest
// strategy.
//
// Switches: an operator disables a channel in the store (PATCH /admin/v1/channels/{name}); every
// replica polls the switches (Follow) and sends a disabled channel no traffic.
//
// A Router survives configuration changes: Load swaps the channels and routes it knows (health
// is kept for the pairs that remain) and SetBreaker the breaker settings.
package router
