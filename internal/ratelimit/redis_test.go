package ratelimit

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// gateways returns n Redis limiters with separate clients on one prefix: n gateway processes.
func gateways(t *testing.T, n int, opts RedisOptions) []*Redis {
	t.Helper()
	admin := needRedis(t)
	opts.Prefix = testPrefix(t, admin)
	opts.Policy = FailClosed // a Redis problem must fail the test, not fall back
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second // the machine is shared; this test is about counts
	}
	out := make([]*Redis, n)
	for i := range out {
		r := NewRedis(needRedis(t), opts)
		t.Cleanup(func() { _ = r.Close() })
		out[i] = r
	}
	return out
}

func TestRedisThreeGatewaysEnforceOneGlobalLimit(t *testing.T) {
	gws := gateways(t, 3, RedisOptions{})
	// 100 requests and 250 images an hour; every request asks for 2 images, so requests run out
	// first, at exactly 100, however the 3×8 workers interleave.
	req := Request{Subject: KeySubject("shared"), Limits: Limits{Requests: perHour(100), Images: perHour(250)},
		Cost: CostOf(2, 512, 512)}
	var allowed, images atomic.Int64
	var wg sync.WaitGroup
	for _, gw := range gws {
		for range 8 {
			wg.Go(func() {
				for range 25 {
					d, err := gw.Admit(context.Background(), req)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
						images.Add(2)
					} else if d.RefusedBy != DimRequests {
						t.Errorf("refused by %v, want requests", d.RefusedBy)
					}
				}
			})
		}
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("3 gateways admitted %d of 600 requests against a global 100/hour, want exactly 100", allowed.Load())
	}
	d, err := gws[1].Admit(context.Background(), Request{Subject: req.Subject, Limits: req.Limits, Cost: Cost{}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Images.Remaining != 250-images.Load() || d.Requests.Remaining != 0 {
		t.Fatalf("remaining requests %d images %d, want 0 and %d", d.Requests.Remaining, d.Images.Remaining, 250-images.Load())
	}
}

func TestRedisConcurrencyAcrossGateways(t *testing.T) {
	gws := gateways(t, 3, RedisOptions{})
	const limit = 4
	req := Request{Subject: ChannelSubject("upstream"), Limits: Limits{Concurrency: limit}, LeaseTTL: time.Minute}
	var inFlight, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for _, gw := range gws {
		for range 4 {
			wg.Go(func() {
				for range 30 {
					d, err := gw.Admit(context.Background(), req)
					if err != nil {
						t.Error(err)
						return
					}
					if !d.Allowed {
						time.Sleep(time.Millisecond)
						continue
					}
					admitted.Add(1)
					n := inFlight.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					time.Sleep(2 * time.Millisecond)
					inFlight.Add(-1)
					if err := gw.Release(context.Background(), d.Grant); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	if peak.Load() > limit {
		t.Fatalf("peak in flight across 3 gateways = %d, above the global limit %d", peak.Load(), limit)
	}
	if admitted.Load() == 0 {
		t.Fatal("nothing was admitted")
	}
	// A release reaches Redis in the background (another gateway sees it a round trip later):
	// wait until every gateway's releases have landed.
	eventually(t, "every gateway's releases reach Redis", func() bool {
		for _, gw := range gws {
			if gw.rel.n.Load() != 0 || gw.keeper.pendingLen() != 0 {
				return false
			}
		}
		return true
	})
	// Every slot was released: the full limit is available again.
	for i := range limit {
		d, _ := gws[i%3].Admit(context.Background(), req)
		if !d.Allowed {
			t.Fatalf("slot %d still held after every release", i+1)
		}
	}
	t.Logf("admitted %d, peak in flight %d", admitted.Load(), peak.Load())
}

func TestRedisCrashedGatewayLeasesExpire(t *testing.T) {
	gws := gateways(t, 2, RedisOptions{})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 2}, LeaseTTL: 300 * time.Millisecond}
	var held []*Grant
	for range 2 {
		d, err := gws[0].Admit(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("gateway 0 admit: %+v %v", d, err)
		}
		held = append(held, d.Grant)
	}
	// Gateway 0 "crashes": it stops renewing and never releases. Gateway 1 is refused until the
	// leases expire.
	_ = gws[0].Close()
	if d, _ := gws[1].Admit(ctx, req); d.Allowed {
		t.Fatal("gateway 1 admitted above the limit")
	}
	time.Sleep(450 * time.Millisecond)
	for range 2 {
		if d, err := gws[1].Admit(ctx, req); err != nil || !d.Allowed {
			t.Fatalf("gateway 1 after expiry: %+v %v", d, err)
		}
	}
	runtime.KeepAlive(held)
}

func TestRedisKeysShareOneHashTagAndExpire(t *testing.T) {
	c := needRedis(t)
	prefix := testPrefix(t, c)
	r := NewRedis(c, RedisOptions{Prefix: prefix, Policy: FailClosed, Timeout: time.Second})
	ctx := context.Background()
	s := KeySubject("abc")
	d, err := r.Admit(ctx, Request{Subject: s, Limits: LimitsPerMinute(60, 60, 60, 3), Cost: CostOf(1, 1024, 1024),
		LeaseTTL: 30 * time.Second})
	if err != nil || !d.Allowed {
		t.Fatalf("admit: %+v %v", d, err)
	}
	keys, err := c.Keys(ctx, prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("keys %v, want rpm, ipm, mppm and inflight", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+":{key:abc}:") {
			t.Errorf("key %q is outside the subject's hash tag", k)
		}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > 31*time.Second {
			t.Errorf("key %q PTTL %v %v: every key must expire on its own", k, ttl, err)
		}
	}
	// An unlimited subject stores nothing.
	if _, err := r.Admit(ctx, Request{Subject: KeySubject("free"), Cost: CostOf(4, 1024, 1024)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, r.Key(KeySubject("free"), "rpm"), r.Key(KeySubject("free"), "inflight")).Result(); n != 0 {
		t.Fatalf("unlimited subject created %d keys", n)
	}
}

// failureRig is a Redis limiter on a redis-server the test owns, with metrics and logs observed.
type failureRig struct {
	srv  *redisServer
	lim  *Redis
	reg  *prometheus.Registry
	m    *Metrics
	logs *observer.ObservedLogs
}

func newFailureRig(t *testing.T, policy FailurePolicy) *failureRig {
	srv := startRedisServer(t)
	c := clientFor(t, srv.url())
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	lim := NewRedis(c, RedisOptions{Policy: policy, Timeout: 100 * time.Millisecond, BreakerThreshold: 3,
		BreakerCooldown: 300 * time.Millisecond, Logger: zap.New(core), Metrics: m})
	return &failureRig{srv: srv, lim: lim, reg: reg, m: m, logs: logs}
}

// admitTimed admits and returns how long it took.
func admitTimed(lim Limiter, req Request) (Decision, time.Duration, error) {
	start := time.Now()
	d, err := lim.Admit(context.Background(), req)
	return d, time.Since(start), err
}

// latencyBound is generous on purpose: the assertion is "bounded", not a benchmark.
const latencyBound = time.Second

func TestRedisStoppedMidRunFailOpen(t *testing.T) {
	rig := newFailureRig(t, FailOpen)
	req := Request{Subject: KeySubject("k"), Limits: Limits{Requests: perHour(5), Concurrency: 10}, Cost: oneReq}

	d, _, err := admitTimed(rig.lim, req)
	if err != nil || !d.Allowed || d.Degraded {
		t.Fatalf("before the stop: %+v %v", d, err)
	}
	redisGrant := d.Grant

	rig.srv.stop()
	var worst time.Duration
	allowed := 0
	for i := range 8 {
		d, took, err := admitTimed(rig.lim, req)
		if err != nil {
			t.Fatalf("admit %d with Redis down under fail-open: %v", i, err)
		}
		if !d.Degraded {
			t.Fatalf("admit %d not marked degraded", i)
		}
		if d.Allowed {
			allowed++
		}
		worst = max(worst, took)
	}
	t.Logf("Redis down, fail-open: worst admit latency %v", worst)
	if worst >= latencyBound {
		t.Fatalf("admit took %v with Redis down, want < %v", worst, latencyBound)
	}
	// The fallback enforces the limit per process, starting from a full bucket.
	if allowed != 5 {
		t.Fatalf("fallback admitted %d of 8 against 5/hour, want 5", allowed)
	}
	if !rig.lim.FallbackActive() || value(rig.m.fallbackActive) != 1 {
		t.Fatal("circuit not open / fallback gauge not set after repeated failures")
	}
	if errs := value(rig.m.redisErrors.WithLabelValues("admit")); errs < 3 || errs > 4 {
		t.Fatalf("redis admit errors = %v, want the 3 that opened the circuit (the rest skip Redis)", errs)
	}
	if n := value(rig.m.decisions.WithLabelValues("key", "none", "allowed", backendFallback)); n != 5 {
		t.Fatalf("fallback decisions counted %v, want 5", n)
	}
	if rig.logs.FilterMessageSnippet("circuit open").Len() != 1 {
		t.Fatalf("want one 'circuit open' log, got %v", rig.logs.All())
	}
	// Releasing a lease Redis granted fails softly: the lease expires on its own.
	if err := rig.lim.Release(context.Background(), redisGrant); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("release with the circuit open: %v, want ErrUnavailable", err)
	}
	if g := value(rig.m.inFlight.WithLabelValues("key")); g != 5 {
		t.Fatalf("leases in flight gauge = %v, want 5 (the fallback's)", g)
	}

	// Redis comes back (empty: it keeps nothing on disk). After the cooldown a probe closes the
	// circuit and decisions are global again.
	rig.srv.start()
	time.Sleep(400 * time.Millisecond)
	var back Decision
	for range 20 {
		if back, _, err = admitTimed(rig.lim, req); err == nil && !back.Degraded {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if back.Degraded || !back.Allowed {
		t.Fatalf("after Redis returned: %+v %v", back, err)
	}
	if rig.lim.FallbackActive() || value(rig.m.fallbackActive) != 0 {
		t.Fatal("circuit still open after Redis returned")
	}
	if rig.logs.FilterMessageSnippet("reachable again").Len() != 1 {
		t.Fatalf("want one 'reachable again' log, got %v", rig.logs.All())
	}
}

func TestRedisStoppedMidRunFailClosed(t *testing.T) {
	rig := newFailureRig(t, FailClosed)
	req := Request{Subject: KeySubject("k"), Limits: Limits{Requests: perHour(100)}, Cost: oneReq}
	if d, _, err := admitTimed(rig.lim, req); err != nil || !d.Allowed {
		t.Fatalf("before the stop: %+v %v", d, err)
	}
	rig.srv.stop()
	var worst time.Duration
	for i := range 10 {
		d, took, err := admitTimed(rig.lim, req)
		if !errors.Is(err, ErrUnavailable) || d.Allowed {
			t.Fatalf("admit %d with Redis down under fail-closed: %+v %v, want ErrUnavailable", i, d, err)
		}
		worst = max(worst, took)
	}
	t.Logf("Redis down, fail-closed: worst admit latency %v", worst)
	if worst >= latencyBound {
		t.Fatalf("admit took %v with Redis down, want < %v", worst, latencyBound)
	}
	if n := value(rig.m.decisions.WithLabelValues("key", "none", "error", backendNone)); n != 10 {
		t.Fatalf("error decisions counted %v, want 10", n)
	}
	rig.srv.start()
	time.Sleep(400 * time.Millisecond)
	var err error
	for range 20 {
		if _, _, err = admitTimed(rig.lim, req); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("still failing after Redis returned: %v", err)
	}
}

// A hung Redis (connections open, no answers) is the expensive failure: every call waits for
// the timeout. The breaker makes only the first few pay it.
func TestRedisHungBoundedLatency(t *testing.T) {
	admin := needRedis(t) // skip or fail early if the test Redis is missing
	prefix := testPrefix(t, admin)
	p := newProxy(t, admin.Options().Addr)
	opts, err := ClientOptions(testRedisURL())
	if err != nil {
		t.Fatal(err)
	}
	opts.Addr = p.addr()
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	m, _ := NewMetrics(reg)
	lim := NewRedis(c, RedisOptions{Prefix: prefix, Timeout: 100 * time.Millisecond, BreakerThreshold: 2,
		BreakerCooldown: 300 * time.Millisecond, Metrics: m})
	req := Request{Subject: KeySubject("k"), Limits: Limits{Requests: perHour(1000)}, Cost: oneReq}
	if d, _, err := admitTimed(lim, req); err != nil || d.Degraded {
		t.Fatalf("through the proxy: %+v %v", d, err)
	}

	p.freeze()
	var lat []time.Duration
	for i := range 10 {
		d, took, err := admitTimed(lim, req)
		if err != nil || !d.Allowed || !d.Degraded {
			t.Fatalf("admit %d with Redis hung: %+v %v", i, d, err)
		}
		lat = append(lat, took)
	}
	t.Logf("Redis hung, fail-open, timeout 100ms: latencies %v", lat)
	for i, l := range lat {
		if l >= latencyBound {
			t.Fatalf("admit %d took %v, want < %v", i, l, latencyBound)
		}
	}
	if lat[0] < 50*time.Millisecond {
		t.Fatalf("first admit took %v: it should have waited for the timeout", lat[0])
	}
	if errs := value(m.redisErrors.WithLabelValues("admit")); errs != 2 {
		t.Fatalf("redis errors = %v, want 2 (then the circuit is open)", errs)
	}

	p.thaw()
	time.Sleep(350 * time.Millisecond)
	var d Decision
	for range 20 {
		if d, _, _ = admitTimed(lim, req); !d.Degraded {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d.Degraded {
		t.Fatal("still degraded after the proxy thawed")
	}
}

func TestRedisCallerCancelDoesNotTripBreaker(t *testing.T) {
	c := needRedis(t)
	lim := NewRedis(c, RedisOptions{Prefix: testPrefix(t, c), BreakerThreshold: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := lim.Admit(ctx, Request{Subject: KeySubject("k"), Limits: LimitsPerMinute(10, 0, 0, 0), Cost: oneReq})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("admit with a cancelled context: %v, want context.Canceled", err)
	}
	if lim.FallbackActive() {
		t.Fatal("a caller's cancellation opened the circuit")
	}
}

func TestRedisFallbackGrantsStayLocal(t *testing.T) {
	rig := newFailureRig(t, FailOpen)
	ctx := context.Background()
	rig.srv.stop()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Images: perHour(4), Concurrency: 1}, Cost: CostOf(4, 64, 64)}
	d, err := rig.lim.Admit(ctx, req)
	if err != nil || !d.Allowed || !d.Degraded {
		t.Fatalf("fallback admit: %+v %v", d, err)
	}
	// Give-back, renew and release of a fallback grant go to the fallback, not to Redis.
	if err := rig.lim.GiveBack(ctx, d.Grant, Undelivered(4, 0, 64, 64)); err != nil {
		t.Fatal(err)
	}
	if err := rig.lim.Renew(ctx, d.Grant); err != nil {
		t.Fatal(err)
	}
	if err := rig.lim.Release(ctx, d.Grant); err != nil {
		t.Fatal(err)
	}
	if d2, _ := rig.lim.Admit(ctx, req); !d2.Allowed {
		t.Fatalf("after give-back and release in the fallback: %+v", d2)
	}
}

// value reads a counter or gauge (testutil would need a module this repo does not pin).
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if pb.Counter != nil {
		return pb.Counter.GetValue()
	}
	return pb.Gauge.GetValue()
}

func TestNewRedisWarnsWhenContextDeadlinesAreIgnored(t *testing.T) {
	for _, tt := range []struct {
		ctxTimeouts bool
		warnings    int
	}{{false, 1}, {true, 0}} {
		core, logs := observer.New(zap.WarnLevel)
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: tt.ctxTimeouts})
		NewRedis(c, RedisOptions{Logger: zap.New(core)})
		_ = c.Close()
		if n := logs.FilterMessageSnippet("ignores context deadlines").Len(); n != tt.warnings {
			t.Errorf("ContextTimeoutEnabled=%v: %d warnings, want %d", tt.ctxTimeouts, n, tt.warnings)
		}
	}
	o, err := ClientOptions("redis://127.0.0.1:6379/2")
	if err != nil || !o.ContextTimeoutEnabled || o.DB != 2 || o.MaxRetries != -1 {
		t.Fatalf("ClientOptions: %+v %v", o, err)
	}
	if _, err := ClientOptions("http://x"); err == nil {
		t.Fatal("ClientOptions accepted a non-redis URL")
	}
}
