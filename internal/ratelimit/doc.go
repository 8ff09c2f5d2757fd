// Package ratelimit limits what image traffic actually costs: requests, images and megapixels per
// minute, and requests in flight, per API key ("key:<id>") and per upstream channel
// ("channel:<name>").
//
// One interface, Limiter, has two implementations with the same semantics: Redis, shared by every
// gateway process (global limits), and Local, in-process (the embedded default, and Redis's
// fallback). The limiter keeps no configuration: every call carries the subject's Limits, so a
// key's limits come from the cached key record and a channel's from config.
//
// # Algorithm and units
//
// Rate dimensions use GCRA (the generic cell rate algorithm): a limit of Count per Period refills
// one unit every Period/Count, up to Burst units (default Count). Redis runs it on the server's
// clock. Costs are integers: one request, n images, and the output area in kilopixels (1,000
// pixels, rounded up per request; a megapixel is 1,000 kilopixels), so 4 images of 1024×1024 cost
// 1 request, 4 images and 4,195 kilopixels. Megapixel limits are configured in megapixels and
// converted with MegapixelsPerMinute.
//
// Admit is all or nothing: it checks every limited dimension and the concurrency limit and charges
// only if all fit, in one Redis round trip (one Lua script over keys that share the subject's hash
// tag, <prefix>:{<subject>}:rpm|ipm|mppm|inflight, so it works on Redis Cluster). A refusal
// therefore consumes nothing. Concurrency uses leases that expire (a sorted set of lease ids scored
// by expiry on Redis), so a crashed process's slots free themselves; Renew extends a lease.
//
// # Front door call sequence
//
//	lim := ratelimit.LimitsPerMinute(rpm, ipm, mppm, concurrency) // key's limits, 0 = unlimited
//	cost := ratelimit.CostOf(n, width, height)
//	d, err := limiter.Admit(ctx, ratelimit.Request{Subject: ratelimit.KeySubject(keyID),
//		Limits: lim, Cost: cost, LeaseTTL: upstreamTimeout + 30*time.Second})
//	if errors.Is(err, ratelimit.ErrUnavailable) { /* 503 */ }
//	d.SetHeaders(w.Header())               // x-ratelimit-*-requests|images, Retry-After
//	if !d.Allowed { /* 429 rate_limit_exceeded, naming d.RefusedBy */ }
//	defer limiter.Release(context.WithoutCancel(ctx), d.Grant)
//	// ... then the same Admit for ratelimit.ChannelSubject(name) with the channel's limits
//	// before calling it; on refusal try the next channel (or wait d.RetryAfter). If no
//	// channel admits, GiveBack the key's whole cost.
//	// after the upstream answers:
//	limiter.GiveBack(ctx, d.Grant, ratelimit.Undelivered(n, delivered, width, height))
//
// # Redis failures
//
// Every Redis call has a short timeout (RedisOptions.Timeout, default 100ms; build the client with
// ClientOptions so context deadlines bound socket waits). After BreakerThreshold consecutive
// failures a circuit breaker opens for BreakerCooldown, so while Redis is down calls do not pay the
// timeout; then one call probes Redis. The policy decides what a failed or skipped call does:
// FailOpen (default) decides with the Local fallback, marks the Decision Degraded, logs the
// transition and counts it; limits then hold per process, so N gateways admit up to N times a
// limit until Redis is back. FailClosed returns ErrUnavailable (503). Counters charged in the
// fallback are not copied to Redis when it returns.
//
// Metrics (see Metrics) count decisions by limit, result and backend, Redis errors and latency,
// whether the fallback is active, and leases in flight by subject class.
package ratelimit
