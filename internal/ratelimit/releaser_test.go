package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/imagegw/imagegw/internal/faultproxy"
)

// leaseCount is how many leases of s are in Redis (expired ones included: only an admission
// purges them).
func leaseCount(t *testing.T, admin *redis.Client, gw *Redis, s Subject) int64 {
	t.Helper()
	n, err := admin.ZCard(context.Background(), gw.Key(s, "inflight")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Release returns before Redis has the release; the next Admit of the same limiter must still
// count it as released: at concurrency 1, release-then-admit never refuses.
func TestRedisReleaseThenAdmitNeverRefuses(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	gw, m := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: time.Minute}
	d, err := gw.Admit(ctx, req)
	if err != nil || !d.Allowed {
		t.Fatalf("first admit: %+v %v", d, err)
	}
	const pairs = 1000
	carried := 0
	for i := range pairs {
		if err := gw.Release(ctx, d.Grant); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
		if len(gw.rel.unconfirmed(req.Subject, nil)) > 0 {
			carried++ // this admission carries the release (it has not landed yet)
		}
		if d, err = gw.Admit(ctx, req); err != nil || !d.Allowed {
			t.Fatalf("admit %d right after a release: %+v %v (a spurious refusal)", i, d, err)
		}
	}
	t.Logf("%d of %d admissions carried the release before it",
		carried, pairs)
	if err := gw.Release(ctx, d.Grant); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if n := leaseCount(t, admin, gw, req.Subject); n != 0 {
		t.Fatalf("%d leases left in Redis after the last release and Close", n)
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != 0 {
		t.Fatalf("leases in flight gauge = %v, want 0", g)
	}
	if n := value(m.pending); n != 0 {
		t.Fatalf("releases pending = %v, want 0", n)
	}
	if n := histCount(m.redisDuration.WithLabelValues("release")); n != 0 {
		t.Fatalf("%d releases made their own round trip", n)
	}
}

// Releases from many goroutines at once share round trips: one pipeline carries every release
// queued while the previous one was in flight.
func TestRedisReleasesFromManyGoroutinesBatch(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	gw, m := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	ctx := context.Background()
	const workers, perWorker, subjects = 64, 10, 8
	grants := make([][]*Grant, workers)
	for w := range workers {
		for i := range perWorker {
			s := KeySubject("s" + strconv.Itoa((w*perWorker+i)%subjects))
			d, err := gw.Admit(ctx, Request{Subject: s, Limits: Limits{Concurrency: 1000}, LeaseTTL: time.Minute})
			if err != nil || !d.Allowed {
				t.Fatalf("admit: %+v %v", d, err)
			}
			grants[w] = append(grants[w], d.Grant)
		}
	}
	before := histCount(m.redisDuration.WithLabelValues("release_batch"))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for _, g := range grants[w] {
				if err := gw.Release(ctx, g); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	eventually(t, "every release reaches Redis", func() bool {
		for s := range subjects {
			if leaseCount(t, admin, gw, KeySubject("s"+strconv.Itoa(s))) != 0 {
				return false
			}
		}
		return true
	})
	const releases = workers * perWorker
	batches := histCount(m.redisDuration.WithLabelValues("release_batch")) - before
	t.Logf("%d releases from %d goroutines in %d round trips", releases, workers, batches)
	if batches == 0 || batches > releases/10 {
		t.Fatalf("%d release round trips for %d releases, want 1..%d", batches, releases, releases/10)
	}
	if n := histCount(m.redisDuration.WithLabelValues("release")); n != 0 {
		t.Fatalf("%d releases made their own round trip", n)
	}
	if g := value(m.inFlight.WithLabelValues("key")); g != 0 {
		t.Fatalf("leases in flight gauge = %v, want 0", g)
	}
	if e := value(m.redisErrors.WithLabelValues("release_batch")); e != 0 {
		t.Fatalf("%v release batches failed", e)
	}
}

// A release while Redis is unreachable is applied once Redis is back: by the retry queue, or
// sooner by the same limiter's next admission of the subject, which carries it.
func TestRedisReleaseDuringOutageCarriedByNextAdmit(t *testing.T) {
	admin, prefix, p := proxiedRedis(t)
	a, am := redisGateway(t, "redis://"+p.Addr()+"/0", prefix, RedisOptions{Policy: FailClosed,
		Timeout: 200 * time.Millisecond, BreakerThreshold: 100})
	a.keeper.retry = time.Hour // no background retry: only the admission can apply the release
	ctx := context.Background()
	req := Request{Subject: KeySubject("k"), Limits: Limits{Concurrency: 1}, LeaseTTL: 30 * time.Second}
	d, err := a.Admit(ctx, req)
	if err != nil || !d.Allowed {
		t.Fatalf("admit: %+v %v", d, err)
	}
	if err := p.SetMode(faultproxy.Refuse); err != nil {
		t.Fatal(err)
	}
	p.CutExisting()
	began := time.Now()
	if err := a.Release(ctx, d.Grant); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 50*time.Millisecond {
		t.Fatalf("Release took %v with Redis unreachable: it must not wait for Redis", took)
	}
	eventually(t, "the failed release is queued for a retry", func() bool { return a.keeper.pendingLen() == 1 })
	if n := leaseCount(t, admin, a, req.Subject); n != 1 {
		t.Fatalf("%d leases in Redis during the outage, want the released one still there", n)
	}
	if err := p.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	d2, err := a.Admit(ctx, req)
	if err != nil || !d2.Allowed {
		t.Fatalf("admit after Redis returned: %+v %v, want the queued release counted", d2, err)
	}
	if n := leaseCount(t, admin, a, req.Subject); n != 1 {
		t.Fatalf("%d leases in Redis, want only the new one", n)
	}
	if g := value(am.inFlight.WithLabelValues("key")); g != 1 {
		t.Fatalf("leases in flight gauge = %v, want 1", g)
	}
	runtime.KeepAlive(d2.Grant)
}

// Close waits for the releases still queued or in flight.
func TestRedisCloseFlushesQueuedReleases(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	gw, _ := redisGateway(t, testRedisURL(), prefix, RedisOptions{Policy: FailClosed})
	gate := make(chan struct{})
	send := gw.rel.send
	gw.rel.send = func(ls []*lease) { <-gate; send(ls) } // the first batch is held up
	ctx := context.Background()
	const n = 50
	var held []*Grant
	for i := range n {
		d, err := gw.Admit(ctx, Request{Subject: KeySubject("s" + strconv.Itoa(i%5)), Limits: Limits{Concurrency: n},
			LeaseTTL: time.Minute})
		if err != nil || !d.Allowed {
			t.Fatalf("admit: %+v %v", d, err)
		}
		held = append(held, d.Grant)
	}
	for _, g := range held {
		if err := gw.Release(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() { _ = gw.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while releases were still queued")
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	select {
	case <-closed:
	case <-time.After(pollDeadline):
		t.Fatal("Close did not return after the releases were sent")
	}
	for i := range 5 {
		if c := leaseCount(t, admin, gw, KeySubject("s"+strconv.Itoa(i))); c != 0 {
			t.Fatalf("subject %d: %d leases left after Close", i, c)
		}
	}
}
