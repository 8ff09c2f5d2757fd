package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for deterministic Local tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func admitN(t *testing.T, lim Limiter, req Request, n int) (allowed int, last Decision) {
	t.Helper()
	for range n {
		d, err := lim.Admit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
		last = d
	}
	return allowed, last
}

func TestLocalRefillExact(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(LocalOptions{Clock: clk.Now})
	req := Request{Subject: KeySubject("a"), Limits: LimitsPerMinute(60, 0, 0, 0), Cost: Cost{Requests: 1}}

	if got, d := admitN(t, l, req, 61); got != 60 || d.Allowed || d.RetryAfter != time.Second || d.Requests.Reset != time.Minute {
		t.Fatalf("allowed %d of 61, last %+v; want 60 and a refusal with RetryAfter 1s, Reset 1m", got, d)
	}
	clk.Advance(999 * time.Millisecond)
	if got, _ := admitN(t, l, req, 1); got != 0 {
		t.Fatal("admitted before a unit refilled")
	}
	clk.Advance(time.Millisecond)
	if got, _ := admitN(t, l, req, 2); got != 1 {
		t.Fatalf("allowed %d after exactly one interval, want 1", got)
	}
	clk.Advance(30 * time.Second)
	if got, _ := admitN(t, l, req, 40); got != 30 {
		t.Fatalf("allowed %d after 30s at 1/s, want 30", got)
	}
	// A long idle period refills to the burst, not beyond.
	clk.Advance(time.Hour)
	if got, _ := admitN(t, l, req, 100); got != 60 {
		t.Fatalf("allowed %d after an hour idle, want the burst of 60", got)
	}
}

func TestLocalRemainingAndReset(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(LocalOptions{Clock: clk.Now})
	req := Request{Subject: KeySubject("a"), Limits: LimitsPerMinute(10, 20, 0, 0), Cost: CostOf(4, 64, 64)}
	d, err := l.Admit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d.Requests != (Quota{Limit: 10, Remaining: 9, Reset: 6 * time.Second}) {
		t.Fatalf("requests quota %+v", d.Requests)
	}
	if d.Images != (Quota{Limit: 20, Remaining: 16, Reset: 12 * time.Second}) {
		t.Fatalf("images quota %+v", d.Images)
	}
	clk.Advance(6 * time.Second)
	d, _ = l.Admit(context.Background(), req)
	if d.Requests.Remaining != 9 || d.Images.Remaining != 14 || d.Images.Reset != 18*time.Second {
		t.Fatalf("after 6s: requests %+v images %+v", d.Requests, d.Images)
	}
}

func TestLocalLeaseExpiryAndRenew(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(LocalOptions{Clock: clk.Now})
	ctx := context.Background()
	req := Request{Subject: ChannelSubject("up"), Limits: Limits{Concurrency: 1}, LeaseTTL: 10 * time.Second}
	d1, _ := l.Admit(ctx, req)
	if !d1.Allowed || !d1.Grant.HasLease() || d1.Grant.LeaseTTL() != 10*time.Second {
		t.Fatalf("first admit %+v", d1)
	}
	clk.Advance(9 * time.Second)
	if err := l.Renew(ctx, d1.Grant); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Second) // 18s: alive only because of the renewal
	if d, _ := l.Admit(ctx, req); d.Allowed {
		t.Fatal("admitted while the renewed lease is live")
	}
	clk.Advance(time.Second) // 19s = renewal + TTL: expired
	d2, _ := l.Admit(ctx, req)
	if !d2.Allowed {
		t.Fatal("expired lease still holds the slot")
	}
	if err := l.Renew(ctx, d1.Grant); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew of an expired lease: %v, want ErrLeaseLost", err)
	}
	// Releasing the expired grant must not free the new holder's slot.
	if err := l.Release(ctx, d1.Grant); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Admit(ctx, req); d.Allowed {
		t.Fatal("releasing a stale grant freed someone else's slot")
	}
}

func TestLocalSweepsIdleSubjects(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(LocalOptions{Clock: clk.Now})
	ctx := context.Background()
	lim := Limits{Requests: PerMinute(10), Concurrency: 5}
	var held []*Grant
	for i := range 2000 {
		d, _ := l.Admit(ctx, Request{Subject: KeySubject(fmt.Sprint(i)), Limits: lim, Cost: Cost{Requests: 1}})
		if i%100 == 0 {
			held = append(held, d.Grant) // these keep a lease
		} else {
			_ = l.Release(ctx, d.Grant)
		}
	}
	if n := l.subjects(); n != 2000 {
		t.Fatalf("%d subjects tracked, want 2000", n)
	}
	// A minute later every bucket is full again; the held leases (TTL DefaultLeaseTTL) live on
	// because the keeper renews them (driven by hand: the clock is fake).
	for range 12 {
		clk.Advance(5 * time.Second)
		l.keeper.tick()
	}
	l.sweepEvery = 8
	for i := range 64 * localShards {
		_, _ = l.Admit(ctx, Request{Subject: KeySubject(fmt.Sprint("unlimited", i)), Limits: Limits{}})
	}
	// Only the subjects with a live lease stay.
	if n := l.subjects(); n != len(held) {
		t.Fatalf("%d subjects tracked after the sweep, want %d", n, len(held))
	}
	for _, g := range held {
		if err := l.Renew(ctx, g); err != nil {
			t.Fatalf("sweep dropped a live lease: %v", err)
		}
	}
}

func (l *Local) subjects() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].subjects)
		l.shards[i].mu.Unlock()
	}
	return n
}

func TestLocalConcurrentExactCounts(t *testing.T) {
	l := NewLocal(LocalOptions{})
	req := Request{Subject: KeySubject("a"), Limits: Limits{Requests: perHour(500), Concurrency: 7}, Cost: oneReq}
	var allowed, inFlight, peak atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				d, err := l.Admit(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if d.RefusedBy == DimRequests {
					return // the hour's budget is spent
				}
				if !d.Allowed {
					continue
				}
				allowed.Add(1)
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				inFlight.Add(-1)
				_ = l.Release(context.Background(), d.Grant)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 7 {
		t.Fatalf("peak in flight %d above the concurrency limit 7", peak.Load())
	}
	if allowed.Load() != 500 {
		t.Fatalf("allowed %d against 500/hour, want exactly 500", allowed.Load())
	}
}
