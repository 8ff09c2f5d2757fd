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
// therefore consumes nothing.
//
// # Coalescing admissions of one subject
//
// Redis runs scripts one after another, so a burst of thousands of admissions of one key (a
// wave of requests arriving together) used to queue thousands of script runs (~30-40 µs each)
// behind each other, adding 150-200 ms to the wave and timing out its tail. The Redis limiter
// therefore coalesces: an Admit of a subject with no admit call of that subject in flight (from
// this limiter) goes out at once, alone, as before, so an idle gateway adds no latency. An Admit
// that arrives while one is in flight queues; when that call returns, everything queued for the
// subject meanwhile goes out in one script call (at most 256 admissions per call; more go as
// several calls at once). The script decides the batch's admissions in arrival order, each
// exactly as if sent alone right after the ones before it (same GCRA arithmetic, lease counting,
// Retry-After and x-ratelimit-* numbers; one reading of Redis's clock for the batch), keeps the
// subject's state in Lua meanwhile and writes it once, and returns every admission's decision.
// Each admission is still one round trip of its own, after at most the one in front of it; the
// sender of a batch is its first admission's goroutine, so there is no extra goroutine. The
// batch carries the subject's unconfirmed releases once, as a lone admit does. A batch call that
// fails fails each of its admissions as a lone admit's failure does (each counts towards the
// circuit breaker and takes the failure policy: the fallback, or ErrUnavailable; each queues
// the release of the lease the script may have added). RedisOptions.Timeout bounds the batch's
// round trip from when it is sent; a queued admission whose caller gives up leaves the queue at
// once, and one whose batch is in flight waits for it (at most Timeout).
//
// # Allotments
//
// With RedisOptions.AllotWindow set (the gateway's default is DefaultAllotWindow), a subject whose
// limits are roomy is not charged per request: the limiter charges Redis for an allotment (rate
// units and concurrency leases, sized to a window of the subject's recent demand in this process,
// never more than 1/16 of a limit), admits from it in memory, takes releases and give-backs back
// into it, refills it in the background once a busy subject has used half of it, and gives the
// unused part back after a second idle, on Close, or when a refill does not fit. Gateways
// together never admit more than a limit; they may admit less by the allotments they hold.
// Small limits, large costs and a subject near its limit use the exact path below, so refusals
// are always exact. See allot.go for the details and bounds.
//
// # Concurrency leases
//
// Concurrency uses leases that expire (on Redis a sorted set of lease ids scored by expiry), so
// anything a process holds frees itself quickly when the process dies: the lease TTL is short
// (DefaultLeaseTTL, 15 s; RedisOptions.LeaseTTL, LocalOptions.LeaseTTL or Request.LeaseTTL) and
// the owner renews while it lives. Renewal costs no goroutine and no Redis call per request: each
// limiter keeps a registry of the leases it granted and one background goroutine (started with
// the first lease, ended by Close) renews them in batches, one script call per subject, all
// subjects in one pipeline, i.e. one round trip per pass. A lease is due a third of its TTL after
// its last renewal, and leases due within the next sixth of it join the same batch, so under load
// the loop runs at most every TTL/6. Admit stays one round trip (registering is a map insert);
// Release makes none of its own.
//
// How a lease ends:
//   - Release: unregistered (the leases_in_flight gauge drops at once) and queued; a background
//     releaser (a goroutine that runs while there is work) sends every queued release in one
//     pipeline, one ZREM script per subject, as soon as it can: while one batch is in flight the
//     next queues, so batches grow with the load and no release waits longer than the round
//     trip in front of it. Until Redis confirms a release, an Admit of the same subject by the
//     same limiter carries its id in the admission script, which removes it before counting
//     the subject's leases: still one round trip, and a process never refuses itself a slot it
//     has freed (release-then-admit at concurrency 1 is always admitted). Another process sees
//     the slot free once the releaser's round trip lands, so a client alternating replicas at
//     its concurrency limit can be refused for that one round trip (about a millisecond) after
//     its previous request ended on the other replica. Close waits for the queued releases.
//   - A release Redis does not take (unreachable, or the circuit is open) goes to a retry queue
//     (batched, every 250 ms, under the circuit breaker, by the renewal loop) until it succeeds
//     or the lease would have expired anyway; so after a Redis blip the slot frees as soon as
//     Redis answers, not at the TTL. An admission of the subject carries these too.
//   - The owner process dies (or Close is called): nothing renews, the lease expires within its
//     TTL and the next admission of the subject purges it.
//   - The grant is dropped without Release (a caller bug, a panic): the registry holds the grant
//     only weakly, so once it is garbage-collected the loop releases the lease instead of renewing
//     it forever (counted as abandoned).
//   - Redis forgets it (restart, eviction) or an outage outlasts the TTL: the renewal finds it
//     gone and drops it (counted as expired); Renew then returns ErrLeaseLost. The request carries
//     on uncounted; a renewal never re-adds a lease, so it cannot resurrect one a concurrent
//     release removed.
//
// Retry-After of a concurrency refusal is the time until the subject's earliest lease expires,
// bounded to [MinConcurrencyRetryAfter, the request's lease TTL]. That is exactly when a slot
// frees if its holder is dead (a crash, or a release lost in a Redis blip), the cases where a
// constant hint was wrong for minutes. A live holder renews its lease, so for it the hint is an
// estimate of at most one TTL; its slot may free earlier, when its request finishes, which no one
// can predict. A client that retries at the hint therefore never waits longer than one TTL for a
// slot that is stuck, and does not hammer the gateway meanwhile.
//
// # Front door call sequence
//
//	lim := ratelimit.LimitsPerMinute(rpm, ipm, mppm, concurrency) // key's limits, 0 = unlimited
//	cost := ratelimit.CostOf(n, width, height)
//	d, err := limiter.Admit(ctx, ratelimit.Request{Subject: ratelimit.KeySubject(keyID),
//		Limits: lim, Cost: cost}) // LeaseTTL: the limiter's (renewed in the background)
//	if errors.Is(err, ratelimit.ErrUnavailable) { /* 503 */ }
//	d.SetHeaders(w.Header())               // x-ratelimit-*-requests|images, Retry-After
//	if !d.Allowed { /* 429 rate_limit_exceeded, naming d.RefusedBy */ }
//	defer limiter.Release(context.WithoutCancel(ctx), d.Grant) // keep d.Grant reachable until then
//	// ... then the same Admit for ratelimit.ChannelSubject(name) with the channel's limits
//	// before calling it; on refusal try the next channel (or wait d.RetryAfter). If no
//	// channel admits, GiveBack the key's whole cost.
//	// after the upstream answers:
//	limiter.GiveBack(ctx, d.Grant, ratelimit.Undelivered(n, delivered, width, height))
//
// # Redis failures
//
// Every Redis call has a short timeout (RedisOptions.Timeout, default 100ms; build the client with
// NewClient so context deadlines bound socket waits, and so connections are opened ahead of a
// burst rather than on a call's timeout). After BreakerThreshold consecutive failures a circuit
// breaker opens for BreakerCooldown, so while Redis is down calls do not pay the timeout; then one
// call probes Redis. The policy decides what a failed or skipped call does:
// FailOpen (default) decides with the Local fallback, marks the Decision Degraded, logs the
// transition and counts it; limits then hold per process, so N gateways admit up to N times a
// limit until Redis is back. FailClosed returns ErrUnavailable (503). Counters charged in the
// fallback are not copied to Redis when it returns.
//
// # Redis Cluster
//
// NewClient builds a cluster client when the URL names several nodes (addr=), says cluster=true,
// or names one node that reports cluster mode (or answers MOVED). Every script call touches the
// keys of one subject, which share a hash tag (subjects may not contain braces), so it runs on the
// subject's node; go-redis sends EVALSHA there and falls back to EVAL on NOSCRIPT per node. The
// batched renewals and releases are pipelines of one script call per subject; the cluster client
// splits them by node. Subjects spread over the slots, so different keys land on different nodes.
// While a node is down its subjects' calls fail and count towards the (one, process-wide) circuit
// breaker like any Redis failure.
//
// Metrics (see Metrics) count decisions by limit, result and backend, Redis errors and latency,
// whether the fallback is active, live leases by subject class, leases dropped without Release,
// and queued and retried releases.
package ratelimit
