package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// State is a channel's state for a model, as the admin API and the metrics show it.
type State string

// States.
const (
	Closed   State = "closed"    // calls go through
	Open     State = "open"      // failing: skipped without a network call until its cooldown ends
	HalfOpen State = "half_open" // cooled down: a few probe calls test it
	Disabled State = "disabled"  // switched off by an operator: no traffic
)

// States lists every State (the metrics' state label values).
var States = []State{Closed, Open, HalfOpen, Disabled}

// Breaker holds the circuit breaker's settings (config routing:).
type Breaker struct {
	// Failures is how many failed calls in a row open the breaker.
	Failures int
	// ErrorRate opens it when at least this share of the calls of the last Window failed, once
	// MinRequests calls were made in it (0: the rule is off).
	ErrorRate   float64
	MinRequests int
	Window      time.Duration
	// Cooldown is how long an open breaker refuses calls; then HalfOpenProbes calls at once may
	// test the channel.
	Cooldown       time.Duration
	HalfOpenProbes int
}

// DefaultBreaker is the configuration's default (config.DefaultRouting).
var DefaultBreaker = Breaker{Failures: 5, ErrorRate: 0.5, MinRequests: 20, Window: time.Minute, Cooldown: 30 * time.Second, HalfOpenProbes: 1}

// withDefaults fills unset settings from DefaultBreaker.
func (b Breaker) withDefaults() Breaker {
	d := DefaultBreaker
	if b.Failures <= 0 {
		b.Failures = d.Failures
	}
	if b.ErrorRate < 0 || b.ErrorRate > 1 {
		b.ErrorRate = d.ErrorRate
	}
	if b.MinRequests <= 0 {
		b.MinRequests = d.MinRequests
	}
	if b.Window < time.Second {
		b.Window = d.Window
	}
	if b.Cooldown <= 0 {
		b.Cooldown = d.Cooldown
	}
	if b.HalfOpenProbes <= 0 {
		b.HalfOpenProbes = d.HalfOpenProbes
	}
	return b
}

// LatencyHorizon is how old a latency sample may be and still count as recent.
const LatencyHorizon = 10 * time.Minute

// Options wires a Router.
type Options struct {
	Breaker Breaker
	// Price is what a key pays for one image of req served by route, for the cheapest strategy
	// (ok false: unknown or unpriced, which ranks after every known price). Nil compares the
	// routes' list amounts (Route.Price.Amount).
	Price func(route catalog.Route, req *providers.Request) (money.Amount, bool)
	// Metrics receives the channel state gauge and the breaker transitions (nil: none).
	Metrics *metrics.Metrics
	Logger  *zap.Logger
	// Now and Rand (a uniform float64 in [0, 1)) default to the clock and math/rand/v2.
	Now  func() time.Time
	Rand func() float64
}

// Router orders routes and keeps channel health. It is safe for concurrent use.
type Router struct {
	o       Options
	breaker atomic.Pointer[Breaker]

	mu       sync.RWMutex
	health   map[pair]*health
	channels []catalog.Channel

	disabled atomic.Pointer[map[string]bool]

	// failing is set while the store cannot be read for the switches (logged once).
	failing atomic.Bool
}

type pair struct{ channel, model string }

// New returns a Router with no channels; Load gives it a catalog's.
func New(o Options) *Router {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	r := &Router{o: o, health: map[pair]*health{}}
	r.SetBreaker(o.Breaker)
	r.disabled.Store(&map[string]bool{})
	return r
}

// SetBreaker replaces the breaker settings (a configuration reload); states are kept.
func (r *Router) SetBreaker(b Breaker) {
	b = b.withDefaults()
	r.breaker.Store(&b)
}

// Load makes the catalog's channels and channel-model pairs the ones the router knows: their
// health starts closed, and is kept for pairs it already knew (a configuration reload).
func (r *Router) Load(cat *catalog.Catalog) {
	pinned := cat.Pinned()
	r.mu.Lock()
	keep := make(map[pair]*health, len(pinned))
	for _, rt := range pinned {
		p := pair{rt.Channel, rt.Model.ID}
		h := r.health[p]
		if h == nil {
			h = &health{p: p, state: Closed}
		}
		h.mu.Lock()
		h.priority, h.weight = rt.Priority, rt.Weight
		h.mu.Unlock()
		keep[p] = h
	}
	var gone []pair
	for p := range r.health {
		if keep[p] == nil {
			gone = append(gone, p)
		}
	}
	// keep becomes r.health, which calls on routes of an older catalog may add to (healthOf)
	// once the lock is released: what follows reads a copy.
	kept := make([]*health, 0, len(keep))
	for _, h := range keep {
		kept = append(kept, h)
	}
	r.health = keep
	r.channels = slices.Clone(cat.Channels())
	r.mu.Unlock()
	if m := r.o.Metrics; m != nil {
		for _, p := range gone {
			for _, s := range States {
				m.ChannelState.DeleteLabelValues(p.channel, p.model, string(s))
			}
		}
		// Series exist from the start (zero), so dashboards and rate() see them before an event.
		for _, h := range kept {
			m.BreakerTransitions.WithLabelValues(h.p.channel, h.p.model, string(Closed), string(Open))
		}
		for _, ch := range cat.Channels() {
			m.Failovers.WithLabelValues(ch.Name, "circuit_open")
			m.Failovers.WithLabelValues(ch.Name, "after_send")
		}
	}
	for _, h := range kept {
		r.publish(h)
	}
}

// Known reports whether name is a channel of the loaded catalog.
func (r *Router) Known(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.ContainsFunc(r.channels, func(c catalog.Channel) bool { return c.Name == name })
}

// healthOf returns the pair's health, creating it for a route the loaded catalog did not have.
func (r *Router) healthOf(channel, model string) *health {
	p := pair{channel, model}
	r.mu.RLock()
	h := r.health[p]
	r.mu.RUnlock()
	if h != nil {
		return h
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h = r.health[p]; h == nil {
		h = &health{p: p, state: Closed}
		r.health[p] = h
	}
	return h
}

// IsDisabled reports whether the channel is switched off.
func (r *Router) IsDisabled(channel string) bool { return (*r.disabled.Load())[channel] }

// SetEnabled switches one channel on or off on this replica at once (the admin API, after
// storing the switch for the others).
func (r *Router) SetEnabled(channel string, enabled bool) {
	for {
		old := r.disabled.Load()
		next := make(map[string]bool, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
		if enabled {
			delete(next, channel)
		} else {
			next[channel] = true
		}
		if r.disabled.CompareAndSwap(old, &next) {
			r.republish(*old, next)
			return
		}
	}
}

// setDisabled replaces the set of disabled channels.
func (r *Router) setDisabled(next map[string]bool) {
	old := r.disabled.Swap(&next)
	r.republish(*old, next)
}

// republish updates the state gauge of the channels switched between old and next.
func (r *Router) republish(old, next map[string]bool) {
	changed := map[string]bool{}
	for c := range old {
		if !next[c] {
			changed[c] = true
			r.o.Logger.Info("channel enabled", zap.String("channel", c))
		}
	}
	for c := range next {
		if !old[c] {
			changed[c] = true
			r.o.Logger.Info("channel disabled", zap.String("channel", c))
		}
	}
	if len(changed) == 0 {
		return
	}
	r.mu.RLock()
	var hs []*health
	for p, h := range r.health {
		if changed[p.channel] {
			hs = append(hs, h)
		}
	}
	r.mu.RUnlock()
	for _, h := range hs {
		r.publish(h)
	}
}

// Switches is where the operators' channel switches are kept (the store).
type Switches interface {
	ChannelSwitches(ctx context.Context) ([]store.ChannelSwitch, error)
}

// Refresh reads the switches once (within timeout). When the store cannot be read, the switches
// last read stay in force.
func (r *Router) Refresh(ctx context.Context, s Switches, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sw, err := s.ChannelSwitches(ctx)
	if err != nil {
		if !r.failing.Swap(true) {
			r.o.Logger.Warn("channel switches: the store cannot be read; the last ones read stay in force", zap.Error(err))
		}
		return err
	}
	if r.failing.Swap(false) {
		r.o.Logger.Info("channel switches: the store answers again")
	}
	next := map[string]bool{}
	for _, x := range sw {
		if !x.Enabled {
			next[x.Channel] = true
		}
	}
	r.setDisabled(next)
	return nil
}

// Follow reads the switches every interval until ctx ends (each read bounded by timeout), and
// moves breakers whose cooldown ended to half-open so the state gauge does not show an idle
// channel open forever.
func (r *Router) Follow(ctx context.Context, s Switches, every, timeout time.Duration) {
	_ = r.Refresh(ctx, s, timeout)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Refresh(ctx, s, timeout)
			r.Tick()
		}
	}
}

// Tick moves every open breaker whose cooldown has ended to half-open.
func (r *Router) Tick() {
	now := r.o.Now()
	r.mu.RLock()
	hs := make([]*health, 0, len(r.health))
	for _, h := range r.health {
		hs = append(hs, h)
	}
	r.mu.RUnlock()
	for _, h := range hs {
		h.mu.Lock()
		if h.state == Open && !now.Before(h.until) {
			r.transition(h, HalfOpen, now)
		}
		h.mu.Unlock()
	}
}

// Skip says why a route was not called.
type Skip struct {
	Channel string
	// Until is when the channel may be tried again.
	Until time.Time
	// RateLimited: the upstream asked the gateway to wait (429 with Retry-After).
	RateLimited bool
	Disabled    bool
}

// Begin asks to call route now. It returns the call to End once made, or why the route must be
// skipped without a network call: its channel is disabled, its breaker is open, or half-open
// with every probe taken. A nil Router lets every call through (with a nil Call).
func (r *Router) Begin(route *catalog.Route) (*Call, *Skip) {
	if r == nil {
		return nil, nil
	}
	if r.IsDisabled(route.Channel) {
		return nil, &Skip{Channel: route.Channel, Disabled: true}
	}
	h := r.healthOf(route.Channel, route.Model.ID)
	now, b := r.o.Now(), r.breaker.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	probe := false
	switch h.state {
	case Open:
		if now.Before(h.until) {
			return nil, &Skip{Channel: route.Channel, Until: h.until, RateLimited: h.rateLimited}
		}
		r.transition(h, HalfOpen, now)
		fallthrough
	case HalfOpen:
		if h.probes >= b.HalfOpenProbes {
			return nil, &Skip{Channel: route.Channel, Until: now.Add(min(time.Second, b.Cooldown)), RateLimited: h.rateLimited}
		}
		h.probes++
		probe = true
	}
	h.inFlight++
	return &Call{r: r, h: h, gen: h.gen, probe: probe, start: now}, nil
}

// Call is one call let through by Begin.
type Call struct {
	r     *Router
	h     *health
	gen   uint64
	probe bool
	start time.Time
	done  bool
}

// Abandon releases a call that was not made after all (its channel's limits refused it). A nil
// Call is fine.
func (c *Call) Abandon() {
	if c == nil || c.done {
		return
	}
	c.done = true
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlight--
	if c.probe {
		h.probes--
	}
}

// End records what the call came to: nil for a success, else its error. A nil Call is fine.
func (c *Call) End(err error) {
	if c == nil || c.done {
		return
	}
	c.done = true
	r, h := c.r, c.h
	now, b := r.o.Now(), r.breaker.Load()
	o, wait := classify(err)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inFlight--
	if c.probe {
		h.probes--
	}
	current := c.gen == h.gen
	switch o {
	case neutral:
	case success:
		h.count(now, b, true)
		h.consecutive = 0
		if err == nil {
			h.sample(now, now.Sub(c.start))
		}
		if current && h.state == HalfOpen {
			r.transition(h, Closed, now)
		}
	case failure:
		h.count(now, b, false)
		h.consecutive++
		h.lastError = string(providers.KindOf(err))
		switch {
		case wait > 0: // the upstream asked to wait: cool the channel for that long
			if h.state != Open || h.until.Before(now.Add(wait)) {
				h.until, h.rateLimited = now.Add(wait), true
				if h.state != Open {
					r.transition(h, Open, now)
				}
			}
		case !current:
		case h.state == HalfOpen:
			h.until, h.rateLimited = now.Add(b.Cooldown), false
			r.transition(h, Open, now)
		case h.state == Closed && (h.consecutive >= b.Failures || h.rateTripped(now, b)):
			h.until, h.rateLimited = now.Add(b.Cooldown), false
			r.transition(h, Open, now)
		}
	}
}

// outcome is how a call's result counts for its channel's health.
type outcome int

const (
	neutral outcome = iota // canceled, refused before the upstream, a gateway fault
	success                // the upstream answered (an answer refusing the request included)
	failure                // a provider fault
)

// classify says how err counts, and how long the upstream asked to wait (429 Retry-After).
func classify(err error) (outcome, time.Duration) {
	if err == nil {
		return success, 0
	}
	var pe *providers.Error
	errors.As(err, &pe)
	switch k := providers.KindOf(err); k {
	case providers.KindUpstreamRateLimited:
		if pe != nil && pe.RetryAfter > 0 {
			return failure, min(pe.RetryAfter, providers.MaxRetryAfter)
		}
		return failure, 0
	case providers.KindUpstreamAuth, providers.KindUpstreamUnavailable, providers.KindUpstreamTimeout,
		providers.KindUpstreamBadResponse, providers.KindModelNotFound:
		return failure, 0
	default:
		if k.Fault() == providers.FaultCaller && pe != nil && pe.Status != 0 {
			return success, 0
		}
	}
	return neutral, 0
}

// transition moves h to state to (h.mu held) and reports it.
func (r *Router) transition(h *health, to State, now time.Time) {
	from := h.state
	if from == to {
		return
	}
	h.state = to
	h.gen++
	switch to {
	case Open:
		h.openedAt = now
	case HalfOpen:
		h.probes = 0
	case Closed:
		h.consecutive = 0
		h.buckets = [nBuckets]bucket{}
		h.rateLimited = false
	}
	if m := r.o.Metrics; m != nil {
		m.BreakerTransitions.WithLabelValues(h.p.channel, h.p.model, string(from), string(to)).Inc()
	}
	log := r.o.Logger.Info
	if to == Open {
		log = r.o.Logger.Warn
	}
	log("channel breaker "+string(to), zap.String("channel", h.p.channel), zap.String("model", h.p.model),
		zap.String("from", string(from)), zap.Int("consecutive_failures", h.consecutive), zap.String("last_error", h.lastError),
		zap.Time("until", h.until))
	r.publishLocked(h)
}

// publish sets the pair's state gauge.
func (r *Router) publish(h *health) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.publishLocked(h)
}

func (r *Router) publishLocked(h *health) {
	m := r.o.Metrics
	if m == nil {
		return
	}
	st := h.state
	if r.IsDisabled(h.p.channel) {
		st = Disabled
	}
	for _, s := range States {
		v := 0.0
		if s == st {
			v = 1
		}
		m.ChannelState.WithLabelValues(h.p.channel, h.p.model, string(s)).Set(v)
	}
}

// nBuckets is how many slices of Breaker.Window the error rate is counted in.
const nBuckets = 10

// nSamples is how many recent successful calls' latencies are kept per pair.
const nSamples = 64

type bucket struct {
	epoch     int64
	ok, fails int
}

type sample struct {
	at time.Time
	d  time.Duration
}

// health is one channel-model pair's breaker and statistics.
type health struct {
	mu sync.Mutex
	p  pair

	state       State // Closed, Open or HalfOpen
	gen         uint64
	until       time.Time // Open: when it half-opens
	openedAt    time.Time
	rateLimited bool // Open because the upstream asked to wait
	consecutive int
	probes      int
	inFlight    int
	lastError   string

	buckets [nBuckets]bucket
	samples [nSamples]sample
	next    int

	// priority and weight come from the loaded catalog (for the admin API).
	priority, weight int
}

func bucketOf(now time.Time, b *Breaker) int64 {
	return now.UnixNano() / int64(max(b.Window/nBuckets, time.Millisecond))
}

// count adds a call to the window.
func (h *health) count(now time.Time, b *Breaker, ok bool) {
	e := bucketOf(now, b)
	bk := &h.buckets[e%nBuckets]
	if bk.epoch != e {
		*bk = bucket{epoch: e}
	}
	if ok {
		bk.ok++
	} else {
		bk.fails++
	}
}

// window returns the calls of the window: successes and failures.
func (h *health) window(now time.Time, b *Breaker) (ok, fails int) {
	e := bucketOf(now, b)
	for _, bk := range h.buckets {
		if bk.epoch > e-nBuckets && bk.epoch <= e {
			ok += bk.ok
			fails += bk.fails
		}
	}
	return ok, fails
}

// rateTripped reports whether the window's error rate opens the breaker.
func (h *health) rateTripped(now time.Time, b *Breaker) bool {
	if b.ErrorRate <= 0 {
		return false
	}
	ok, fails := h.window(now, b)
	n := ok + fails
	return n >= b.MinRequests && float64(fails) >= b.ErrorRate*float64(n)
}

func (h *health) sample(now time.Time, d time.Duration) {
	h.samples[h.next] = sample{at: now, d: d}
	h.next = (h.next + 1) % nSamples
}

// latency returns the recent latencies, sorted.
func (h *health) latency(now time.Time) []time.Duration {
	var ds []time.Duration
	for _, s := range h.samples {
		if !s.at.IsZero() && now.Sub(s.at) <= LatencyHorizon {
			ds = append(ds, s.d)
		}
	}
	slices.Sort(ds)
	return ds
}

// quantile of sorted durations (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// usable reports whether Begin would let a call through now (h.mu held).
func (h *health) usable(now time.Time, b *Breaker) bool {
	switch h.state {
	case Open:
		return !now.Before(h.until) && b.HalfOpenProbes > 0
	case HalfOpen:
		return h.probes < b.HalfOpenProbes
	}
	return true
}

// Order returns the routes of e in the order to try them for req (see the package
// documentation): disabled channels left out, and, when some routes can do req's operation, only
// those. When every channel of e is disabled it fails with a 503 saying so. The result may be
// e's own slice: callers must not modify it.
func (r *Router) Order(e *catalog.Entry, req *providers.Request) ([]catalog.Route, error) {
	// routes is the entry's own slice (read only) until a filter needs a copy: the usual request,
	// on a model of one channel that nobody disabled, allocates nothing here.
	routes := e.Routes
	if dis := *r.disabled.Load(); len(dis) > 0 && slices.ContainsFunc(routes, func(rt catalog.Route) bool { return dis[rt.Channel] }) {
		routes = slices.DeleteFunc(slices.Clone(routes), func(rt catalog.Route) bool { return dis[rt.Channel] })
	}
	if len(routes) == 0 {
		return nil, &providers.Error{Kind: providers.KindUpstreamUnavailable, RetryAfter: 30 * time.Second,
			Message: fmt.Sprintf("Every upstream channel of the model '%s' is disabled by the operator; try another model or retry later.", e.Name)}
	}
	if op := req.Operation; op != "" {
		can := func(rt catalog.Route) bool {
			return slices.Contains(rt.Model.Operations, op) && providers.Supports(rt.Provider, op)
		}
		if n := countFunc(routes, can); n > 0 && n < len(routes) {
			routes = slices.DeleteFunc(slices.Clone(routes), func(rt catalog.Route) bool { return !can(rt) })
		}
	}
	if len(routes) < 2 {
		return routes, nil
	}
	now, b := r.o.Now(), r.breaker.Load()
	type ranked struct {
		rt    catalog.Route
		bad   int   // 1: its breaker would refuse a call now (cheapest, fastest)
		score int64 // price or latency (cheapest, fastest)
	}
	rs := make([]ranked, len(routes))
	for i, rt := range routes {
		rs[i].rt = rt
		switch e.Strategy {
		case catalog.StrategyCheapest, catalog.StrategyFastest:
			h := r.healthOf(rt.Channel, rt.Model.ID)
			h.mu.Lock()
			if !h.usable(now, b) {
				rs[i].bad = 1
			}
			var lat []time.Duration
			if e.Strategy == catalog.StrategyFastest {
				lat = h.latency(now)
			}
			h.mu.Unlock()
			if e.Strategy == catalog.StrategyFastest {
				rs[i].score = -1 // unknown: first, so that it gets measured
				if len(lat) > 0 {
					rs[i].score = int64(quantile(lat, 0.5) / time.Millisecond)
				}
			} else {
				rs[i].score = r.price(rt, req)
			}
		}
	}
	// priority: group, then tier; cheapest and fastest: over every group, by score, then tier.
	byGroup := e.Strategy != catalog.StrategyCheapest && e.Strategy != catalog.StrategyFastest
	less := func(a, b ranked) int {
		switch {
		case byGroup && a.rt.Group != b.rt.Group:
			return a.rt.Group - b.rt.Group
		case a.bad != b.bad:
			return a.bad - b.bad
		case a.score != b.score:
			if a.score < b.score {
				return -1
			}
			return 1
		case a.rt.Priority != b.rt.Priority:
			return a.rt.Priority - b.rt.Priority
		}
		return a.rt.Group - b.rt.Group
	}
	slices.SortStableFunc(rs, less)
	out := make([]catalog.Route, len(rs))
	for i := range rs {
		out[i] = rs[i].rt
	}
	// A weighted random order inside each run of equal rank.
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && less(rs[i], rs[j]) == 0 {
			j++
		}
		if j-i > 1 {
			r.shuffle(out[i:j])
		}
		i = j
	}
	return out, nil
}

// shuffle orders routes at random by weight, without replacement: the first is route i with
// probability weight_i / Σ weight; routes of weight 0 (standbys) go last, in their order.
func (r *Router) shuffle(routes []catalog.Route) {
	standby := make([]catalog.Route, 0, len(routes))
	weighted := make([]catalog.Route, 0, len(routes))
	total := 0
	for _, rt := range routes {
		if rt.Weight <= 0 {
			standby = append(standby, rt)
			continue
		}
		weighted = append(weighted, rt)
		total += rt.Weight
	}
	out := routes[:0]
	for len(weighted) > 0 {
		x := r.o.Rand() * float64(total)
		k := len(weighted) - 1
		for i, rt := range weighted {
			if x < float64(rt.Weight) {
				k = i
				break
			}
			x -= float64(rt.Weight)
		}
		out = append(out, weighted[k])
		total -= weighted[k].Weight
		weighted = append(weighted[:k], weighted[k+1:]...)
	}
	copy(routes[len(out):], standby)
}

// price is the route's price of one image of req, for ranking (unknown: the largest).
func (r *Router) price(rt catalog.Route, req *providers.Request) int64 {
	if r.o.Price != nil {
		if a, ok := r.o.Price(rt, req); ok {
			return int64(a)
		}
		return 1<<63 - 1
	}
	if rt.Price.IsZero() {
		return 1<<63 - 1
	}
	return int64(rt.Price.Amount)
}

// Refusal is the error of a call none of whose routes could be tried because each was skipped
// (skips, at least one): a 429 when every channel asked the gateway to wait, else a 503
// upstream_unavailable. Both carry Retry-After: when the first channel may be tried again.
func (r *Router) Refusal(model string, skips []Skip) error {
	now := time.Now()
	if r != nil {
		now = r.o.Now()
	}
	var soonest time.Time
	limited, disabled := true, true
	for _, s := range skips {
		if s.Disabled {
			continue
		}
		disabled = false
		limited = limited && s.RateLimited
		if soonest.IsZero() || s.Until.Before(soonest) {
			soonest = s.Until
		}
	}
	if disabled {
		return &providers.Error{Kind: providers.KindUpstreamUnavailable, RetryAfter: 30 * time.Second,
			Message: fmt.Sprintf("Every upstream channel of the model '%s' is disabled by the operator; try another model or retry later.", model)}
	}
	wait := max(soonest.Sub(now), time.Second)
	secs := int64((wait + time.Second - 1) / time.Second)
	if limited {
		return &providers.Error{Kind: providers.KindUpstreamRateLimited, RetryAfter: wait,
			Message: fmt.Sprintf("Every upstream channel of the model '%s' asked the gateway to slow down; retry in %d s.", model, secs)}
	}
	return &providers.Error{Kind: providers.KindUpstreamUnavailable, RetryAfter: wait,
		Message: fmt.Sprintf("Every upstream channel of the model '%s' is failing and out of rotation for now (circuit breaker open); retry in %d s.", model, secs)}
}

// ChannelView is one channel as GET /admin/v1/channels shows it.
type ChannelView struct {
	Object  string      `json:"object"`
	Name    string      `json:"name"`
	Type    string      `json:"type"`
	Enabled bool        `json:"enabled"`
	Models  []ModelView `json:"models"`
}

// ModelView is a channel's routing and health for one upstream model.
type ModelView struct {
	Model    string `json:"model"`
	State    State  `json:"state"`
	Priority int    `json:"priority"`
	Weight   int    `json:"weight"`
	// SuccessRate is the share of the window's calls that succeeded (null: none was made).
	SuccessRate         *float64   `json:"success_rate"`
	Requests            int        `json:"requests"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	LatencyP50MS        *int64     `json:"latency_p50_ms"`
	LatencyP95MS        *int64     `json:"latency_p95_ms"`
	InFlight            int        `json:"in_flight"`
	OpenUntil           *time.Time `json:"open_until"`
	LastError           *string    `json:"last_error"`
}

// Snapshot returns every channel of the loaded catalog with its models' health, in channel
// order and by model id.
func (r *Router) Snapshot() []ChannelView {
	now, b := r.o.Now(), r.breaker.Load()
	r.mu.RLock()
	chans := slices.Clone(r.channels)
	byChannel := map[string][]*health{}
	for p, h := range r.health {
		byChannel[p.channel] = append(byChannel[p.channel], h)
	}
	r.mu.RUnlock()
	out := make([]ChannelView, 0, len(chans))
	for _, ch := range chans {
		disabled := r.IsDisabled(ch.Name)
		v := ChannelView{Object: "channel", Name: ch.Name, Type: ch.Type, Enabled: !disabled, Models: []ModelView{}}
		hs := byChannel[ch.Name]
		sort.Slice(hs, func(i, j int) bool { return hs[i].p.model < hs[j].p.model })
		for _, h := range hs {
			v.Models = append(v.Models, h.view(now, b, disabled))
		}
		out = append(out, v)
	}
	return out
}

func (h *health) view(now time.Time, b *Breaker, disabled bool) ModelView {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := ModelView{Model: h.p.model, State: h.state, Priority: h.priority, Weight: h.weight,
		ConsecutiveFailures: h.consecutive, InFlight: h.inFlight}
	if h.state == Open {
		if now.Before(h.until) {
			t := h.until.UTC()
			v.OpenUntil = &t
		} else {
			v.State = HalfOpen // the next call probes it
		}
	}
	if disabled {
		v.State = Disabled
	}
	ok, fails := h.window(now, b)
	if v.Requests = ok + fails; v.Requests > 0 {
		rate := float64(ok) / float64(v.Requests)
		v.SuccessRate = &rate
	}
	if ds := h.latency(now); len(ds) > 0 {
		p50, p95 := quantile(ds, 0.5).Milliseconds(), quantile(ds, 0.95).Milliseconds()
		v.LatencyP50MS, v.LatencyP95MS = &p50, &p95
	}
	if h.lastError != "" {
		s := h.lastError
		v.LastError = &s
	}
	return v
}

func countFunc[T any](xs []T, f func(T) bool) int {
	n := 0
	for _, x := range xs {
		if f(x) {
			n++
		}
	}
	return n
}
