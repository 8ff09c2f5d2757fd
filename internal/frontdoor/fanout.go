package frontdoor

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// outcome is what the upstream calls of one request produced.
type outcome struct {
	images []providers.Output
	// from is the channel each image came from (parallel to images).
	from      []string
	describe  []string
	created   time.Time
	withheld  int
	channel   string
	provider  string
	delivered int
	// made describes the delivered images (set once they are converted).
	made []Made
	// err is the first failure (in call order) when some call failed.
	err         error
	failedCalls int
	// indeterminate: a call failed after it may have reached the upstream (timeout, client gone),
	// so the upstream may have billed us for images nobody received.
	indeterminate bool
	// refusedLocally: every call failed before reaching its upstream with a caller fault (an
	// adapter's own validation) or was never made (see chunkResult.notCalled); such a request is
	// not a ledger event.
	refusedLocally bool
	upstream       time.Duration
	// reported is what the call that made each image reported (parallel to images; the images
	// of one call share the pointer).
	reported []*providers.Reported
	// results are the calls' answers, given back by release once the response is written.
	results []*providers.Result

	// Room for from, reported and results of a request answered by one call with one image
	// (the usual case), so that they need no allocations of their own.
	oneFrom     [1]string
	oneReported [1]*providers.Reported
	oneResult   [1]*providers.Result
}

type chunkResult struct {
	res      *providers.Result
	err      error
	route    *catalog.Route // the route called last (or the model's first when none was)
	upstream time.Duration
	// maybeBilled: one of the calls failed after its upstream may have made (and billed) images.
	maybeBilled bool
	// notCalled: no channel was called (every one out of rotation or at its limits, the limiter
	// unavailable): the refusal is the gateway's own and not a ledger event.
	notCalled bool
}

// failover reports whether a failed call on route may be sent to the model's next channel, and
// the reason to count: only when no image can have been generated or billed upstream. That is
// a complete answer saying the upstream failed or refused (5xx, 429, a refused credential, the
// model missing on this account, a redirect), or a request that never reached it (a refused
// connection, DNS, a TLS handshake). A connection reset or an answer broken off after the
// request was sent (Error.AfterSend) is not sent again, unless the adapter declares the call
// idempotent (providers.Idempotent); nor is a timeout or an unusable answer: the upstream may be
// generating (and billing) still, so the call is indeterminate.
func failover(route *catalog.Route, req *providers.Request, err error) (ok bool, reason string) {
	var pe *providers.Error
	errors.As(err, &pe)
	k := providers.KindOf(err)
	if pe != nil && pe.AfterSend {
		if idem, ok := route.Provider.(providers.Idempotent); ok && k == providers.KindUpstreamUnavailable && idem.Idempotent(req) {
			return true, string(k)
		}
		return false, "after_send"
	}
	switch k {
	case providers.KindUpstreamUnavailable, providers.KindUpstreamRateLimited, providers.KindUpstreamAuth, providers.KindModelNotFound:
		return true, string(k)
	case providers.KindUpstreamBadResponse:
		if errors.Is(err, providers.ErrRedirect) {
			return true, string(k)
		}
	}
	return false, ""
}

// mayHaveBilled reports whether a failed call may have made (and been billed for) images
// nobody received: a timeout, a cancellation, a failure after the request was sent.
func mayHaveBilled(err error) bool {
	var pe *providers.Error
	k := providers.KindOf(err)
	return k == providers.KindUpstreamTimeout || k == providers.KindCanceled || errors.As(err, &pe) && pe.AfterSend
}

// chunks splits n images into upstream calls of at most per images.
func chunks(n, per int) []int {
	per = max(per, 1)
	var out []int
	for n > 0 {
		c := min(n, per)
		out = append(out, c)
		n -= c
	}
	return out
}

// fanOut makes one call per part, at most FanoutConcurrency at once.
func (h *Handler) fanOut(ctx context.Context, c *call, parts []int) []chunkResult {
	results := make([]chunkResult, len(parts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, h.o.FanoutConcurrency)
	offset := 0
	for i, n := range parts {
		req := *c.req
		req.N = n
		if c.req.Seed != nil && offset > 0 {
			s := fanSeed(*c.req.Seed, offset, c.entry.Model.SeedMin, c.entry.Model.SeedMax)
			req.Seed = &s
		}
		offset += n
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = chunkResult{err: providers.TransportError(ctx, "", ctx.Err()), route: &c.entry.Routes[0]}
				return
			}
			defer func() { <-sem }()
			results[i] = h.callRoutes(ctx, c.entry, &req)
		}()
	}
	wg.Wait()
	return results
}

// run makes the upstream calls: n above the model's per-call maximum fans out into concurrent
// calls (at most FanoutConcurrency at once), merged in order. With a seed, call i's seed is the
// client's seed plus the number of images before it, so each image stays reproducible.
// When some calls fail, the images of the others are still delivered (and only they are billed);
// the response then says so in X-Imagegw-Partial. When all fail, the first failure is the answer.
func (h *Handler) run(ctx context.Context, c *call) *outcome {
	per := c.entry.Model.MaxN
	if c.req.Seed != nil && c.entry.Model.SeedRepeats {
		per = 1 // one seed would give every image of a call the same picture
	}
	var results []chunkResult
	var parts []int
	if c.req.N >= 1 && c.req.N <= max(per, 1) {
		// One call: on this goroutine, not one more per request in flight, and on c.req itself
		// (callRoute puts it back as it was).
		one := [1]chunkResult{h.callRoutes(ctx, c.entry, c.req)}
		results, parts = one[:], []int{c.req.N}
	} else {
		parts = chunks(c.req.N, per)
		results = h.fanOut(ctx, c, parts)
	}
	return merge(c, results, parts)
}

// merge puts the calls' results together, in order. It is out of run's line: run's frame is
// on the stack of every request waiting on its upstream.
//
//go:noinline
func merge(c *call, results []chunkResult, parts []int) *outcome {
	out := &outcome{refusedLocally: true}
	out.from, out.reported, out.results = out.oneFrom[:0], out.oneReported[:0], out.oneResult[:0]
	for i, r := range results {
		out.upstream = max(out.upstream, r.upstream)
		if r.err != nil {
			out.refusedLocally = out.refusedLocally && (r.notCalled || beforeUpstream(r.err))
			out.failedCalls++
			if out.err == nil {
				out.err = r.err
			}
			if r.maybeBilled || mayHaveBilled(r.err) {
				out.indeterminate = true
			}
			continue
		}
		out.refusedLocally = false
		if out.channel == "" {
			out.channel, out.provider = r.route.Channel, r.route.Type
		}
		if out.created.IsZero() && !r.res.Created.IsZero() {
			out.created = r.res.Created
		}
		imgs := r.res.Images
		if len(imgs) > parts[i] {
			imgs = imgs[:parts[i]] // never deliver (or bill) more than asked
		}
		if out.images == nil {
			out.images = imgs[:len(imgs):len(imgs)] // the answer's own (a later call's images are appended to a copy)
		} else {
			out.images = append(out.images, imgs...)
		}
		for range imgs {
			out.from = append(out.from, r.route.Channel)
			out.reported = append(out.reported, &r.res.Reported)
		}
		out.results = append(out.results, r.res)
		out.withheld += r.res.Withheld
		if c.req.Operation == providers.OpDescribe {
			out.describe = append(out.describe, r.res.Descriptions...)
		}
	}
	if out.created.IsZero() {
		out.created = time.Now()
	}
	if len(out.images) == 0 && out.err == nil && out.withheld > 0 {
		out.err = &providers.Error{Kind: providers.KindContentPolicy, Provider: out.provider,
			Message: "every generated image was withheld by the provider's safety system"}
	}
	return out
}

// madeOf describes delivered items for billing: the channel of each, and the size and quality
// its upstream reported making (zero when it did not say).
func madeOf(items []item) []Made {
	if len(items) == 0 {
		return nil
	}
	made := make([]Made, len(items))
	for i, it := range items {
		made[i].Channel = it.channel
		if r := it.reported; r != nil {
			made[i].Size, made[i].Quality = r.Size, r.Quality
		}
	}
	return made
}

// beforeUpstream reports whether err is an adapter refusing a request before sending it: a
// caller fault with no upstream status.
func beforeUpstream(err error) bool {
	var pe *providers.Error
	return errors.As(err, &pe) && pe.Kind.Fault() == providers.FaultCaller && pe.Status == 0
}

// fanSeed is the seed of a fanned-out call whose first image is offset images into the request:
// the client's seed plus offset, wrapped into the model's seed range [lo, hi] (without one,
// 0 to MaxInt64), so it never overflows or leaves the range. A negative seed on a model without
// a range is a "random" sentinel (seed 004: -1) and is passed on unchanged.
func fanSeed(seed int64, offset int, lo, hi int64) int64 {
	if lo == 0 && hi == 0 {
		if seed < 0 {
			return seed
		}
		hi = math.MaxInt64
	}
	if seed < lo || seed > hi || offset <= 0 {
		return seed
	}
	span := uint64(hi) - uint64(lo) + 1 // 0 when the range is all of int64
	pos := uint64(seed) - uint64(lo) + uint64(offset)
	if span != 0 {
		pos %= span
	}
	return int64(uint64(lo) + pos)
}

// callRoutes calls the model's channels in the router's order (see internal/router) until one
// answers, failing over only where no image can have been made (see failover). A channel whose
// breaker is open, or at its configured limits, is skipped without a call; when every channel
// is at its limits, the call waits for the soonest (up to MaxQueueWait) once, then is refused
// with 429; when every channel is skipped by its breaker, it is refused with the router's 503
// (or 429 when they all asked to wait) at once.
func (h *Handler) callRoutes(ctx context.Context, e *catalog.Entry, req *providers.Request) (res chunkResult) {
	called := false
	defer func() { res.notCalled = !called }()
	routes := e.Routes
	if h.o.Router != nil {
		var err error
		if routes, err = h.o.Router.Order(e, req); err != nil {
			return chunkResult{route: &e.Routes[0], err: err}
		}
	}
	var skips []router.Skip
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		tried, limited, never := false, false, true
		skips = skips[:0]
		for i := range routes {
			route := &routes[i]
			call, skip := h.o.Router.Begin(route)
			if skip != nil {
				skips = append(skips, *skip)
				if !skip.Disabled {
					h.failedOver(route.Channel, "circuit_open")
				}
				continue
			}
			leave := func(int) {}
			if h.o.Channels != nil {
				l, ra, ok, err := h.o.Channels.Enter(ctx, route.Channel, req.N, req.Width, req.Height)
				if err != nil {
					call.Abandon()
					res.err, res.route = &providers.Error{Kind: providers.KindUnavailable, Message: "the rate limiter is unavailable", Err: err}, route
					return
				}
				if !ok {
					call.Abandon()
					limited = true
					if ra != Never {
						never = false
						if wait == 0 || ra < wait {
							wait = ra
						}
					}
					continue
				}
				leave = l
			}
			tried, called = true, true
			billed := res.maybeBilled
			h.callRoute(ctx, route, req, &res)
			call.End(res.err)
			res.maybeBilled = billed || res.err != nil && mayHaveBilled(res.err)
			delivered := 0
			if res.res != nil {
				delivered = min(len(res.res.Images), req.N)
			}
			leave(delivered)
			if res.err == nil || ctx.Err() != nil {
				return
			}
			ok, reason := failover(route, req, res.err)
			if reason != "" {
				h.failedOver(route.Channel, reason)
			}
			if !ok {
				return
			}
		}
		if tried {
			return
		}
		if err := h.noneCalled(ctx, e, skips, limited, never, attempt, wait); err != nil {
			res.err, res.route = err, &routes[0]
			return
		}
	}
}

// noneCalled is callRoutes' answer when no channel was called, every one skipped by its
// breaker or at its limits: the refusal, or nil after waiting for the soonest channel once.
// Out of callRoutes' line, which is on the stack of every request waiting on its upstream.
//
//go:noinline
func (h *Handler) noneCalled(ctx context.Context, e *catalog.Entry, skips []router.Skip, limited, never bool, attempt int, wait time.Duration) error {
	switch {
	case !limited || never && len(skips) > 0:
		return h.o.Router.Refusal(e.Name, skips)
	case never:
		return &providers.Error{Kind: providers.KindRateLimited, Final: true,
			Message: "This request alone exceeds the configured limits of every upstream account for this model; ask for fewer or smaller images."}
	case attempt > 0 || wait > h.o.MaxQueueWait:
		return &providers.Error{Kind: providers.KindRateLimited, RetryAfter: wait,
			Message: "The upstream accounts for this model are at their configured limits; retry later."}
	}
	t := time.NewTimer(max(wait, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return providers.TransportError(ctx, "", ctx.Err())
	case <-t.C:
		return nil
	}
}

// failedOver counts a call moved on from channel (or not, reason after_send).
func (h *Handler) failedOver(channel, reason string) {
	if h.o.Metrics != nil {
		h.o.Metrics.Failovers.WithLabelValues(channel, reason).Inc()
	}
}

// callRoute makes one upstream call and records its metrics, into *res (its upstream time
// added to what res holds already): a result written in place, not returned through the frame
// of callRoutes, which is on the stack of every request waiting on its upstream.
//
// The call names the route's own model in req for as long as it lasts, instead of in a copy of
// req (0.35 KB a request in flight): req is this goroutine's alone while it calls (run's single
// call, or each fanned-out call's own copy), and nothing reads its Model meanwhile.
func (h *Handler) callRoute(ctx context.Context, route *catalog.Route, req *providers.Request, res *chunkResult) {
	model := req.Model
	req.Model = route.Model.ID
	start := time.Now()
	out, err := providers.Do(ctx, route.Provider, req)
	d := time.Since(start)
	req.Model = model
	if h.o.Metrics != nil {
		result := "ok"
		if err != nil {
			result = string(providers.KindOf(err))
		}
		h.o.Metrics.ObserveUpstream(route.Type, route.Channel, result, d)
	}
	if err == nil && out == nil {
		err = &providers.Error{Kind: providers.KindInternal, Provider: route.Channel, Message: "the adapter returned no result"}
	}
	*res = chunkResult{res: out, err: err, route: route, upstream: res.upstream + d}
}

// outcome summarises the call for the Meter.
func (o *outcome) outcome(c *call) Outcome {
	out := Outcome{
		Delivered:  o.delivered,
		Withheld:   o.withheld,
		Channel:    o.channel,
		Provider:   o.provider,
		Latency:    time.Since(c.started),
		Upstream:   o.upstream,
		FailedCall: o.failedCalls,
		Made:       o.made,
	}
	if c.req.Operation == providers.OpDescribe && len(o.describe) > 0 {
		out.Delivered = 1
		out.Made = []Made{{Channel: o.channel}}
	}
	out.NotAttempted = o.refusedLocally && out.Delivered == 0
	switch {
	case out.Delivered > 0:
		out.Status = store.StatusOK
	case o.indeterminate:
		out.Status = store.StatusIndeterminate
	default:
		out.Status = store.StatusFailed
	}
	if o.err != nil {
		out.ErrorKind = providers.KindOf(o.err)
		var pe *providers.Error
		if errors.As(o.err, &pe) && out.Provider == "" {
			out.Provider = pe.Provider
		}
	}
	return out
}
