package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Errors callers can match with errors.Is.
var (
	// ErrUnavailable means the shared limiter could not decide (Redis down or too slow) and the
	// failure policy is fail-closed. The front door answers 503.
	ErrUnavailable = errors.New("ratelimit: limiter unavailable")
	// ErrLeaseLost means a concurrency lease expired (or was never held) before it was renewed,
	// for example after a Redis outage longer than the lease TTL. The request may carry on; its
	// slot is already counted as free.
	ErrLeaseLost = errors.New("ratelimit: lease expired")
	// ErrInvalid means a Request had a malformed subject, limit or cost.
	ErrInvalid = errors.New("ratelimit: invalid request")
)

// Limiter admits requests against per-subject limits. Both implementations, Redis and Local, have
// the same semantics; see the package documentation for the call sequence.
type Limiter interface {
	// Admit checks every limited dimension of req.Subject (requests, images, megapixels and
	// concurrency) and, only if all of them have room, charges req.Cost to the rate dimensions and
	// takes one concurrency lease, atomically. A refusal is a Decision with Allowed false and a nil
	// error; an error means no decision could be made (ErrUnavailable under fail-closed, or
	// ErrInvalid).
	Admit(ctx context.Context, req Request) (Decision, error)
	// GiveBack returns part of an admitted cost (images or megapixels that were not delivered, or
	// the whole cost of a request that never reached an upstream). It never gives back more than
	// the grant charged, and never fills a bucket beyond its burst.
	GiveBack(ctx context.Context, g *Grant, cost Cost) error
	// Renew extends the grant's concurrency lease by its TTL from now. It returns ErrLeaseLost if
	// the lease already expired. It does nothing for a grant without a lease. Callers need not
	// call it: the limiter renews every live lease itself in the background (see the package
	// documentation); Renew tells a caller now whether its lease is still held.
	Renew(ctx context.Context, g *Grant) error
	// Release frees the grant's concurrency slot. It is idempotent and does nothing for a grant
	// without a lease. The Redis limiter does not wait for Redis: it queues the release, sends it
	// in the background (batched), and counts it as released in its own next Admit of the
	// subject; a release Redis does not take is retried in the background until it succeeds or
	// the lease would have expired anyway (while the circuit is open Release says so with an
	// ErrUnavailable error).
	Release(ctx context.Context, g *Grant) error
}

// Subject names what is limited: a client key or an upstream channel. All of one subject's
// counters live under one Redis Cluster hash tag.
type Subject string

// KeySubject returns the subject for the API key with the given id.
func KeySubject(keyID string) Subject { return Subject("key:" + keyID) }

// ChannelSubject returns the subject for the upstream channel with the given configured name.
func ChannelSubject(name string) Subject { return Subject("channel:" + name) }

// Class returns "key", "channel" or "other": the metrics label for the subject's kind.
func (s Subject) Class() string {
	switch {
	case strings.HasPrefix(string(s), "key:"):
		return "key"
	case strings.HasPrefix(string(s), "channel:"):
		return "channel"
	default:
		return "other"
	}
}

func (s Subject) validate() error {
	if s == "" {
		return fmt.Errorf("%w: empty subject", ErrInvalid)
	}
	if strings.ContainsAny(string(s), "{}") {
		return fmt.Errorf("%w: subject %q contains a brace", ErrInvalid, string(s))
	}
	return nil
}

// KilopixelsPerMegapixel converts megapixel limits to the kilopixel unit costs are charged in.
// A megapixel is 1,000,000 pixels; a kilopixel is 1,000 pixels.
const KilopixelsPerMegapixel = 1000

// Rate is a GCRA limit: Count units per Period, with up to Burst units at once. The zero Rate
// means unlimited.
type Rate struct {
	// Count is how many units are allowed per Period; 0 means unlimited.
	Count int64
	// Period is the window Count refers to; usually a minute.
	Period time.Duration
	// Burst is how many units may be taken at once from an idle subject; 0 means Count.
	Burst int64
}

// PerMinute returns a Rate of n units per minute with a burst of n (0 means unlimited).
func PerMinute(n int64) Rate {
	if n <= 0 {
		return Rate{}
	}
	return Rate{Count: n, Period: time.Minute}
}

// MegapixelsPerMinute returns the Rate for a megapixels-per-minute limit, counted in kilopixels
// (0 means unlimited).
func MegapixelsPerMinute(mp int64) Rate { return PerMinute(mp * KilopixelsPerMegapixel) }

// Limited reports whether the rate limits anything.
func (r Rate) Limited() bool { return r.Count > 0 }

func (r Rate) burst() int64 {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Count
}

func (r Rate) validate(name string) error {
	if r.Count < 0 || r.Burst < 0 {
		return fmt.Errorf("%w: %s limit is negative", ErrInvalid, name)
	}
	if r.Count > 0 && r.Period < time.Microsecond {
		return fmt.Errorf("%w: %s period %v is shorter than a microsecond", ErrInvalid, name, r.Period)
	}
	return nil
}

// Limits are one subject's limits. The zero value limits nothing.
type Limits struct {
	// Requests limits requests per period.
	Requests Rate
	// Images limits images per period.
	Images Rate
	// Megapixels limits output pixels per period. Its Count and Burst are in kilopixels; build it
	// with MegapixelsPerMinute.
	Megapixels Rate
	// Concurrency limits requests in flight; 0 means unlimited.
	Concurrency int64
}

// LimitsPerMinute builds Limits from the per-minute figures keys and channels are configured with
// (rpm, ipm, mppm, concurrency; 0 means unlimited).
func LimitsPerMinute(rpm, ipm, mppm, concurrency int64) Limits {
	if concurrency < 0 {
		concurrency = 0
	}
	return Limits{
		Requests:    PerMinute(rpm),
		Images:      PerMinute(ipm),
		Megapixels:  MegapixelsPerMinute(mppm),
		Concurrency: concurrency,
	}
}

func (l *Limits) rate(d Dimension) Rate {
	switch d {
	case DimRequests:
		return l.Requests
	case DimImages:
		return l.Images
	case DimMegapixels:
		return l.Megapixels
	}
	return Rate{}
}

func (l *Limits) validate() error {
	for _, d := range rateDims {
		if err := l.rate(d).validate(d.String()); err != nil {
			return err
		}
	}
	if l.Concurrency < 0 {
		return fmt.Errorf("%w: concurrency limit is negative", ErrInvalid)
	}
	return nil
}

// Cost is what one request charges to the rate dimensions.
type Cost struct {
	// Requests is normally 1.
	Requests int64
	// Images is the number of images asked for (the request's n).
	Images int64
	// Kilopixels is the total output area in thousands of pixels, rounded up.
	Kilopixels int64
}

// CostOf returns the cost of one request for n images of width×height pixels: one request, n
// images and n·width·height pixels rounded up to whole kilopixels.
func CostOf(n, width, height int) Cost {
	return Cost{Requests: 1, Images: int64(max(n, 0)), Kilopixels: kilopixels(n, width, height)}
}

// Undelivered returns what to give back when only delivered of the n images of width×height that
// CostOf charged were produced. The request itself is not given back.
func Undelivered(n, delivered, width, height int) Cost {
	delivered = min(max(delivered, 0), n)
	return Cost{
		Images:     int64(n - delivered),
		Kilopixels: kilopixels(n, width, height) - kilopixels(delivered, width, height),
	}
}

func kilopixels(n, width, height int) int64 {
	if n <= 0 || width <= 0 || height <= 0 {
		return 0
	}
	px := int64(n) * int64(width) * int64(height)
	return (px + 999) / 1000
}

func (c Cost) of(d Dimension) int64 {
	switch d {
	case DimRequests:
		return c.Requests
	case DimImages:
		return c.Images
	case DimMegapixels:
		return c.Kilopixels
	}
	return 0
}

func (c Cost) validate() error {
	if c.Requests < 0 || c.Images < 0 || c.Kilopixels < 0 {
		return fmt.Errorf("%w: negative cost", ErrInvalid)
	}
	return nil
}

// Dimension names one limit. Its String is the metrics label and the name used in messages.
type Dimension uint8

// The dimensions, in the order Admit checks and reports them.
const (
	DimNone Dimension = iota
	DimRequests
	DimImages
	DimMegapixels
	DimConcurrency
)

var rateDims = [...]Dimension{DimRequests, DimImages, DimMegapixels}

// String returns "none", "requests", "images", "megapixels" or "concurrency".
func (d Dimension) String() string {
	switch d {
	case DimRequests:
		return "requests"
	case DimImages:
		return "images"
	case DimMegapixels:
		return "megapixels"
	case DimConcurrency:
		return "concurrency"
	default:
		return "none"
	}
}

// Request is one admission check.
type Request struct {
	// Subject is what is limited: KeySubject or ChannelSubject.
	Subject Subject
	// Limits are the subject's limits, passed on every call so the limiter keeps no configuration.
	Limits Limits
	// Cost is charged to the rate dimensions if the request is admitted.
	Cost Cost
	// LeaseTTL is how long the concurrency lease lives once its owner stops renewing it (the
	// limiter renews live leases every TTL/3 in the background); 0 means the limiter's LeaseTTL
	// option (default DefaultLeaseTTL). Keep it short: it is how long a crashed process's slots
	// stay taken.
	LeaseTTL time.Duration
}

// DefaultLeaseTTL is the lease lifetime when neither Request.LeaseTTL nor the limiter's LeaseTTL
// option is set.
const DefaultLeaseTTL = 15 * time.Second

// MinConcurrencyRetryAfter is the shortest RetryAfter of a concurrency refusal. A concurrency
// refusal's RetryAfter is the time until the subject's earliest lease expires, between this and
// the request's lease TTL (see the package documentation).
const MinConcurrencyRetryAfter = 100 * time.Millisecond

// concurrencyRetryAfter bounds the time until the earliest lease expiry to
// [MinConcurrencyRetryAfter, ttl].
func concurrencyRetryAfter(untilExpiry, ttl time.Duration) time.Duration {
	return min(max(untilExpiry, MinConcurrencyRetryAfter), max(ttl, MinConcurrencyRetryAfter))
}

func (r *Request) validate() error {
	if err := r.Subject.validate(); err != nil {
		return err
	}
	if err := r.Limits.validate(); err != nil {
		return err
	}
	if err := r.Cost.validate(); err != nil {
		return err
	}
	if r.LeaseTTL < 0 || (r.LeaseTTL > 0 && r.LeaseTTL < time.Millisecond) {
		return fmt.Errorf("%w: lease TTL %v is below a millisecond", ErrInvalid, r.LeaseTTL)
	}
	return nil
}

func (r *Request) leaseTTL() time.Duration {
	if r.LeaseTTL > 0 {
		return r.LeaseTTL
	}
	return DefaultLeaseTTL
}

// defaultLeaseTTL fills in the limiter's lease TTL when the request sets none.
func (r *Request) defaultLeaseTTL(ttl time.Duration) {
	if r.LeaseTTL == 0 {
		r.LeaseTTL = ttl
	}
}

// Quota is the state of one dimension after a decision. For a dimension that is not limited all
// fields are zero.
type Quota struct {
	// Limit is the dimension's configured Count (kilopixels for megapixels; slots for
	// concurrency); 0 means the dimension is not limited.
	Limit int64
	// Remaining is how many more units could be admitted right now, after this request's charge
	// if it was admitted.
	Remaining int64
	// Reset is how long until the dimension is back to its full burst if nothing else is admitted.
	// It is zero for concurrency.
	Reset time.Duration
	// Refused reports whether this dimension had no room for the request's cost.
	Refused bool
	// RetryAfter is, for a refused rate dimension, how long until its cost would fit; for a
	// refused concurrency limit, how long until the subject's earliest lease expires (bounded to
	// [MinConcurrencyRetryAfter, the request's lease TTL]).
	RetryAfter time.Duration
}

// Decision is the answer to Admit.
type Decision struct {
	// Allowed reports whether the request was admitted and charged.
	Allowed bool
	// RefusedBy is the first refusing dimension in check order, or DimNone when allowed.
	RefusedBy Dimension
	// Unsatisfiable reports that the cost exceeds a refusing dimension's burst, so retrying will
	// never succeed (for example 8 images against a 5 images/min key). Send 429 without
	// Retry-After.
	Unsatisfiable bool
	// RetryAfter is how long until the request would fit, the longest over the refusing
	// dimensions (for concurrency: until the subject's earliest lease expires). Zero when allowed.
	RetryAfter time.Duration
	// Requests, Images, Megapixels and Concurrency are the per-dimension states.
	Requests, Images, Megapixels, Concurrency Quota
	// Degraded reports that the shared limiter was unreachable and the in-process fallback
	// decided (fail-open), so the limits were enforced per process only.
	Degraded bool
	// Grant is the handle for GiveBack, Renew and Release; nil when not allowed.
	Grant *Grant
}

func (d *Decision) quota(dim Dimension) *Quota {
	switch dim {
	case DimRequests:
		return &d.Requests
	case DimImages:
		return &d.Images
	case DimMegapixels:
		return &d.Megapixels
	case DimConcurrency:
		return &d.Concurrency
	}
	return nil
}

// finish derives RefusedBy, RetryAfter and Unsatisfiable from the per-dimension quotas.
func (d *Decision) finish(req *Request) {
	if d.Allowed {
		return
	}
	for _, dim := range [...]Dimension{DimRequests, DimImages, DimMegapixels, DimConcurrency} {
		q := d.quota(dim)
		if !q.Refused {
			continue
		}
		if d.RefusedBy == DimNone {
			d.RefusedBy = dim
		}
		if dim == DimConcurrency {
			q.RetryAfter = concurrencyRetryAfter(q.RetryAfter, req.leaseTTL())
			d.RetryAfter = max(d.RetryAfter, q.RetryAfter)
			continue
		}
		d.RetryAfter = max(d.RetryAfter, q.RetryAfter)
		if req.Cost.of(dim) > req.Limits.rate(dim).burst() {
			d.Unsatisfiable = true
		}
	}
	if d.Unsatisfiable {
		d.RetryAfter = 0
	}
}

// Grant is the handle of one admitted request: what it charged, where, and its concurrency lease.
// It is safe for concurrent use. The limiter renews the lease while the grant is reachable and not
// released; it holds the grant only weakly, so a grant dropped without Release (a bug, a panic)
// has its lease released once it is garbage-collected.
type Grant struct {
	subject  Subject
	limits   Limits
	leaseTTL time.Duration
	// fallback is true when the in-process fallback of a Redis limiter admitted the request.
	fallback bool
	// lease is the grant's concurrency lease, nil without one. The limiter's keeper holds it
	// (and only a weak pointer to the grant) while it renews it.
	lease *lease
	// pool is the allotment the grant was admitted from (Redis limiter with allotments), nil
	// otherwise; slot is its lease there, when it has one.
	pool *allotment
	slot *poolSlot

	mu      sync.Mutex
	charged Cost // what is still charged and may be given back
}

// Subject returns the subject the grant was admitted for.
func (g *Grant) Subject() Subject { return g.subject }

// HasLease reports whether the grant was admitted with a concurrency slot.
func (g *Grant) HasLease() bool { return g.lease != nil }

// LeaseTTL returns the lease lifetime: how long the slot outlives its owner. The limiter renews
// the lease every third of it while the grant is neither released nor dropped.
func (g *Grant) LeaseTTL() time.Duration { return g.leaseTTL }

// takeBack clamps cost to what is still charged and deducts it.
func (g *Grant) takeBack(cost Cost) Cost {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := Cost{
		Requests:   min(max(cost.Requests, 0), g.charged.Requests),
		Images:     min(max(cost.Images, 0), g.charged.Images),
		Kilopixels: min(max(cost.Kilopixels, 0), g.charged.Kilopixels),
	}
	g.charged.Requests -= c.Requests
	g.charged.Images -= c.Images
	g.charged.Kilopixels -= c.Kilopixels
	return c
}

// untake restores a deduction whose give-back failed, so it may be retried.
func (g *Grant) untake(c Cost) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.charged.Requests += c.Requests
	g.charged.Images += c.Images
	g.charged.Kilopixels += c.Kilopixels
}

func (c Cost) isZero() bool { return c == Cost{} }

// units is c per rate dimension, in rateDims order.
func (c Cost) units() [3]int64 { return [3]int64{c.Requests, c.Images, c.Kilopixels} }

// costOf is the Cost of units per rate dimension, in rateDims order.
func costOf(u [3]int64) Cost { return Cost{Requests: u[0], Images: u[1], Kilopixels: u[2]} }
