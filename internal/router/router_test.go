package router_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// stub is a provider that only generates.
type stub struct{ name string }

func (s stub) Name() string              { return s.name }
func (s stub) Models() []providers.Model { return nil }
func (s stub) Generate(context.Context, *providers.Request) (*providers.Result, error) {
	return nil, errors.New("not called")
}

// editor also edits.
type editor struct{ stub }

func (editor) Edit(context.Context, *providers.Request) (*providers.Result, error) {
	return nil, errors.New("not called")
}

var model = &providers.Model{ID: "m", Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit}}

func route(channel string, priority, weight int) catalog.Route {
	return catalog.Route{Channel: channel, Type: "t", Provider: stub{channel}, Model: model, Priority: priority, Weight: weight,
		Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.01")}}
}

func entry(strategy string, routes ...catalog.Route) *catalog.Entry {
	return &catalog.Entry{Name: "m", Routes: routes, Strategy: strategy}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRouter(t *testing.T, b router.Breaker) (*router.Router, *clock, *metrics.Metrics) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	m := metrics.New()
	rnd := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	r := router.New(router.Options{Breaker: b, Metrics: m, Now: c.Now, Rand: func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return rnd.Float64()
	}})
	return r, c, m
}

func order(t *testing.T, r *router.Router, e *catalog.Entry) []string {
	t.Helper()
	rs, err := r.Order(e, &providers.Request{Operation: providers.OpGenerate})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rt := range rs {
		out = append(out, rt.Channel)
	}
	return out
}

// TestWeightsSplitATier: weights 3 and 1 put the first channel first 75 % of the time, and
// every order holds both channels once.
func TestWeightsSplitATier(t *testing.T) {
	r, _, _ := newRouter(t, router.Breaker{})
	e := entry("", route("a", 0, 3), route("b", 0, 1))
	first := map[string]int{}
	const n = 20000
	for range n {
		o := order(t, r, e)
		if len(o) != 2 || o[0] == o[1] {
			t.Fatalf("order %v", o)
		}
		first[o[0]]++
	}
	if share := float64(first["a"]) / n; share < 0.73 || share > 0.77 {
		t.Fatalf("a first in %.3f of orders, want 0.75 ± 0.02 (%v)", share, first)
	}
}

// TestPriorityTiersAndStandbys: tier 0 before tier 1 whatever the weights; a weight-0 route
// comes after its tier's weighted ones; a fallback group after the target's.
func TestPriorityTiersAndStandbys(t *testing.T) {
	r, _, _ := newRouter(t, router.Breaker{})
	fb := route("fallback", 0, 100)
	fb.Group = 1
	e := entry("", route("backup", 1, 100), fb, route("standby", 0, 0), route("main", 0, 1))
	for range 200 {
		o := order(t, r, e)
		if want := []string{"main", "standby", "backup", "fallback"}; !equal(o, want) {
			t.Fatalf("order %v, want %v", o, want)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOperationFilter: routes whose adapter cannot do the operation are left out when another
// can.
func TestOperationFilter(t *testing.T) {
	r, _, _ := newRouter(t, router.Breaker{})
	ed := route("ed", 1, 1)
	ed.Provider = editor{stub{"ed"}}
	e := entry("", route("gen", 0, 1), ed)
	rs, err := r.Order(e, &providers.Request{Operation: providers.OpEdit})
	if err != nil || len(rs) != 1 || rs[0].Channel != "ed" {
		t.Fatalf("edit: %v %v", rs, err)
	}
	if o := order(t, r, e); !equal(o, []string{"gen", "ed"}) {
		t.Fatalf("generate: %v", o)
	}
}

var upstream500 = &providers.Error{Kind: providers.KindUpstreamUnavailable, Status: 500, Message: "down"}

// TestBreakerOpensCoolsAndCloses: five failures in a row open the breaker (calls are skipped
// until the cooldown ends); then one probe at a time: a failure opens it again, a success
// closes it.
func TestBreakerOpensCoolsAndCloses(t *testing.T) {
	r, clk, m := newRouter(t, router.Breaker{Failures: 5, Cooldown: 30 * time.Second, HalfOpenProbes: 1})
	rt := route("a", 0, 1)
	for i := range 5 {
		c, skip := r.Begin(&rt)
		if skip != nil {
			t.Fatalf("call %d skipped while closed", i)
		}
		c.End(upstream500)
	}
	c, skip := r.Begin(&rt)
	if c != nil || skip == nil || !skip.Until.Equal(clk.Now().Add(30*time.Second)) || skip.RateLimited {
		t.Fatalf("after 5 failures: call %v skip %+v", c, skip)
	}
	if v := value(m.ChannelState.WithLabelValues("a", "m", "open")); v != 1 {
		t.Fatalf("state gauge open = %v", v)
	}
	err := r.Refusal("m", []router.Skip{*skip})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUpstreamUnavailable || pe.RetryAfter != 30*time.Second {
		t.Fatalf("refusal %#v", err)
	}

	clk.Add(30 * time.Second)
	probe, skip := r.Begin(&rt)
	if probe == nil {
		t.Fatalf("no probe after the cooldown: %+v", skip)
	}
	if c, _ := r.Begin(&rt); c != nil {
		t.Fatal("a second probe while one is in flight")
	}
	probe.End(upstream500)
	if c, _ := r.Begin(&rt); c != nil {
		t.Fatal("a call right after the probe failed")
	}
	clk.Add(30 * time.Second)
	probe, _ = r.Begin(&rt)
	probe.End(nil)
	for range 3 {
		c, skip := r.Begin(&rt)
		if c == nil {
			t.Fatalf("skipped after the probe succeeded: %+v", skip)
		}
		c.End(nil)
	}
	if v := value(m.BreakerTransitions.WithLabelValues("a", "m", "half_open", "closed")); v != 1 {
		t.Fatalf("half_open→closed transitions = %v", v)
	}
	if v := value(m.BreakerTransitions.WithLabelValues("closed", "open", "", "")); v != 0 {
		t.Fatal("bad labels")
	}
}

// TestBreakerErrorRate: with failures interleaved with successes (never 5 in a row), half the
// calls of the window failing opens it once 20 calls were made.
func TestBreakerErrorRate(t *testing.T) {
	r, _, _ := newRouter(t, router.Breaker{Failures: 5, ErrorRate: 0.5, MinRequests: 20, Window: time.Minute})
	rt := route("a", 0, 1)
	for i := range 19 {
		c, skip := r.Begin(&rt)
		if skip != nil {
			t.Fatalf("call %d skipped", i)
		}
		if i%2 == 0 {
			c.End(upstream500)
		} else {
			c.End(nil)
		}
	}
	c, _ := r.Begin(&rt)
	c.End(nil) // 20 calls, 10 failed
	c, _ = r.Begin(&rt)
	c.End(upstream500) // 21 calls, 11 failed
	if c, skip := r.Begin(&rt); c != nil || skip == nil {
		t.Fatal("not open at an error rate over 0.5")
	}
}

// TestRetryAfterCoolsTheChannel: an upstream 429 with Retry-After opens the breaker for that
// long at once; when every channel did so, the refusal is a 429.
func TestRetryAfterCoolsTheChannel(t *testing.T) {
	r, clk, _ := newRouter(t, router.Breaker{})
	rt := route("a", 0, 1)
	c, _ := r.Begin(&rt)
	c.End(&providers.Error{Kind: providers.KindUpstreamRateLimited, Status: 429, RetryAfter: 7 * time.Second})
	_, skip := r.Begin(&rt)
	if skip == nil || !skip.RateLimited || !skip.Until.Equal(clk.Now().Add(7*time.Second)) {
		t.Fatalf("skip %+v", skip)
	}
	var pe *providers.Error
	if err := r.Refusal("m", []router.Skip{*skip}); !errors.As(err, &pe) || pe.Kind != providers.KindUpstreamRateLimited || pe.RetryAfter != 7*time.Second {
		t.Fatalf("refusal %v", err)
	}
	clk.Add(7 * time.Second)
	if c, _ := r.Begin(&rt); c == nil {
		t.Fatal("still cooling after Retry-After")
	}
}

// TestOutcomesThatDoNotCount: a canceled call, a request refused before it reached the upstream
// and an upstream answer refusing the request leave a breaker closed.
func TestOutcomesThatDoNotCount(t *testing.T) {
	r, _, _ := newRouter(t, router.Breaker{Failures: 2})
	rt := route("a", 0, 1)
	for _, err := range []error{
		&providers.Error{Kind: providers.KindCanceled},
		&providers.Error{Kind: providers.KindInvalidRequest},
		&providers.Error{Kind: providers.KindContentPolicy, Status: 400},
		context.Canceled,
	} {
		for range 3 {
			c, skip := r.Begin(&rt)
			if skip != nil {
				t.Fatalf("%v opened the breaker", err)
			}
			c.End(err)
		}
	}
}

// TestStaleCallsDoNotFlipTheBreaker: a call begun before the breaker opened and ending after it
// half-opened neither closes nor reopens it.
func TestStaleCallsDoNotFlipTheBreaker(t *testing.T) {
	r, clk, _ := newRouter(t, router.Breaker{Failures: 1, Cooldown: time.Second})
	rt := route("a", 0, 1)
	slow, _ := r.Begin(&rt)
	c, _ := r.Begin(&rt)
	c.End(upstream500) // opens
	clk.Add(time.Second)
	probe, _ := r.Begin(&rt) // half-open
	slow.End(nil)
	if c, _ := r.Begin(&rt); c != nil {
		t.Fatal("a stale success closed the half-open breaker")
	}
	probe.End(nil)
	if c, _ := r.Begin(&rt); c == nil {
		t.Fatal("the probe's success did not close it")
	}
}

// TestCheapest: the lowest price first; a route whose breaker is open goes last; equal prices
// split by weight.
func TestCheapest(t *testing.T) {
	r, _, _ := newRouter(t, router.Breaker{Failures: 1})
	price := func(ch, amount string) catalog.Route {
		rt := route(ch, 0, 1)
		rt.Price.Amount = money.MustParse(amount)
		return rt
	}
	e := entry(catalog.StrategyCheapest, price("dear", "0.05"), price("cheap", "0.01"), price("mid", "0.02"))
	if o := order(t, r, e); !equal(o, []string{"cheap", "mid", "dear"}) {
		t.Fatalf("order %v", o)
	}
	c, _ := r.Begin(&e.Routes[1])
	c.End(upstream500)
	if o := order(t, r, e); !equal(o, []string{"mid", "dear", "cheap"}) {
		t.Fatalf("with cheap open: %v", o)
	}
	// An unpriced route ranks after the priced ones.
	free := route("unpriced", 0, 1)
	free.Price = providers.Price{}
	if o := order(t, r, entry(catalog.StrategyCheapest, free, price("dear", "0.05"))); !equal(o, []string{"dear", "unpriced"}) {
		t.Fatalf("unpriced: %v", o)
	}
}

// TestFastest: the lowest recent median latency first; a route without a measurement first of
// all; samples older than LatencyHorizon are forgotten.
func TestFastest(t *testing.T) {
	r, clk, _ := newRouter(t, router.Breaker{})
	e := entry(catalog.StrategyFastest, route("slow", 0, 1), route("quick", 0, 1), route("new", 0, 1))
	call := func(ch string, d time.Duration) {
		for _, rt := range e.Routes {
			if rt.Channel == ch {
				c, _ := r.Begin(&rt)
				clk.Add(d)
				c.End(nil)
			}
		}
	}
	for range 5 {
		call("slow", 3*time.Second)
		call("quick", 500*time.Millisecond)
	}
	if o := order(t, r, e); !equal(o, []string{"new", "quick", "slow"}) {
		t.Fatalf("order %v", o)
	}
	call("new", 2*time.Second)
	if o := order(t, r, e); !equal(o, []string{"quick", "new", "slow"}) {
		t.Fatalf("order %v", o)
	}
	clk.Add(router.LatencyHorizon + time.Second)
	call("slow", time.Second)
	// Only slow has a recent sample: the others are unmeasured again and come first.
	if o := order(t, r, e); o[2] != "slow" {
		t.Fatalf("order %v", o)
	}
}

type switches struct {
	mu  sync.Mutex
	sw  []store.ChannelSwitch
	err error
}

func (s *switches) ChannelSwitches(context.Context) ([]store.ChannelSwitch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sw, s.err
}

// TestDisabledChannels: a channel switched off in the store gets no traffic; a store that
// cannot be read keeps the last switches; every channel off is a 503.
func TestDisabledChannels(t *testing.T) {
	r, _, m := newRouter(t, router.Breaker{})
	e := entry("", route("a", 0, 1), route("b", 0, 1))
	c, _ := r.Begin(&e.Routes[1])
	c.End(nil)
	s := &switches{sw: []store.ChannelSwitch{{Channel: "a", Enabled: false}, {Channel: "b", Enabled: true}}}
	if err := r.Refresh(t.Context(), s, time.Second); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if o := order(t, r, e); !equal(o, []string{"b"}) {
			t.Fatalf("order %v", o)
		}
	}
	if _, skip := r.Begin(&e.Routes[0]); skip == nil || !skip.Disabled {
		t.Fatal("a disabled channel was let through")
	}
	s.err = errors.New("store down")
	if err := r.Refresh(t.Context(), s, time.Second); err == nil || !r.IsDisabled("a") {
		t.Fatal("a store error dropped the switches")
	}
	r.SetEnabled("b", false)
	_, err := r.Order(e, &providers.Request{})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUpstreamUnavailable {
		t.Fatalf("every channel disabled: %v", err)
	}
	r.SetEnabled("a", true)
	if o := order(t, r, e); !equal(o, []string{"a"}) {
		t.Fatalf("order %v", o)
	}
	// The gauge follows the switch for pairs the router knows.
	if v := value(m.ChannelState.WithLabelValues("b", "m", "disabled")); v != 1 {
		t.Fatalf("disabled gauge %v", v)
	}
}

// TestSnapshot: success rate, latency quantiles, in flight and the open state as the admin API
// shows them.
func TestSnapshot(t *testing.T) {
	r, clk, _ := newRouter(t, router.Breaker{Failures: 3})
	sandbox := stub{"a"}
	cat, err := catalog.Build([]catalog.Channel{{Name: "a", Type: "t", Provider: modelsOf{sandbox}, Priority: 1, Weight: 3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Load(cat)
	rt := cat.Pinned()[0]
	for i := range 10 {
		c, _ := r.Begin(&rt)
		clk.Add(time.Duration(i+1) * 100 * time.Millisecond)
		c.End(nil)
	}
	c, _ := r.Begin(&rt)
	c.End(upstream500)
	inflight, _ := r.Begin(&rt)
	defer inflight.End(nil)
	vs := r.Snapshot()
	if len(vs) != 1 || vs[0].Name != "a" || !vs[0].Enabled || len(vs[0].Models) != 1 {
		t.Fatalf("snapshot %+v", vs)
	}
	v := vs[0].Models[0]
	if v.Model != "m" || v.State != router.Closed || v.Priority != 1 || v.Weight != 3 || v.Requests != 11 || v.InFlight != 1 ||
		v.SuccessRate == nil || *v.SuccessRate < 0.90 || *v.SuccessRate > 0.91 || *v.LatencyP50MS != 500 || *v.LatencyP95MS != 1000 ||
		v.ConsecutiveFailures != 1 || v.LastError == nil || *v.LastError != "upstream_unavailable" {
		t.Fatalf("view %+v", v)
	}
}

type modelsOf struct{ stub }

func (modelsOf) Models() []providers.Model { return []providers.Model{*model} }

// value reads a gauge's or a counter's value.
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if pb.Gauge != nil {
		return pb.Gauge.GetValue()
	}
	return pb.Counter.GetValue()
}
