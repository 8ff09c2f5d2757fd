package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/redis/go-redis/v9"
)

// admitCalls is a go-redis hook that counts admit script calls (EVALSHA, or EVAL after a
// NOSCRIPT).
type admitCalls struct{ n *atomic.Int64 }

func (h admitCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h admitCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && a[1] == admitScript.Hash() {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h admitCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// countingClient returns a client on url whose admit script calls are counted in n.
func countingClient(t *testing.T, url string, n *atomic.Int64) *redis.Client {
	c := clientFor(t, url)
	c.AddHook(admitCalls{n})
	return c
}

// holdCall makes lim believe an admit call of s is in flight, so admits of s queue until
// releaseCall.
func holdCall(lim *Redis, s Subject) {
	lim.co.join(&admitWaiter{req: &Request{Subject: s}})
}

// releaseCall ends the call holdCall pretended: what queued goes out in batches.
func releaseCall(lim *Redis, s Subject) { lim.co.finish(s) }

// waitQueued waits until n admits of s are queued.
func waitAdmitsQueued(t *testing.T, lim *Redis, s Subject, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lim.co.mu.Lock()
		got := 0
		if q := lim.co.subjects[s]; q != nil {
			got = len(q.waiting)
		}
		lim.co.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d admits of %s queued, want %d", got, s, n)
		}
		time.Sleep(time.Millisecond)
	}
}

type admitOutcome struct {
	d   Decision
	err error
}

// queueAdmits starts an Admit of each request in order, each queued behind the call holdCall
// pretends before the next starts, and returns a function that releases the held call and
// waits for the outcomes.
func queueAdmits(t *testing.T, lim *Redis, ctx context.Context, reqs []Request) func() []admitOutcome {
	t.Helper()
	s := reqs[0].Subject
	holdCall(lim, s)
	out := make([]admitOutcome, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := lim.Admit(ctx, req)
			out[i] = admitOutcome{d, err}
		}()
		waitAdmitsQueued(t, lim, s, i+1)
	}
	return func() []admitOutcome {
		releaseCall(lim, s)
		wg.Wait()
		return out
	}
}

// N concurrent admits of one subject with a limit of K admit exactly K, in fewer script calls
// than admits, for each kind of limit.
func TestRedisCoalescedAdmitsExact(t *testing.T) {
	const n, k = 300, 37
	for _, tc := range []struct {
		name string
		lim  Limits
		cost Cost
	}{
		{"requests", Limits{Requests: perHour(k)}, oneReq},
		{"images", Limits{Images: perHour(2 * k)}, CostOf(2, 64, 64)},
		{"concurrency", Limits{Concurrency: k}, oneReq},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			c := countingClient(t, testRedisURL(), &calls)
			lim := NewRedis(c, RedisOptions{Prefix: testPrefix(t, c), Timeout: 5 * time.Second})
			t.Cleanup(func() { _ = lim.Close() })
			check := func(what string, reqs []Request, out []admitOutcome, calls int64) {
				t.Helper()
				allowed := 0
				for i, o := range out {
					if o.err != nil || o.d.Degraded {
						t.Fatalf("%s: admit %d: %+v %v", what, i, o.d, o.err)
					}
					if o.d.Allowed {
						allowed++
					}
				}
				if allowed != k {
					t.Fatalf("%s: %d of %d admitted against a limit of %d", what, allowed, len(reqs), k)
				}
				if calls >= int64(len(reqs)) {
					t.Fatalf("%s: %d script calls for %d admits", what, calls, len(reqs))
				}
				t.Logf("%s: %d admits in %d script calls", what, len(reqs), calls)
			}
			reqs := make([]Request, n)
			for i := range reqs {
				reqs[i] = Request{Subject: KeySubject("queued"), Limits: tc.lim, Cost: tc.cost}
			}
			// Deterministic: all queue behind one call, then go out in ceil(n/256) calls.
			wait := queueAdmits(t, lim, context.Background(), reqs)
			calls.Store(0)
			out := wait()
			if got := calls.Load(); got != (n+maxAdmitBatch-1)/maxAdmitBatch {
				t.Fatalf("%d script calls for %d queued admits, want %d", got, n, (n+maxAdmitBatch-1)/maxAdmitBatch)
			}
			check("queued", reqs, out, calls.Load())

			// As it happens: n goroutines released at once.
			for i := range reqs {
				reqs[i].Subject = KeySubject("burst")
			}
			calls.Store(0)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, req := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					d, err := lim.Admit(context.Background(), req)
					out[i] = admitOutcome{d, err}
				}()
			}
			close(start)
			wg.Wait()
			check("burst", reqs, out, calls.Load())
		})
	}
}

// A coalesced batch decides each request exactly as admitting them one by one does.
func TestRedisCoalescedBatchEqualsSequential(t *testing.T) {
	c := needRedis(t)
	lim := NewRedis(c, RedisOptions{Prefix: testPrefix(t, c), Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = lim.Close() })
	withLease := Limits{Requests: perHour(9), Images: perHour(12), Megapixels: perHour(3000),
		Concurrency: 3}
	noLease := Limits{Requests: perHour(9), Images: perHour(12), Megapixels: withLease.Megapixels}
	other := Limits{Requests: perHour(20)} // the same subject with other limits (a config change)
	var reqs []Request
	for i, spec := range []struct {
		lim Limits
		n   int
	}{
		{withLease, 1}, {withLease, 4}, {noLease, 2}, {withLease, 1}, {withLease, 1}, // the 4th lease: refused
		{noLease, 3}, {other, 1}, {noLease, 1}, {withLease, 2}, {noLease, 5}, {other, 1}, {noLease, 1},
		{noLease, 1}, {withLease, 1}, {noLease, 1}, {other, 1},
	} {
		ttl := time.Minute
		if i%3 == 0 {
			ttl = 2 * time.Minute
		}
		reqs = append(reqs, Request{Limits: spec.lim, Cost: CostOf(spec.n, 512, 512), LeaseTTL: ttl})
	}

	batch := make([]Request, len(reqs))
	for i, r := range reqs {
		r.Subject = KeySubject("batch")
		batch[i] = r
	}
	var calls atomic.Int64
	cc := countingClient(t, testRedisURL(), &calls)
	lim.client = cc
	wait := queueAdmits(t, lim, context.Background(), batch)
	got := wait()
	if calls.Load() != 1 {
		t.Fatalf("%d script calls for one batch", calls.Load())
	}

	ctx := context.Background()
	refusals := map[Dimension]int{}
	for i, r := range reqs {
		r.Subject = KeySubject("sequential")
		want, err := lim.Admit(ctx, r)
		if err != nil || got[i].err != nil {
			t.Fatalf("request %d: %v / %v", i, got[i].err, err)
		}
		g := got[i].d
		if g.Allowed != want.Allowed || g.RefusedBy != want.RefusedBy || g.Unsatisfiable != want.Unsatisfiable ||
			(g.Grant == nil) != (want.Grant == nil) {
			t.Fatalf("request %d: batch %+v, sequential %+v", i, g, want)
		}
		refusals[g.RefusedBy]++
		near(t, i, "RetryAfter", g.RetryAfter, want.RetryAfter)
		for _, dim := range append(rateDims[:len(rateDims):len(rateDims)], DimConcurrency) {
			gq, wq := *g.quota(dim), *want.quota(dim)
			if gq.Limit != wq.Limit || gq.Refused != wq.Refused || gq.Remaining != wq.Remaining {
				t.Fatalf("request %d, %s: batch %+v, sequential %+v", i, dim, gq, wq)
			}
			near(t, i, dim.String()+" reset", gq.Reset, wq.Reset)
			near(t, i, dim.String()+" retry", gq.RetryAfter, wq.RetryAfter)
		}
		if g.Grant != nil && (g.Grant.lease == nil) != (want.Grant.lease == nil) {
			t.Fatalf("request %d: lease in batch %v, sequential %v", i, g.Grant.lease != nil, want.Grant.lease != nil)
		}
	}
	if refusals[DimNone] == 0 || refusals[DimConcurrency] == 0 || refusals[DimImages] == 0 {
		t.Fatalf("the mix should admit some and refuse on concurrency and images: %v", refusals)
	}
	// The leases are registered and held in Redis alike.
	b, _ := c.ZCard(ctx, lim.Key(KeySubject("batch"), "inflight")).Result()
	s, _ := c.ZCard(ctx, lim.Key(KeySubject("sequential"), "inflight")).Result()
	if b != 3 || s != 3 || lim.keeper.size() != 6 {
		t.Fatalf("leases: batch %d, sequential %d in Redis, %d registered; want 3, 3, 6", b, s, lim.keeper.size())
	}
}

// near fails unless two durations computed a moment apart (the sequential admits run later, on
// a later clock) agree.
func near(t *testing.T, i int, what string, a, b time.Duration) {
	t.Helper()
	if d := a - b; d > time.Second || d < -time.Second {
		t.Fatalf("request %d: %s batch %v, sequential %v", i, what, a, b)
	}
}

// A batch whose call fails fails each of its requests as a lone admit's failure does: the
// fallback under fail-open, ErrUnavailable under fail-closed; and the leases it may have added
// are queued for release.
func TestRedisCoalescedBatchFailure(t *testing.T) {
	for _, policy := range []FailurePolicy{FailOpen, FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			_, prefix, p := proxiedRedis(t)
			var calls atomic.Int64
			c := countingClient(t, "redis://"+p.Addr()+"/0", &calls)
			m := newTestMetrics(t)
			lim := NewRedis(c, RedisOptions{Prefix: prefix, Policy: policy, Timeout: time.Second, Metrics: m,
				BreakerThreshold: 3, BreakerCooldown: time.Hour})
			t.Cleanup(func() { _ = lim.Close() })
			const n = 20
			reqs := make([]Request, n)
			for i := range reqs {
				reqs[i] = Request{Subject: KeySubject("k"), Limits: Limits{Requests: perHour(100), Concurrency: 50},
					Cost: oneReq}
			}
			wait := queueAdmits(t, lim, context.Background(), reqs)
			if err := p.SetMode(faultproxy.Refuse); err != nil {
				t.Fatal(err)
			}
			p.CutExisting()
			calls.Store(0)
			out := wait()
			if calls.Load() != 1 {
				t.Fatalf("%d script calls, want the one batch", calls.Load())
			}
			for i, o := range out {
				switch policy {
				case FailOpen:
					if o.err != nil || !o.d.Allowed || !o.d.Degraded {
						t.Fatalf("admit %d: %+v %v, want a degraded admission from the fallback", i, o.d, o.err)
					}
				case FailClosed:
					if !errors.Is(o.err, ErrUnavailable) || o.d.Allowed {
						t.Fatalf("admit %d: %+v %v, want ErrUnavailable", i, o.d, o.err)
					}
				}
			}
			if !lim.FallbackActive() {
				t.Fatal("the failed batch did not open the circuit")
			}
			if got := lim.keeper.pendingLen(); got != n {
				t.Fatalf("%d releases queued for the leases the failed batch may have added, want %d", got, n)
			}
			if errs := value(m.redisErrors.WithLabelValues("admit")); errs != 1 {
				t.Fatalf("redis admit errors = %v, want 1 (one call)", errs)
			}
		})
	}
}

// A queued admit whose caller gives up leaves the queue at once, without tripping the breaker;
// the batch goes out without it.
func TestRedisCoalescedCallerGivesUp(t *testing.T) {
	c := needRedis(t)
	lim := NewRedis(c, RedisOptions{Prefix: testPrefix(t, c), BreakerThreshold: 1, Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = lim.Close() })
	s := KeySubject("k")
	req := Request{Subject: s, Limits: Limits{Requests: perHour(10), Concurrency: 1}, Cost: oneReq}
	holdCall(lim, s)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := lim.Admit(ctx, req)
		gaveUp <- err
	}()
	waitAdmitsQueued(t, lim, s, 1)
	var other admitOutcome
	done := make(chan struct{})
	go func() {
		other.d, other.err = lim.Admit(context.Background(), req)
		close(done)
	}()
	waitAdmitsQueued(t, lim, s, 2)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued admit whose caller gave up: %v, want context.Canceled", err)
	}
	releaseCall(lim, s)
	<-done
	// The one that stayed gets the only slot: the one that left took nothing.
	if other.err != nil || !other.d.Allowed || other.d.Degraded {
		t.Fatalf("the admit that stayed: %+v %v", other.d, other.err)
	}
	if lim.FallbackActive() {
		t.Fatal("a caller's cancellation opened the circuit")
	}
	lim.co.mu.Lock()
	left := len(lim.co.subjects)
	lim.co.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d subjects left in the coalescer when idle", left)
	}
}

// A coalesced batch survives a flushed script cache (as after a Redis restart): EVALSHA gets
// NOSCRIPT and the call is sent again with the script's body, as a lone admit's is.
func TestRedisCoalescedBatchAfterScriptFlush(t *testing.T) {
	srv := startRedisServer(t) // its own server: flushing the shared one's scripts would disturb others
	admin := clientFor(t, srv.url())
	gw, _ := redisGateway(t, srv.url(), DefaultPrefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	reqs := make([]Request, 5)
	for i := range reqs {
		reqs[i] = Request{Subject: KeySubject("k"), Limits: Limits{Requests: perHour(4), Concurrency: 10}, Cost: oneReq}
	}
	for round := range 2 {
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		out := queueAdmits(t, gw, ctx, reqs)()
		allowed := 0
		for i, o := range out {
			if o.err != nil {
				t.Fatalf("round %d, admit %d after a script flush: %v", round, i, o.err)
			}
			if o.d.Allowed {
				allowed++
				_ = gw.Release(ctx, o.d.Grant)
			}
		}
		if want := []int{4, 0}[round]; allowed != want {
			t.Fatalf("round %d: %d admitted, want %d", round, allowed, want)
		}
	}
}
