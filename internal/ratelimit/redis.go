package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// FailurePolicy is what the Redis limiter does when Redis fails or is too slow.
type FailurePolicy uint8

const (
	// FailOpen decides with the in-process fallback limiter (limits then hold per process), logs
	// and counts it. It is the default.
	FailOpen FailurePolicy = iota
	// FailClosed returns ErrUnavailable; the front door answers 503.
	FailClosed
)

// ParseFailurePolicy parses "open"/"fail-open" or "closed"/"fail-closed"; "" means FailOpen.
func ParseFailurePolicy(s string) (FailurePolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "open", "fail-open":
		return FailOpen, nil
	case "closed", "fail-closed":
		return FailClosed, nil
	}
	return FailOpen, fmt.Errorf("ratelimit: unknown failure policy %q (want fail-open or fail-closed)", s)
}

// String returns "fail-open" or "fail-closed".
func (p FailurePolicy) String() string {
	if p == FailClosed {
		return "fail-closed"
	}
	return "fail-open"
}

// Defaults of RedisOptions.
const (
	DefaultPrefix           = "imagegw"
	DefaultRedisTimeout     = 100 * time.Millisecond
	DefaultBreakerThreshold = 3
	DefaultBreakerCooldown  = 2 * time.Second
)

// RedisOptions configure a Redis limiter. The zero value is usable.
type RedisOptions struct {
	// Prefix starts every key: <prefix>:{<subject>}:rpm|ipm|mppm|inflight. Default "imagegw".
	Prefix string
	// Timeout bounds each Redis round trip; default 100ms. It only bounds socket waits if the
	// client has ContextTimeoutEnabled (NewClient and ClientOptions set it).
	Timeout time.Duration
	// Policy is applied when a call fails or the circuit is open; default FailOpen.
	Policy FailurePolicy
	// BreakerThreshold is how many consecutive failures open the circuit; default 3.
	BreakerThreshold int
	// BreakerCooldown is how long the circuit stays open before one call probes Redis; default 2s.
	BreakerCooldown time.Duration
	// Fallback decides under FailOpen; nil means a new Local sharing Metrics (closed by Close).
	Fallback *Local
	// LeaseTTL is the lease TTL of requests that set none; 0 means DefaultLeaseTTL. Live leases
	// are renewed every third of it, so it is how long a crashed process's slots stay taken.
	LeaseTTL time.Duration
	// Logger receives failures and circuit transitions; nil means no logging.
	Logger *zap.Logger
	// Metrics records decisions, Redis errors and latency, fallback and leases; nil records
	// nothing.
	Metrics *Metrics
	// AllotWindow turns allotments on (see allot.go and the package documentation): subjects
	// whose limits are roomy are admitted from a part of their limits charged ahead, sized to
	// this much of their recent demand, without a round trip per request. 0 means off
	// (DefaultAllotWindow is the gateway's default).
	AllotWindow time.Duration
}

// Redis is the shared Limiter: every gateway process pointed at the same Redis enforces one
// global limit per subject. Each Admit is one round trip (one Lua script, atomic over all
// dimensions of the subject) on Redis's clock, so process clocks do not matter; concurrent
// Admits of one subject share a script call (see the package documentation, "Coalescing"), and
// with allotments on, a subject with roomy limits is admitted in memory from a part of its
// limits charged ahead ("Allotments"). Release makes no
// round trip of its own: a background releaser sends the queued releases in batches, and an
// Admit of a subject carries that subject's releases still unconfirmed.
//
// One background goroutine (started with the first lease) renews the live leases in batches and
// retries failed releases; Close stops it.
type Redis struct {
	client    redis.Scripter
	prefix    string
	timeout   time.Duration
	policy    FailurePolicy
	local     *Local
	ownsLocal bool
	leaseTTL  time.Duration
	keeper    *keeper
	rel       *releaser
	breaker   *breaker
	log       *zap.Logger
	metrics   *Metrics
	idPrefix  string
	idSeq     atomic.Uint64
	co        *coalescer
	allot     *allotter // nil: allotments off
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter on client, which may be a *Client, *redis.Client,
// *redis.ClusterClient or anything else that runs scripts. Build the client with NewClient (or
// its options with ClientOptions) so a dead Redis costs at most Timeout per call.
func NewRedis(client redis.Scripter, opts RedisOptions) *Redis {
	r := &Redis{
		client:   client,
		prefix:   opts.Prefix,
		timeout:  opts.Timeout,
		policy:   opts.Policy,
		local:    opts.Fallback,
		leaseTTL: opts.LeaseTTL,
		log:      opts.Logger,
		metrics:  opts.Metrics,
		co:       newCoalescer(),
	}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	if r.leaseTTL <= 0 {
		r.leaseTTL = DefaultLeaseTTL
	}
	if r.local == nil {
		r.local = NewLocal(LocalOptions{Metrics: opts.Metrics, LeaseTTL: r.leaseTTL})
		r.ownsLocal = true
	}
	if opts.AllotWindow > 0 {
		r.allot = newAllotter(r, opts.AllotWindow)
	}
	r.keeper = newKeeper(time.Now, time.Now(), r.metrics, r, false)
	r.rel = newReleaser(r.sendReleases)
	if r.log == nil {
		r.log = zap.NewNop()
	}
	threshold, cooldown := opts.BreakerThreshold, opts.BreakerCooldown
	if threshold <= 0 {
		threshold = DefaultBreakerThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	r.breaker = newBreaker(threshold, cooldown, time.Now)
	var b [8]byte
	_, _ = rand.Read(b[:])
	r.idPrefix = hex.EncodeToString(b[:]) + "-"
	if !contextTimeouts(client) {
		r.log.Warn("ratelimit: the Redis client ignores context deadlines; a hung Redis will stall requests " +
			"for the client's read timeout instead of the limiter's; build it with ratelimit.NewClient")
	}
	r.metrics.setFallback(false)
	return r
}

func contextTimeouts(c redis.Scripter) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Key returns the Redis key of a subject's counter; suffix is rpm, ipm, mppm or inflight.
func (r *Redis) Key(s Subject, suffix string) string {
	return r.prefix + ":{" + string(s) + "}:" + suffix
}

// keys returns the subject's rpm, ipm, mppm and inflight keys.
func (r *Redis) keys(s Subject) []string {
	base := r.prefix + ":{" + string(s) + "}:"
	return []string{base + "rpm", base + "ipm", base + "mppm", base + "inflight"}
}

// Close sends the releases still queued (waiting for that batch), stops renewing leases and
// makes one last attempt at the failed releases queued for a retry. Leases still held then
// expire within their TTL, as if the process had died. Close does not close the Redis client; it
// closes the fallback only if NewRedis created it. It is idempotent, and the limiter still admits
// (and releases) afterwards, without renewal.
func (r *Redis) Close() error {
	r.allot.close()
	r.rel.flush()
	r.keeper.close()
	if r.ownsLocal {
		return r.local.Close()
	}
	return nil
}

// Admit implements Limiter.
func (r *Redis) Admit(ctx context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, err
	}
	req.defaultLeaseTTL(r.leaseTTL)
	class := req.Subject.Class()
	// From the subject's allotment, else one script call; a refill or the call failing applies
	// the failure policy.
	cause := errCircuitOpen
	d, ok, err := r.allot.admit(ctx, &req)
	if !ok && err == nil && r.breaker.allow() {
		d, err = r.admitRedis(ctx, &req)
		switch {
		case err == nil:
			r.succeeded()
			ok = true
		case ctx.Err() == nil: // the caller giving up says nothing about Redis
			r.failed("admit", err)
		}
	}
	if ok {
		r.metrics.decision(class, &d, backendRedis)
		return d, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return Decision{}, fmt.Errorf("ratelimit: admit %s: %w", req.Subject, err)
		}
		cause = err
	}
	if r.policy == FailClosed {
		r.metrics.unavailable(class)
		return Decision{}, fmt.Errorf("ratelimit: admit %s: %w: %w", req.Subject, ErrUnavailable, cause)
	}
	d = r.local.decide(&req)
	d.Degraded = true
	if d.Grant != nil {
		d.Grant.fallback = true
	}
	r.metrics.decision(class, &d, backendFallback)
	return d, nil
}

var errCircuitOpen = errors.New("redis circuit open")

// GiveBack implements Limiter. A give-back that fails is lost (the limits stay stricter, never
// looser) and returns the error for logging.
func (r *Redis) GiveBack(ctx context.Context, g *Grant, cost Cost) error {
	if g == nil {
		return nil
	}
	c := g.takeBack(cost)
	if c.isZero() {
		return nil
	}
	if g.fallback {
		r.local.giveBack(g, c)
		return nil
	}
	if g.pool != nil {
		if c = g.pool.putUnits(c); c.isZero() {
			return nil
		}
	}
	return r.giveBackUnits(ctx, g.subject, &g.limits, c)
}

// giveBackUnits refunds c to s's rate dimensions in Redis.
func (r *Redis) giveBackUnits(ctx context.Context, s Subject, lim *Limits, c Cost) error {
	args := giveBackArgs(lim, c)
	return r.call(ctx, "give_back", s, func(ctx context.Context) error {
		return giveBackScript.Run(ctx, r.client, r.keys(s)[:3], args...).Err()
	})
}

// appendRateArgs appends, per rate dimension, the admit and allot scripts' four arguments:
// period µs, count, burst and the units to charge (all 0 for an unlimited dimension).
func appendRateArgs(args []any, lim *Limits, units [3]int64) []any {
	for i, dim := range rateDims {
		rt := lim.rate(dim)
		if !rt.Limited() {
			args = append(args, 0, 0, 0, 0)
			continue
		}
		args = append(args, int64(rt.Period/time.Microsecond), rt.Count, rt.burst(), units[i])
	}
	return args
}

// unconfirmedReleases are this process's releases of s that Redis has not confirmed yet
// (queued, in flight or waiting for a retry). A script that counts s's leases removes them
// first, so a slot this process freed is never refused to it.
func (r *Redis) unconfirmedReleases(s Subject) []*lease {
	return r.keeper.pendingOf(s, r.rel.unconfirmed(s, nil))
}

// releaseUnsure queues the release of l, a lease a failed script call may have added (a
// timeout after Redis answered), so its slot frees as soon as Redis answers again rather than
// at the TTL. Removing a lease that was never added is harmless.
func (r *Redis) releaseUnsure(l *lease, failedAt time.Time) {
	l.state.Store(leaseReleased)
	l.expires.Store(r.keeper.at(failedAt) + int64(l.ttl))
	r.keeper.enqueue(l)
}

// giveBackArgs are giveBackScript's arguments for refunding c under lim.
func giveBackArgs(lim *Limits, c Cost) []any {
	args := make([]any, 0, 9)
	for _, dim := range rateDims {
		rt := lim.rate(dim)
		if !rt.Limited() {
			args = append(args, 0, 0, 0)
			continue
		}
		args = append(args, int64(rt.Period/time.Microsecond), rt.Count, c.of(dim))
	}
	return args
}

// Renew implements Limiter.
func (r *Redis) Renew(ctx context.Context, g *Grant) error {
	if g == nil || g.lease == nil {
		return nil
	}
	if g.fallback {
		return r.local.Renew(ctx, g)
	}
	l := g.lease
	if l.state.Load() != leaseLive {
		return fmt.Errorf("ratelimit: renew %s: %w", g.subject, ErrLeaseLost)
	}
	var res []int64
	sent := r.keeper.nanos()
	err := r.call(ctx, "renew", g.subject, func(ctx context.Context) error {
		var err error
		res, err = renewScript.Run(ctx, r.client, []string{r.Key(g.subject, "inflight")},
			int64(l.ttl/time.Microsecond), l.id).Int64Slice()
		return err
	})
	if err != nil {
		return err
	}
	if len(res) != 1 || res[0] != 1 {
		r.keeper.lost(l)
		return fmt.Errorf("ratelimit: renew %s: %w", g.subject, ErrLeaseLost)
	}
	l.renewed(sent, r.keeper.nanos())
	return nil
}

// Release implements Limiter. It does not wait for Redis: it stops renewing the lease and queues
// its release, which the background releaser sends at once, batched with the other releases
// queued meanwhile; until Redis confirms it, this limiter's Admit of the subject counts it as
// released. A release Redis does not take is retried in the background (batched) until it
// succeeds or the lease would have expired anyway. While the circuit is open the release goes
// straight to the retry queue and an ErrUnavailable error is returned, for logging.
func (r *Redis) Release(ctx context.Context, g *Grant) error {
	if g == nil || g.lease == nil {
		return nil
	}
	if g.fallback {
		return r.local.Release(ctx, g)
	}
	if g.slot != nil {
		g.slot.release()
		return nil
	}
	if !r.releaseLease(g.lease) {
		return fmt.Errorf("ratelimit: release %s: %w: %w", g.subject, ErrUnavailable, errCircuitOpen)
	}
	return nil
}

// releaseLease stops renewing l and queues its release; while the circuit is open it goes
// straight to the retry queue and releaseLease reports false.
func (r *Redis) releaseLease(l *lease) bool {
	if !r.keeper.unregister(l, leaseReleased) {
		return true
	}
	if r.breaker.isOpen() {
		r.keeper.enqueue(l)
		return false
	}
	r.rel.add(l)
	return true
}

// sendReleases is the releaser's batch: one pipeline (one script call per subject); the releases
// that fail go to the retry queue.
func (r *Redis) sendReleases(ls []*lease) {
	for i, ok := range r.releaseLeases(ls) {
		if !ok {
			r.keeper.enqueue(ls[i])
		}
	}
}

// scriptCall is one script invocation of a batch, for the leases at idx of the batch.
type scriptCall struct {
	keys []string
	args []any
	idx  []int
}

// leaseCalls groups leases by subject (and TTL) into script calls of at most maxIDsPerCall ids:
// KEYS = the subject's inflight set, ARGV = the head arguments, then the lease ids.
func (r *Redis) leaseCalls(ls []*lease, withTTL bool) []scriptCall {
	type group struct {
		s   Subject
		ttl time.Duration
	}
	var calls []scriptCall
	open := map[group]int{} // group → index of its call still taking ids
	for i, l := range ls {
		gk := group{s: l.subject}
		if withTTL {
			gk.ttl = l.ttl
		}
		ci, ok := open[gk]
		if !ok || len(calls[ci].idx) >= maxIDsPerCall {
			c := scriptCall{keys: []string{r.Key(l.subject, "inflight")}}
			if withTTL {
				c.args = append(c.args, int64(l.ttl/time.Microsecond))
			}
			calls = append(calls, c)
			ci = len(calls) - 1
			open[gk] = ci
		}
		calls[ci].args = append(calls[ci].args, l.id)
		calls[ci].idx = append(calls[ci].idx, i)
	}
	return calls
}

// renewLeases implements leaseBackend: one script call per subject, all in one pipeline.
func (r *Redis) renewLeases(ls []*lease) ([]int8, int64, int64) {
	status := make([]int8, len(ls))
	for i := range status {
		status[i] = -1
	}
	calls := r.leaseCalls(ls, true)
	sent := r.keeper.nanos()
	cmds := r.runBatch("renew_batch", renewScript, calls)
	recv := r.keeper.nanos()
	for ci, c := range calls {
		if cmds == nil {
			break
		}
		res, err := cmds[ci].Int64Slice()
		if err != nil || len(res) != len(c.idx) {
			continue
		}
		for j, i := range c.idx {
			status[i] = int8(res[j])
		}
	}
	return status, sent, recv
}

// releaseLeases implements leaseBackend: one ZREM per subject, all in one pipeline.
func (r *Redis) releaseLeases(ls []*lease) []bool {
	ok := make([]bool, len(ls))
	calls := r.leaseCalls(ls, false)
	cmds := r.runBatch("release_batch", releaseScript, calls)
	for ci, c := range calls {
		if cmds == nil {
			break
		}
		if cmds[ci].Err() == nil {
			for _, i := range c.idx {
				ok[i] = true
			}
		}
	}
	return ok
}

// batchTimeout bounds one background batch: longer than a request's call, since it carries
// many, and off the request path.
func (r *Redis) batchTimeout() time.Duration { return max(4*r.timeout, time.Second) }

// runBatch runs calls of script s in one pipeline (one round trip; sequentially if the client
// cannot pipeline) under the breaker. It returns nil without calling Redis while the circuit is
// open.
func (r *Redis) runBatch(op string, s *redis.Script, calls []scriptCall) []*redis.Cmd {
	if len(calls) == 0 || !r.breaker.allow() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.batchTimeout())
	defer cancel()
	start := time.Now()
	cmds := r.evalAll(ctx, s, calls, false)
	// NOSCRIPT: Redis restarted or flushed its script cache; send those again with the body.
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		sub := make([]scriptCall, len(again))
		for j, i := range again {
			sub[j] = calls[i]
		}
		for j, c := range r.evalAll(ctx, s, sub, true) {
			cmds[again[j]] = c
		}
	}
	var err error
	for _, c := range cmds {
		if err = c.Err(); err != nil {
			break
		}
	}
	r.metrics.redisCall(op, time.Since(start), err)
	if err != nil {
		r.failed(op, err)
	} else {
		r.succeeded()
	}
	return cmds
}

func (r *Redis) evalAll(ctx context.Context, s *redis.Script, calls []scriptCall, body bool) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	p, ok := r.client.(interface{ Pipeline() redis.Pipeliner })
	if !ok {
		for i, c := range calls {
			cmds[i] = s.Run(ctx, r.client, c.keys, c.args...)
		}
		return cmds
	}
	pipe := p.Pipeline()
	for i, c := range calls {
		if body {
			cmds[i] = s.Eval(ctx, pipe, c.keys, c.args...)
		} else {
			cmds[i] = s.EvalSha(ctx, pipe, c.keys, c.args...)
		}
	}
	_, _ = pipe.Exec(ctx) // per-command errors are in cmds
	return cmds
}

// call runs one Redis round trip for a follow-up operation under the timeout and the breaker.
func (r *Redis) call(ctx context.Context, op string, s Subject, fn func(context.Context) error) error {
	if !r.breaker.allow() {
		return fmt.Errorf("ratelimit: %s %s: %w: %w", op, s, ErrUnavailable, errCircuitOpen)
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	start := time.Now()
	err := fn(cctx)
	cancel()
	if err == nil {
		r.metrics.redisCall(op, time.Since(start), nil)
		r.succeeded()
		return nil
	}
	if ctx.Err() == nil {
		r.metrics.redisCall(op, time.Since(start), err)
		r.failed(op, err)
	}
	return fmt.Errorf("ratelimit: %s %s: redis: %w", op, s, err)
}

func (r *Redis) succeeded() {
	if r.breaker.success() {
		r.metrics.setFallback(false)
		r.log.Info("ratelimit: Redis reachable again; limits are global again")
	}
}

func (r *Redis) failed(op string, err error) {
	opened := r.breaker.failure()
	if opened {
		r.metrics.setFallback(true)
		r.log.Warn("ratelimit: Redis unavailable; circuit open",
			zap.String("op", op), zap.Error(err), zap.String("policy", r.policy.String()))
		return
	}
	if !r.breaker.isOpen() {
		r.log.Warn("ratelimit: Redis call failed", zap.String("op", op), zap.Error(err),
			zap.String("policy", r.policy.String()))
	}
}

// FallbackActive reports whether the circuit is open, so the failure policy applies without
// trying Redis.
func (r *Redis) FallbackActive() bool { return r.breaker.isOpen() }
