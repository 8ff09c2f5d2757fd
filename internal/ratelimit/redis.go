package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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
	// client has ContextTimeoutEnabled (ClientOptions sets it).
	Timeout time.Duration
	// Policy is applied when a call fails or the circuit is open; default FailOpen.
	Policy FailurePolicy
	// BreakerThreshold is how many consecutive failures open the circuit; default 3.
	BreakerThreshold int
	// BreakerCooldown is how long the circuit stays open before one call probes Redis; default 2s.
	BreakerCooldown time.Duration
	// Fallback decides under FailOpen; nil means a new Local sharing Metrics.
	Fallback *Local
	// Logger receives failures and circuit transitions; nil means no logging.
	Logger *zap.Logger
	// Metrics records decisions, Redis errors and latency, fallback and leases; nil records
	// nothing.
	Metrics *Metrics
}

// Redis is the shared Limiter: every gateway process pointed at the same Redis enforces one
// global limit per subject. Each Admit is one round trip (one Lua script, atomic over all
// dimensions of the subject) on Redis's clock, so process clocks do not matter.
type Redis struct {
	client   redis.Scripter
	prefix   string
	timeout  time.Duration
	policy   FailurePolicy
	local    *Local
	breaker  *breaker
	log      *zap.Logger
	metrics  *Metrics
	idPrefix string
	idSeq    atomic.Uint64
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter on client, which may be a *redis.Client, *redis.ClusterClient or
// anything else that runs scripts. Build the client with ClientOptions so a dead Redis costs at
// most Timeout per call.
func NewRedis(client redis.Scripter, opts RedisOptions) *Redis {
	r := &Redis{
		client:  client,
		prefix:  opts.Prefix,
		timeout: opts.Timeout,
		policy:  opts.Policy,
		local:   opts.Fallback,
		log:     opts.Logger,
		metrics: opts.Metrics,
	}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	if r.local == nil {
		r.local = NewLocal(LocalOptions{Metrics: opts.Metrics})
	}
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
			"for the client's read timeout instead of the limiter's; build it with ratelimit.ClientOptions")
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

// ClientOptions parses a redis:// or rediss:// URL into client options suited to the limiter:
// context deadlines bound socket waits, no command retries (the failure policy handles failures),
// and dial/read/write/pool timeouts of one second as an outer bound.
func ClientOptions(url string) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: parse redis url: %w", err)
	}
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.DialTimeout = time.Second
	o.ReadTimeout = time.Second
	o.WriteTimeout = time.Second
	o.PoolTimeout = time.Second
	return o, nil
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

// Admit implements Limiter.
func (r *Redis) Admit(ctx context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, err
	}
	class := req.Subject.Class()
	cause := errCircuitOpen
	if r.breaker.allow() {
		d, err := r.admitRedis(ctx, &req)
		if err == nil {
			r.succeeded()
			r.metrics.decision(class, &d, backendRedis)
			if d.Grant != nil && d.Grant.hasLease {
				r.metrics.leaseHeld(class, 1)
			}
			return d, nil
		}
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about Redis.
			return Decision{}, fmt.Errorf("ratelimit: admit %s: %w", req.Subject, err)
		}
		r.failed("admit", err)
		cause = err
	}
	if r.policy == FailClosed {
		r.metrics.unavailable(class)
		return Decision{}, fmt.Errorf("ratelimit: admit %s: %w: %w", req.Subject, ErrUnavailable, cause)
	}
	d := r.local.decide(&req)
	d.Degraded = true
	if d.Grant != nil {
		d.Grant.fallback = true
		if d.Grant.hasLease {
			r.metrics.leaseHeld(class, 1)
		}
	}
	r.metrics.decision(class, &d, backendFallback)
	return d, nil
}

var errCircuitOpen = errors.New("redis circuit open")

func (r *Redis) admitRedis(ctx context.Context, req *Request) (Decision, error) {
	lim := &req.Limits
	withLease := lim.Concurrency > 0
	var leaseID string
	if withLease {
		leaseID = r.idPrefix + strconv.FormatUint(r.idSeq.Add(1), 36)
	}
	args := make([]any, 0, 15)
	for _, dim := range rateDims {
		rt := lim.rate(dim)
		if !rt.Limited() {
			args = append(args, 0, 0, 0, 0)
			continue
		}
		args = append(args, int64(rt.Period/time.Microsecond), rt.Count, rt.burst(), req.Cost.of(dim))
	}
	args = append(args, lim.Concurrency, int64(req.leaseTTL()/time.Microsecond), leaseID)

	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	start := time.Now()
	res, err := admitScript.Run(cctx, r.client, r.keys(req.Subject), args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 1+4*len(rateDims)+2 {
		err = fmt.Errorf("unexpected reply of %d values", len(res))
	}
	if ctx.Err() == nil {
		r.metrics.redisCall("admit", time.Since(start), err)
	}
	if err != nil {
		return Decision{}, fmt.Errorf("redis: %w", err)
	}

	var d Decision
	for i, dim := range rateDims {
		rt := lim.rate(dim)
		if !rt.Limited() {
			continue
		}
		v := res[1+4*i : 5+4*i]
		*d.quota(dim) = Quota{
			Limit:      rt.Count,
			Refused:    v[0] == 1,
			Remaining:  v[1],
			Reset:      time.Duration(v[2]) * time.Microsecond,
			RetryAfter: time.Duration(v[3]) * time.Microsecond,
		}
	}
	if withLease {
		c := res[1+4*len(rateDims):]
		d.Concurrency = Quota{Limit: lim.Concurrency, Refused: c[0] == 1, Remaining: c[1]}
	}
	d.Allowed = res[0] == 1
	if !d.Allowed {
		d.finish(req)
		return d, nil
	}
	d.Grant = &Grant{
		subject:  req.Subject,
		limits:   req.Limits,
		leaseTTL: req.leaseTTL(),
		charged:  req.Cost,
		hasLease: withLease,
		leaseID:  leaseID,
	}
	return d, nil
}

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
	args := make([]any, 0, 9)
	for _, dim := range rateDims {
		rt := g.limits.rate(dim)
		if !rt.Limited() {
			args = append(args, 0, 0, 0)
			continue
		}
		args = append(args, int64(rt.Period/time.Microsecond), rt.Count, c.of(dim))
	}
	return r.call(ctx, "give_back", g.subject, func(ctx context.Context) error {
		return giveBackScript.Run(ctx, r.client, r.keys(g.subject)[:3], args...).Err()
	})
}

// Renew implements Limiter.
func (r *Redis) Renew(ctx context.Context, g *Grant) error {
	if g == nil || !g.hasLease {
		return nil
	}
	if g.fallback {
		return r.local.renew(g)
	}
	if g.released.Load() {
		return ErrLeaseLost
	}
	var renewed int64
	err := r.call(ctx, "renew", g.subject, func(ctx context.Context) error {
		var err error
		renewed, err = renewScript.Run(ctx, r.client, []string{r.Key(g.subject, "inflight")},
			g.leaseID, int64(g.leaseTTL/time.Microsecond)).Int64()
		return err
	})
	if err != nil {
		return err
	}
	if renewed == 0 {
		return fmt.Errorf("ratelimit: renew %s: %w", g.subject, ErrLeaseLost)
	}
	return nil
}

// Release implements Limiter. If Redis cannot be reached the slot frees itself when the lease
// expires.
func (r *Redis) Release(ctx context.Context, g *Grant) error {
	if g == nil || !g.hasLease || g.released.Swap(true) {
		return nil
	}
	r.metrics.leaseHeld(g.subject.Class(), -1)
	if g.fallback {
		r.local.release(g)
		return nil
	}
	return r.call(ctx, "release", g.subject, func(ctx context.Context) error {
		return releaseScript.Run(ctx, r.client, []string{r.Key(g.subject, "inflight")}, g.leaseID).Err()
	})
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
