package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/imagegw/imagegw/internal/faultproxy"
)

// Waits poll with generous deadlines: the machine is shared and the tests run with -race.
const pollDeadline = 15 * time.Second

// eventually polls cond every 20ms until it holds or pollDeadline passes.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > pollDeadline {
			t.Fatalf("%s: still not true after %v", what, pollDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func histCount(h prometheus.Observer) uint64 {
	var pb dto.Metric
	if err := h.(prometheus.Metric).Write(&pb); err != nil {
		panic(err)
	}
	return pb.Histogram.GetSampleCount()
}

// --- Local, on a fake clock: exact and deterministic ---------------------------------------

func TestLocalKeeperRenewsLiveLeasesAndDropsDeadOnes(t *testing.T) {
	clk := newFakeClock()
	m := newTestMetrics(t)
	l := NewLocal(LocalOptions{Clock: clk.Now, Metrics: m})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 3 * time.Second}
	d, _ := l.Admit(ctx, req)
	if !d.Allowed {
		t.Fatal("first admit refused")
	}
	// Ten TTLs pass; the keeper (ticked by hand, as its goroutine would) renews the live lease.
	for range 30 {
		clk.Advance(time.Second)
		l.keeper.tick()
	}
	if d2, _ := l.Admit(ctx, req); d2.Allowed {
		t.Fatal("a renewed lease lost its slot")
	}
	if err := l.Renew(ctx, d.Grant); err != nil {
		t.Fatalf("renew of a live lease: %v", err)
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != 1 {
		t.Fatalf("leases in flight = %v, want 1", g)
	}
	// The owner dies: nothing renews any more. The slot frees once the TTL has passed.
	clk.Advance(2900 * time.Millisecond)
	if d2, _ := l.Admit(ctx, req); d2.Allowed {
		t.Fatal("admitted before the dead owner's lease expired")
	}
	clk.Advance(100 * time.Millisecond)
	d3, _ := l.Admit(ctx, req)
	if !d3.Allowed {
		t.Fatal("the dead owner's lease did not expire after its TTL")
	}
	// The keeper notices that the old lease is gone.
	l.keeper.tick()
	if err := l.Renew(ctx, d.Grant); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew of an expired lease: %v, want ErrLeaseLost", err)
	}
	if n := value(m.dropped.WithLabelValues(dropExpired)); n != 1 {
		t.Fatalf("leases dropped as expired = %v, want 1", n)
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != 1 {
		t.Fatalf("leases in flight = %v, want 1 (the new holder's)", g)
	}
	runtime.KeepAlive(d3.Grant)
}

func TestLocalConcurrencyRetryAfterIsEarliestExpiry(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(LocalOptions{Clock: clk.Now})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 2}, LeaseTTL: 10 * time.Second}
	a, _ := l.Admit(ctx, req) // expires at 10s
	clk.Advance(4 * time.Second)
	b, _ := l.Admit(ctx, req) // expires at 14s
	clk.Advance(2 * time.Second)
	d, _ := l.Admit(ctx, req)
	if d.Allowed || d.RefusedBy != DimConcurrency {
		t.Fatalf("third admit: %+v, want a concurrency refusal", d)
	}
	if d.RetryAfter != 4*time.Second || d.Concurrency.RetryAfter != 4*time.Second {
		t.Fatalf("RetryAfter %v (quota %v), want 4s: the earliest lease expires at 10s, it is 6s",
			d.RetryAfter, d.Concurrency.RetryAfter)
	}
	h := http.Header{}
	d.SetHeaders(h)
	if h.Get("Retry-After") != "4" || h.Get("Retry-After-Ms") != "4000" {
		t.Fatalf("headers %v", h)
	}
	// Close to the expiry the hint is bounded below.
	clk.Advance(3990 * time.Millisecond)
	if d, _ := l.Admit(ctx, req); d.Allowed || d.RetryAfter != MinConcurrencyRetryAfter {
		t.Fatalf("10ms before the expiry: %+v, want RetryAfter %v", d, MinConcurrencyRetryAfter)
	}
	// And a slot really frees when the hint said.
	clk.Advance(10 * time.Millisecond)
	if d, _ := l.Admit(ctx, req); !d.Allowed {
		t.Fatal("no slot at the earliest expiry")
	}
	runtime.KeepAlive([]*Grant{a.Grant, b.Grant})
}

//go:noinline
func admitAndDrop(t *testing.T, lim Limiter, req Request) {
	d, err := lim.Admit(context.Background(), req)
	if err != nil || !d.Allowed {
		t.Fatalf("admit: %+v %v", d, err)
	}
}

func TestLocalAbandonedGrantIsReleased(t *testing.T) {
	clk := newFakeClock()
	m := newTestMetrics(t)
	l := NewLocal(LocalOptions{Clock: clk.Now, Metrics: m})
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: time.Hour}
	admitAndDrop(t, l, req) // a caller bug: the grant is dropped without Release
	eventually(t, "the keeper notices the dropped grant", func() bool {
		runtime.GC()
		l.keeper.tick()
		return l.keeper.size() == 0
	})
	if d, _ := l.Admit(context.Background(), req); !d.Allowed {
		t.Fatal("the abandoned lease still holds the slot (it would for its whole hour)")
	}
	if n := value(m.dropped.WithLabelValues(dropAbandoned)); n != 1 {
		t.Fatalf("leases dropped as abandoned = %v, want 1", n)
	}
}

func TestLocalCloseStopsTheGoroutine(t *testing.T) {
	l := NewLocal(LocalOptions{})
	d, _ := l.Admit(context.Background(), Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}})
	if !l.keeper.started.Load() {
		t.Fatal("the keeper did not start with the first lease")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.keeper.done:
	case <-time.After(pollDeadline):
		t.Fatal("the keeper's goroutine did not end on Close")
	}
	_ = l.Close() // idempotent
	// Still usable after Close (no renewal).
	if err := l.Release(context.Background(), d.Grant); err != nil {
		t.Fatal(err)
	}
}

// --- Redis ------------------------------------------------------------------------------

// redisGateway is a Redis limiter with its own client and metrics, on prefix.
func redisGateway(t *testing.T, url, prefix string, opts RedisOptions) (*Redis, *Metrics) {
	t.Helper()
	m := newTestMetrics(t)
	opts.Prefix, opts.Metrics = prefix, m
	if opts.Timeout == 0 {
		opts.Timeout = time.Second // the machine is shared
	}
	r := NewRedis(clientFor(t, url), opts)
	t.Cleanup(func() { _ = r.Close() })
	return r, m
}

func TestRedisCrashedOwnerFreesSlotWithinTTL(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	const ttl = time.Second
	gw0, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	gw1, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 2}, LeaseTTL: ttl}
	var held []*Grant
	for range 2 {
		d, err := gw0.Admit(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("gateway 0 admit: %+v %v", d, err)
		}
		held = append(held, d.Grant)
	}
	// While gateway 0 lives its leases are renewed: still held after 2.5 TTLs.
	time.Sleep(5 * ttl / 2)
	if d, err := gw1.Admit(ctx, req); err != nil || d.Allowed {
		t.Fatalf("gateway 1 admitted while gateway 0's requests run: %+v %v", d, err)
	}
	// Gateway 0 dies (SIGKILL: no release, no more renewal).
	_ = gw0.Close()
	var refusal Decision
	took := eventually(t, "gateway 1 gets a slot after gateway 0 died", func() bool {
		d, err := gw1.Admit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			refusal = d
		}
		return d.Allowed
	})
	t.Logf("a dead gateway's slot freed %v after it died (lease TTL %v)", took, ttl)
	if refusal.RetryAfter <= 0 || refusal.RetryAfter > ttl {
		t.Fatalf("refusal RetryAfter %v, want in (0, %v]", refusal.RetryAfter, ttl)
	}
	runtime.KeepAlive(held)
}

func TestRedisConcurrencyRetryAfterIsEarliestExpiry(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	const ttl = 5 * time.Second
	gw0, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	gw1, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: ttl}
	before := time.Now()
	d, err := gw0.Admit(ctx, req)
	after := time.Now()
	if err != nil || !d.Allowed {
		t.Fatalf("admit: %+v %v", d, err)
	}
	_ = gw0.Close() // no renewal: the lease expires at (Redis's) admit time + ttl
	time.Sleep(time.Second)
	asked := time.Now()
	r, err := gw1.Admit(ctx, req)
	answered := time.Now()
	if err != nil || r.Allowed || r.RefusedBy != DimConcurrency {
		t.Fatalf("second admit: %+v %v, want a concurrency refusal", r, err)
	}
	// The lease expires between before+ttl and after+ttl; the refusal was decided between asked
	// and answered.
	lo, hi := before.Add(ttl).Sub(answered), after.Add(ttl).Sub(asked)
	if r.RetryAfter < lo-50*time.Millisecond || r.RetryAfter > hi+50*time.Millisecond {
		t.Fatalf("RetryAfter %v, want the time until the lease expires, within [%v, %v]", r.RetryAfter, lo, hi)
	}
	t.Logf("RetryAfter %v, lease expires in [%v, %v]", r.RetryAfter, lo, hi)
	h := http.Header{}
	r.SetHeaders(h)
	if ms, _ := strconv.Atoi(h.Get("Retry-After-Ms")); ms < 3000 || ms > 4100 {
		t.Fatalf("Retry-After-Ms %q, want about 4000", h.Get("Retry-After-Ms"))
	}
	runtime.KeepAlive(d.Grant)
}

func TestRedisLeasesRenewedInBatches(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	const ttl = 900 * time.Millisecond
	gw, m := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	const subjects, perSubject = 10, 5
	var held []*Grant
	for s := range subjects {
		req := Request{Subject: KeySubject(strconv.Itoa(s)), Limits: Limits{Concurrency: perSubject}, LeaseTTL: ttl}
		for range perSubject {
			d, err := gw.Admit(ctx, req)
			if err != nil || !d.Allowed {
				t.Fatalf("admit: %+v %v", d, err)
			}
			held = append(held, d.Grant)
		}
	}
	start := time.Now()
	time.Sleep(3 * ttl)
	elapsed := time.Since(start)
	for s := range subjects {
		n, err := admin.ZCount(ctx, gw.Key(KeySubject(strconv.Itoa(s)), "inflight"), "-inf", "+inf").Result()
		if err != nil || n != perSubject {
			t.Fatalf("subject %d: %d leases in Redis (%v), want %d", s, n, err, perSubject)
		}
		d, err := gw.Admit(ctx, Request{Subject: KeySubject(strconv.Itoa(s)), Limits: Limits{Concurrency: perSubject}, LeaseTTL: ttl})
		if err != nil || d.Allowed {
			t.Fatalf("subject %d admitted a sixth request after 3 TTLs: the renewal failed (%v)", s, err)
		}
	}
	batches := histCount(m.redisDuration.WithLabelValues("renew_batch"))
	single := histCount(m.redisDuration.WithLabelValues("renew"))
	t.Logf("%d leases over %d subjects kept for %v with %d batched renewals", len(held), subjects, elapsed, batches)
	if single != 0 {
		t.Fatalf("%d single renewals: the background loop must batch", single)
	}
	// One batch (one pipeline, all subjects) per pass; a pass at most every TTL/6.
	if maxBatches := uint64(elapsed/(ttl/6)) + 2; batches == 0 || batches > maxBatches {
		t.Fatalf("%d renewal batches in %v, want 1..%d", batches, elapsed, maxBatches)
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != subjects*perSubject {
		t.Fatalf("leases in flight gauge = %v, want %d", g, subjects*perSubject)
	}
	for _, g := range held {
		if err := gw.Release(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != 0 {
		t.Fatalf("leases in flight gauge = %v after releasing all, want 0", g)
	}
}

func TestRedisReleaseRetriedAfterOutage(t *testing.T) {
	_, prefix, p := proxiedRedis(t)
	// Gateway a talks to Redis through the proxy; gateway b directly.
	const ttl = 30 * time.Second // far longer than the test: the slot can only free by the retry
	a, am := redisGateway(t, "redis://"+p.Addr()+"/0", prefix, RedisOptions{Policy: FailOpen,
		Timeout: 200 * time.Millisecond, BreakerThreshold: 2, BreakerCooldown: 200 * time.Millisecond})
	b, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: ttl}
	d, err := a.Admit(ctx, req)
	if err != nil || !d.Allowed || d.Degraded {
		t.Fatalf("admit through the proxy: %+v %v", d, err)
	}

	// Redis goes away for gateway a (connections reset, new ones refused) as the request ends.
	if err := p.SetMode(faultproxy.Refuse); err != nil {
		t.Fatal(err)
	}
	p.CutExisting()
	// Release does not wait for Redis; the background releaser's batch fails and queues it for
	// a retry.
	if err := a.Release(ctx, d.Grant); err != nil {
		t.Fatalf("release: %v (it queues; it must not wait for Redis)", err)
	}
	eventually(t, "the failed release is queued for a retry", func() bool {
		return a.keeper.pendingLen() == 1 && value(am.pending) == 1
	})
	if err := a.Release(ctx, d.Grant); err != nil {
		t.Fatalf("second release (idempotent): %v", err)
	}
	// The lease is still in Redis: gateway b is refused, and told the slot frees at the TTL.
	r, err := b.Admit(ctx, req)
	if err != nil || r.Allowed {
		t.Fatalf("gateway b during the outage: %+v %v, want a refusal", r, err)
	}
	if r.RetryAfter <= 0 || r.RetryAfter > ttl {
		t.Fatalf("RetryAfter %v", r.RetryAfter)
	}
	eventually(t, "a retry fails during the outage", func() bool {
		return value(am.retries.WithLabelValues(retryFailed)) >= 1 || a.FallbackActive()
	})

	// Redis is back: the queued release goes through, long before the lease's TTL.
	if err := p.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	took := eventually(t, "gateway b gets the slot after Redis is back", func() bool {
		r, err := b.Admit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			_ = b.Release(ctx, r.Grant)
		}
		return r.Allowed
	})
	t.Logf("slot free %v after Redis came back (lease TTL %v)", took, ttl)
	if time.Since(back) >= ttl {
		t.Fatal("the slot freed by expiry, not by the retried release")
	}
	// The keeper counts the retry when Redis's answer reaches it, which can be just after b saw
	// the slot free.
	eventually(t, "the retry counted as released", func() bool {
		return value(am.retries.WithLabelValues(retryReleased)) >= 1
	})
	if n := value(am.retries.WithLabelValues(retryReleased)); n != 1 {
		t.Fatalf("release retries released = %v, want 1", n)
	}
	if n := a.keeper.pendingLen(); n != 0 || value(am.pending) != 0 {
		t.Fatalf("pending releases %d (gauge %v) after the retry, want 0", n, value(am.pending))
	}
}

func TestRedisPendingReleaseDroppedOnceExpired(t *testing.T) {
	_, prefix, p := proxiedRedis(t)
	a, am := redisGateway(t, "redis://"+p.Addr()+"/0", prefix, RedisOptions{Policy: FailOpen,
		Timeout: 200 * time.Millisecond, BreakerThreshold: 2, BreakerCooldown: 200 * time.Millisecond})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 600 * time.Millisecond}
	d, err := a.Admit(ctx, req)
	if err != nil || !d.Allowed || d.Degraded {
		t.Fatalf("admit: %+v %v", d, err)
	}
	if err := p.SetMode(faultproxy.Reset); err != nil {
		t.Fatal(err)
	}
	_ = a.Release(ctx, d.Grant)
	// Redis stays unreachable past the lease's TTL: the retry gives up, the lease expired anyway.
	eventually(t, "the queued release is dropped once its lease has expired", func() bool {
		return value(am.retries.WithLabelValues(retryExpired)) >= 1 && a.keeper.pendingLen() == 0
	})
	if n := value(am.retries.WithLabelValues(retryExpired)); n != 1 {
		t.Fatalf("release retries expired = %v, want 1", n)
	}
	if value(am.pending) != 0 {
		t.Fatalf("pending gauge %v, want 0", value(am.pending))
	}
}

func TestRedisLeaseLostWhenRedisForgetsIt(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	gw, m := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 600 * time.Millisecond}
	d, err := gw.Admit(ctx, req)
	if err != nil || !d.Allowed {
		t.Fatalf("admit: %+v %v", d, err)
	}
	// Redis restarts empty (or the key is evicted): the lease is gone.
	if err := admin.Del(ctx, gw.Key(req.Subject, "inflight")).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the renewal notices the lease is gone", func() bool {
		return value(m.dropped.WithLabelValues(dropExpired)) == 1
	})
	if err := gw.Renew(ctx, d.Grant); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew: %v, want ErrLeaseLost", err)
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != 0 {
		t.Fatalf("leases in flight = %v, want 0", g)
	}
	// Releasing a lost lease is a no-op (it must not touch a slot someone else holds now).
	if err := gw.Release(ctx, d.Grant); err != nil {
		t.Fatal(err)
	}
	if n := gw.keeper.pendingLen(); n != 0 {
		t.Fatalf("%d pending releases for a lost lease", n)
	}
}

func TestRedisAbandonedGrantIsReleased(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	gw, m := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 3 * time.Second}
	admitAndDrop(t, gw, req)
	key := gw.Key(req.Subject, "inflight")
	// ZCARD counts expired members too (only an admission purges them), so 0 means released.
	eventually(t, "the dropped grant's lease is released", func() bool {
		runtime.GC()
		n, err := admin.ZCard(context.Background(), key).Result()
		return err == nil && n == 0
	})
	if n := value(m.dropped.WithLabelValues(dropAbandoned)); n != 1 {
		t.Fatalf("leases dropped as abandoned = %v, want 1", n)
	}
}

func TestRedisCloseFlushesPendingReleases(t *testing.T) {
	admin, prefix, p := proxiedRedis(t)
	a, _ := redisGateway(t, "redis://"+p.Addr()+"/0", prefix, RedisOptions{Policy: FailOpen,
		Timeout: 200 * time.Millisecond, BreakerThreshold: 100})
	a.keeper.retry = time.Hour // only Close retries
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 30 * time.Second}
	d, err := a.Admit(ctx, req)
	if err != nil || !d.Allowed || d.Degraded {
		t.Fatalf("admit: %+v %v", d, err)
	}
	_ = p.SetMode(faultproxy.Reset)
	if err := a.Release(ctx, d.Grant); err != nil {
		t.Fatal(err)
	}
	// The background releaser's batch fails: the release waits in the retry queue.
	eventually(t, "the failed release is queued for a retry", func() bool { return a.keeper.pendingLen() == 1 })
	_ = p.SetMode(faultproxy.Pass)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := admin.ZCard(ctx, a.Key(req.Subject, "inflight")).Result(); err != nil || n != 0 {
		t.Fatalf("%d leases left after Close flushed the queued release (%v)", n, err)
	}
	select {
	case <-a.keeper.done:
	default:
		t.Fatal("the keeper's goroutine is still running after Close")
	}
}

// The batched renewals and releases survive a flushed script cache (as after a Redis restart):
// the pipeline falls back from EVALSHA to EVAL.
func TestRedisBatchAfterScriptFlush(t *testing.T) {
	srv := startRedisServer(t) // its own server: flushing the shared one's scripts would disturb others
	admin := clientFor(t, srv.url())
	gw, m := redisGateway(t, srv.url(), DefaultPrefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: ChannelSubject("c"), Limits: Limits{Concurrency: 3}, LeaseTTL: 600 * time.Millisecond}
	var held []*Grant
	for range 3 {
		d, err := gw.Admit(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("admit: %+v %v", d, err)
		}
		held = append(held, d.Grant)
	}
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := histCount(m.redisDuration.WithLabelValues("renew_batch"))
	eventually(t, "a renewal batch after the flush", func() bool {
		return histCount(m.redisDuration.WithLabelValues("renew_batch")) > before+1
	})
	if e := value(m.redisErrors.WithLabelValues("renew_batch")); e != 0 {
		t.Fatalf("%v renewal batches failed after a script flush", e)
	}
	if d, _ := gw.Admit(ctx, req); d.Allowed {
		t.Fatal("a fourth request was admitted: the renewals after the flush did not work")
	}
	// Releases in one batch (as the retry loop sends them).
	ls := make([]*lease, len(held))
	for i, g := range held {
		ls[i] = g.lease
	}
	_ = admin.ScriptFlush(ctx).Err()
	for i, ok := range gw.releaseLeases(ls) {
		if !ok {
			t.Fatalf("batched release %d failed", i)
		}
	}
	if n, _ := admin.ZCard(ctx, gw.Key(req.Subject, "inflight")).Result(); n != 0 {
		t.Fatalf("%d leases left after the batched release", n)
	}
}

func TestRedisRenewScriptReportsEachLease(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	gw, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 4}, LeaseTTL: time.Minute}
	var ls []*lease
	var held []*Grant
	for range 4 {
		d, err := gw.Admit(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("admit: %+v %v", d, err)
		}
		held = append(held, d.Grant)
		ls = append(ls, d.Grant.lease)
	}
	key := gw.Key(req.Subject, "inflight")
	// Lease 1 is gone, lease 2 has expired but is still in the set (nothing purged it yet).
	if err := admin.ZRem(ctx, key, ls[1].id).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ZAdd(ctx, key, redis.Z{Score: 1, Member: ls[2].id}).Err(); err != nil {
		t.Fatal(err)
	}
	status, _, _ := gw.renewLeases(ls)
	if want := []int8{1, 0, 0, 1}; !slices.Equal(status, want) {
		t.Fatalf("renewal statuses %v, want %v", status, want)
	}
	if n, _ := admin.ZCard(ctx, key).Result(); n != 2 {
		t.Fatalf("%d members left, want the 2 live leases", n)
	}
	// All live: the fast path.
	status, _, _ = gw.renewLeases([]*lease{ls[0], ls[3]})
	if status[0] != 1 || status[1] != 1 {
		t.Fatalf("renewal statuses %v, want [1 1]", status)
	}
	runtime.KeepAlive(held)
}

// lateClient runs scripts on Redis but, while armed, reports a timeout for the first one Redis
// executes: the reply was lost after Redis had run the script (the ambiguous failure a slow
// network produces). A failed call (NOSCRIPT, when the script cache is empty or another test
// flushed it) passes through untouched, so go-redis resends the script and that call is the one
// whose reply is lost. onLost, if set, runs when the reply is dropped, before the caller sees it.
type lateClient struct {
	redis.Scripter
	armed  atomic.Bool
	onLost func()
}

func (c *lateClient) late(cmd *redis.Cmd) *redis.Cmd {
	if cmd.Err() != nil || !c.armed.CompareAndSwap(true, false) {
		return cmd
	}
	if c.onLost != nil {
		c.onLost()
	}
	lost := redis.NewCmd(context.Background())
	lost.SetErr(context.DeadlineExceeded)
	return lost
}

func (c *lateClient) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	return c.late(c.Scripter.EvalSha(ctx, sha, keys, args...))
}

func (c *lateClient) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return c.late(c.Scripter.Eval(ctx, script, keys, args...))
}

func TestRedisAdmitWithLostReplyReleasesItsLease(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	c := &lateClient{Scripter: clientFor(t, testRedisURL())}
	m := newTestMetrics(t)
	gw := NewRedis(c, RedisOptions{Prefix: prefix, Metrics: m, Policy: FailClosed, Timeout: time.Second})
	t.Cleanup(func() { _ = gw.Close() })
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 30 * time.Second}
	key := gw.Key(req.Subject, "inflight")
	// Counted when the reply is dropped: afterwards the retried release may already have run.
	var added int64
	c.onLost = func() { added, _ = admin.ZCard(ctx, key).Result() }
	c.armed.Store(true)
	if _, err := gw.Admit(ctx, req); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("admit with a lost reply: %v, want ErrUnavailable", err)
	}
	if c.armed.Load() {
		t.Fatal("the admit's script never ran: no reply was dropped")
	}
	if added != 1 {
		t.Fatalf("%d leases in Redis, want the 1 the unanswered admit added", added)
	}
	// The retry counts its release after Redis applied it: wait for both.
	eventually(t, "the lease of the unanswered admit is released", func() bool {
		n, err := admin.ZCard(ctx, key).Result()
		return err == nil && n == 0 && value(m.retries.WithLabelValues(retryReleased)) > 0
	})
	if n := value(m.retries.WithLabelValues(retryReleased)); n != 1 {
		t.Fatalf("release retries released = %v, want 1", n)
	}
	if d, err := gw.Admit(ctx, req); err != nil || !d.Allowed {
		t.Fatalf("admit after the release: %+v %v", d, err)
	}
}
