package frontdoor

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/imagegw/imagegw/internal/catalog"
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
	// refusedLocally: every call failed with a caller fault before reaching its upstream (an
	// adapter's own validation); such a request is not a ledger event.
	refusedLocally bool
	upstream       time.Duration
	// reported is what the call that made each image reported (parallel to images; the images
	// of one call share the pointer).
	reported []*providers.Reported
}

type chunkResult struct {
	res      *providers.Result
	err      error
	route    catalog.Route
	upstream time.Duration
}

// failover reports whether a failure on one channel should be retried on the next: the
// provider failed, not the request, or this channel's upstream does not have the model (an
// account without access, a retired spelling) although another channel may. Timeouts are not
// retried elsewhere: the upstream may be generating (and billing) still.
func failover(k providers.Kind) bool {
	switch k {
	case providers.KindUpstreamUnavailable, providers.KindUpstreamRateLimited, providers.KindUpstreamAuth,
		providers.KindUpstreamBadResponse, providers.KindModelNotFound:
		return true
	}
	return false
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
	parts := chunks(c.req.N, per)
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
				results[i] = chunkResult{err: providers.TransportError(ctx, "", ctx.Err()), route: c.entry.Routes[0]}
				return
			}
			defer func() { <-sem }()
			results[i] = h.callRoutes(ctx, c.entry, &req)
		}()
	}
	wg.Wait()

	out := &outcome{refusedLocally: true}
	for i, r := range results {
		out.upstream = max(out.upstream, r.upstream)
		if r.err != nil {
			out.refusedLocally = out.refusedLocally && beforeUpstream(r.err)
			out.failedCalls++
			if out.err == nil {
				out.err = r.err
			}
			if k := providers.KindOf(r.err); k == providers.KindUpstreamTimeout || k == providers.KindCanceled {
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
		out.images = append(out.images, imgs...)
		for range imgs {
			out.from = append(out.from, r.route.Channel)
			out.reported = append(out.reported, &r.res.Reported)
		}
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

// callRoutes calls the model's channels in order until one answers, failing over on provider
// faults. A channel at its configured limits is skipped; when every channel is, the call waits
// for the soonest (up to MaxQueueWait) once, then is refused with 429.
func (h *Handler) callRoutes(ctx context.Context, e *catalog.Entry, req *providers.Request) chunkResult {
	var last chunkResult
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		tried, never := false, true
		for _, route := range e.Routes {
			leave := func(int) {}
			if h.o.Channels != nil {
				l, ra, ok, err := h.o.Channels.Enter(ctx, route.Channel, req.N, req.Width, req.Height)
				if err != nil {
					return chunkResult{err: &providers.Error{Kind: providers.KindUnavailable, Message: "the rate limiter is unavailable", Err: err}, route: route}
				}
				if !ok {
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
			tried = true
			last = h.callRoute(ctx, route, req, last.upstream)
			delivered := 0
			if last.res != nil {
				delivered = min(len(last.res.Images), req.N)
			}
			leave(delivered)
			if last.err == nil || !failover(providers.KindOf(last.err)) || ctx.Err() != nil {
				return last
			}
		}
		if !tried && never {
			return chunkResult{route: e.Routes[0], err: &providers.Error{Kind: providers.KindRateLimited, Final: true,
				Message: "This request alone exceeds the configured limits of every upstream account for this model; ask for fewer or smaller images."}}
		}
		if tried || attempt > 0 || wait > h.o.MaxQueueWait {
			if !tried {
				return chunkResult{route: e.Routes[0], err: &providers.Error{Kind: providers.KindRateLimited, RetryAfter: wait,
					Message: "The upstream accounts for this model are at their configured limits; retry later."}}
			}
			return last
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return chunkResult{route: e.Routes[0], err: providers.TransportError(ctx, "", ctx.Err())}
		case <-t.C:
		}
	}
}

// callRoute makes one upstream call and records its metrics.
func (h *Handler) callRoute(ctx context.Context, route catalog.Route, req *providers.Request, upstream time.Duration) chunkResult {
	r := *req
	r.Model = route.Model.ID
	start := time.Now()
	res, err := providers.Do(ctx, route.Provider, &r)
	d := time.Since(start)
	if h.o.Metrics != nil {
		result := "ok"
		if err != nil {
			result = string(providers.KindOf(err))
		}
		h.o.Metrics.Upstream.WithLabelValues(route.Type, route.Channel, result).Inc()
		h.o.Metrics.UpstreamLatency.WithLabelValues(route.Type, route.Channel).Observe(d.Seconds())
	}
	if err == nil && res == nil {
		err = &providers.Error{Kind: providers.KindInternal, Provider: route.Channel, Message: "the adapter returned no result"}
	}
	return chunkResult{res: res, err: err, route: route, upstream: upstream + d}
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
