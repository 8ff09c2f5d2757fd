package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/faultproxy"
)

func perDay(n int64) Rate { return Rate{Count: n, Period: 24 * time.Hour} }

// exactView admits a zero cost through a limiter without allotments: Redis's state as it is.
func exactView(t *testing.T, prefix string, req Request) Decision {
	t.Helper()
	r := NewRedis(needRedis(t), RedisOptions{Prefix: prefix, Policy: FailClosed, Timeout: 2 * time.Second})
	defer r.Close()
	req.Cost = Cost{}
	d, err := r.Admit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Release(context.Background(), d.Grant) // sent by Close
	return d
}

// settle waits for gw's refills in flight and then for its queued releases: what another
// gateway sees of it one round trip later.
func settle(gw *Redis) {
	gw.allot.mu.Lock()
	var calls []*refillCall
	for _, a := range gw.allot.m {
		a.mu.Lock()
		if a.refill != nil {
			calls = append(calls, a.refill)
		}
		a.mu.Unlock()
	}
	gw.allot.mu.Unlock()
	for _, c := range calls {
		<-c.done
	}
	gw.rel.flush()
}

// Three gateways admitting from allotments never admit more than the limit together, fall short
// of it by at most the documented 1/16 of it per gateway, and once closed leave Redis holding
// exactly what was admitted and not given back.
func TestAllotmentsNeverExceedALimitAcrossGateways(t *testing.T) {
	gws := gateways(t, 3, RedisOptions{AllotWindow: DefaultAllotWindow})
	// 960 requests and 2,000 images a day: 1/16 is 60 requests and 125 images, so allotments are
	// on. Each request asks for 2 images of 512×512, so requests run out first (960·2 < 2,000).
	req := Request{Subject: KeySubject("allot"), Limits: Limits{Requests: perDay(960), Images: perDay(2000)},
		Cost: CostOf(2, 512, 512)}
	var allowed, gaveBack atomic.Int64
	var wg sync.WaitGroup
	for _, gw := range gws {
		for w := range 8 {
			wg.Go(func() {
				for i := range 60 {
					d, err := gw.Admit(context.Background(), req)
					if err != nil {
						t.Error(err)
						return
					}
					if !d.Allowed {
						if d.RefusedBy != DimRequests || d.RetryAfter <= 0 {
							t.Errorf("refused by %v after %v, want requests with a Retry-After", d.RefusedBy, d.RetryAfter)
						}
						continue
					}
					allowed.Add(1)
					if (w+i)%2 == 0 { // one of the two images was not delivered
						if err := gw.GiveBack(context.Background(), d.Grant, Cost{Images: 1}); err != nil {
							t.Error(err)
						}
						gaveBack.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	n := allowed.Load()
	if n > 960 {
		t.Fatalf("3 gateways admitted %d requests against a global 960 a day", n)
	}
	if n < 960-3*60 {
		t.Fatalf("3 gateways admitted %d of 1,440 requests against 960 a day: short by more than 1/16 per gateway", n)
	}
	for _, gw := range gws {
		_ = gw.Close() // gives the allotments back
	}
	d := exactView(t, gws[0].prefix, req)
	if d.Requests.Remaining != 960-n || d.Images.Remaining != 2000-(2*n-gaveBack.Load()) {
		t.Fatalf("after close Redis has %d requests and %d images left; admitted %d requests and %d images, so want %d and %d",
			d.Requests.Remaining, d.Images.Remaining, n, 2*n-gaveBack.Load(), 960-n, 2000-(2*n-gaveBack.Load()))
	}
	t.Logf("admitted %d of 960", n)
}

// Concurrency from allotments: at no moment do the three gateways' requests hold more slots than
// the limit, and closing them leaves no lease behind.
func TestAllotmentsKeepTheConcurrencyLimitAcrossGateways(t *testing.T) {
	gws := gateways(t, 3, RedisOptions{AllotWindow: DefaultAllotWindow})
	admin := needRedis(t)
	const limit = 64 // 1/16 is 4 leases
	req := Request{Subject: KeySubject("allot-c"), Limits: Limits{Concurrency: limit}, Cost: CostOf(1, 64, 64)}
	var held, peak, allowed atomic.Int64
	var wg sync.WaitGroup
	for _, gw := range gws {
		for range 30 {
			wg.Go(func() {
				for range 40 {
					d, err := gw.Admit(context.Background(), req)
					if err != nil {
						t.Error(err)
						return
					}
					if !d.Allowed {
						if d.RefusedBy != DimConcurrency || d.RetryAfter < MinConcurrencyRetryAfter {
							t.Errorf("refused by %v after %v, want concurrency", d.RefusedBy, d.RetryAfter)
						}
						time.Sleep(time.Millisecond)
						continue
					}
					allowed.Add(1)
					h := held.Add(1)
					storeMax(&peak, h)
					time.Sleep(time.Millisecond)
					held.Add(-1)
					if err := gw.Release(context.Background(), d.Grant); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	if peak.Load() > limit {
		t.Fatalf("requests held %d slots at once against a limit of %d", peak.Load(), limit)
	}
	if peak.Load() < limit/2 {
		t.Fatalf("peak %d slots held: allotments starved the limit of %d", peak.Load(), limit)
	}
	if got := leaseCount(t, admin, gws[0], req.Subject); got > limit {
		t.Fatalf("Redis counts %d leases against a limit of %d", got, limit)
	}
	for _, gw := range gws {
		_ = gw.Close()
	}
	if got := leaseCount(t, admin, gws[0], req.Subject); got != 0 {
		t.Fatalf("%d leases left in Redis after every gateway closed", got)
	}
	t.Logf("%d admitted, peak %d held", allowed.Load(), peak.Load())
}

// A busy subject with roomy limits costs Redis a refill now and then, not a call per request.
func TestAllotmentsSpareTheRoundTrip(t *testing.T) {
	m := newTestMetrics(t)
	gw := gateways(t, 1, RedisOptions{AllotWindow: DefaultAllotWindow, Metrics: m})[0]
	req := Request{Subject: KeySubject("allot-busy"), Cost: CostOf(1, 1024, 1024),
		Limits: LimitsPerMinute(1<<30, 1<<30, 1<<30, 1<<30)}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				d, err := gw.Admit(context.Background(), req)
				if err != nil || !d.Allowed {
					t.Errorf("admit: %v %+v", err, d)
					return
				}
				_ = gw.GiveBack(context.Background(), d.Grant, Cost{Images: 1, Kilopixels: 1049})
				_ = gw.Release(context.Background(), d.Grant)
			}
		})
	}
	wg.Wait()
	admits := histCount(m.redisDuration.WithLabelValues("admit"))
	allots := histCount(m.redisDuration.WithLabelValues("allot"))
	if admits != 0 || allots == 0 || allots > 100 {
		t.Fatalf("4,000 admissions cost %d admit and %d allot calls; want none and a few", admits, allots)
	}
	t.Logf("4,000 admissions: %d allotment refills", allots)
}

// Near a limit the allotment steps aside: one gateway admits exactly the limit, then refuses
// with the exact path's Retry-After, for rates and for concurrency alike.
func TestAllotmentsAreExactAtTheLimit(t *testing.T) {
	gw := gateways(t, 1, RedisOptions{AllotWindow: DefaultAllotWindow})[0]
	ctx := context.Background()
	rate := Request{Subject: KeySubject("allot-edge"), Limits: Limits{Requests: perDay(64)}, Cost: CostOf(1, 64, 64)}
	for i := range 70 {
		d, err := gw.Admit(ctx, rate)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 64; d.Allowed != want {
			t.Fatalf("admission %d: allowed %v, want %v", i+1, d.Allowed, want)
		}
		// 64 a day: one every 1,350 s; the 65th fits 1,350 s after the first (give or take the
		// time this test has run).
		if !d.Allowed && (d.RefusedBy != DimRequests || d.RetryAfter < 1340*time.Second || d.RetryAfter > 1350*time.Second) {
			t.Fatalf("admission %d refused by %v after %v, want requests after about 1,350s", i+1, d.RefusedBy, d.RetryAfter)
		}
	}
	conc := Request{Subject: KeySubject("allot-edge-c"), Limits: Limits{Concurrency: 64}, Cost: CostOf(1, 64, 64)}
	var grants []*Grant
	for i := range 66 {
		d, err := gw.Admit(ctx, conc)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 64; d.Allowed != want {
			t.Fatalf("concurrent admission %d: allowed %v, want %v", i+1, d.Allowed, want)
		}
		if d.Allowed {
			grants = append(grants, d.Grant)
		} else if d.RefusedBy != DimConcurrency {
			t.Fatalf("refused by %v, want concurrency", d.RefusedBy)
		}
	}
	// Released, the slots are admitted again at once.
	for _, g := range grants {
		_ = gw.Release(ctx, g)
	}
	for i := range 64 {
		d, err := gw.Admit(ctx, conc)
		if err != nil || !d.Allowed {
			t.Fatalf("admission %d after the releases: %v %+v", i+1, err, d)
		}
	}
}

// A gateway that dies with an allotment leaves its leases to expire within the lease TTL; then
// another gateway has the whole limit.
func TestAllotmentsOfADeadGatewayExpire(t *testing.T) {
	admin := needRedis(t)
	prefix := testPrefix(t, admin)
	const ttl = time.Second
	doomedClient := needRedis(t)
	doomed := NewRedis(doomedClient, RedisOptions{Prefix: prefix, Policy: FailClosed, Timeout: 2 * time.Second,
		LeaseTTL: ttl, AllotWindow: DefaultAllotWindow})
	req := Request{Subject: KeySubject("allot-dead"), Limits: Limits{Concurrency: 64}, Cost: CostOf(1, 64, 64)}
	for range 10 {
		if d, err := doomed.Admit(context.Background(), req); err != nil || !d.Allowed {
			t.Fatalf("%v %+v", err, d)
		}
	}
	held := leaseCount(t, admin, doomed, req.Subject)
	if held < 10 || held > 10+4 {
		t.Fatalf("Redis counts %d leases for 10 requests; an allotment holds at most 4 spare", held)
	}
	// "SIGKILL": its client goes, nothing renews, nothing is given back.
	_ = doomedClient.Close()
	survivor := NewRedis(needRedis(t), RedisOptions{Prefix: prefix, Policy: FailClosed, Timeout: 2 * time.Second, LeaseTTL: ttl})
	defer survivor.Close()
	// Until its leases expire the survivor finds fewer than 64 slots; within the TTL (and the
	// time to notice) it finds all of them.
	ctx := context.Background()
	deadline := time.Now().Add(ttl + 2*time.Second)
	for {
		var grants []*Grant
		for range 64 {
			d, err := survivor.Admit(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed {
				break
			}
			grants = append(grants, d.Grant)
		}
		for _, g := range grants {
			_ = survivor.Release(ctx, g)
		}
		if len(grants) == 64 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 64 slots free %v after the gateway died with a lease TTL of %v", len(grants), ttl+2*time.Second, ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A grant dropped without Release (a bug, a panic) gives its slot back to the allotment once it
// is garbage-collected, and is counted as abandoned.
func TestAllotmentLeaseOfADroppedGrantComesBack(t *testing.T) {
	m := newTestMetrics(t)
	gw := gateways(t, 1, RedisOptions{AllotWindow: DefaultAllotWindow, Metrics: m})[0]
	req := Request{Subject: KeySubject("allot-drop"), Limits: Limits{Concurrency: 64}, Cost: CostOf(1, 64, 64)}
	func() {
		d, err := gw.Admit(context.Background(), req)
		if err != nil || !d.Allowed {
			t.Fatalf("%v %+v", err, d)
		}
	}()
	a := gw.allot.m[req.Subject]
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		a.mu.Lock()
		used := a.used
		a.mu.Unlock()
		if used == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dropped grant's lease never came back to the allotment")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := value(m.dropped.WithLabelValues(dropAbandoned)); n != 1 {
		t.Fatalf("abandoned leases counted %v, want 1", n)
	}
}

// Redis goes away under a busy subject: what the allotment holds is still admitted (it is
// charged in Redis already), then the failure policy decides; once Redis is back the subject is
// admitted from allotments again, and Redis never counts fewer requests than were admitted
// through it.
func TestAllotmentsRideOutARedisOutage(t *testing.T) {
	admin, prefix, p := proxiedRedis(t)
	gw, _ := redisGateway(t, "redis://"+p.Addr()+"/0", prefix, RedisOptions{Policy: FailOpen, AllotWindow: DefaultAllotWindow,
		Timeout: 200 * time.Millisecond, BreakerThreshold: 2, BreakerCooldown: 200 * time.Millisecond})
	ctx := context.Background()
	// A million requests a year: the bucket refills one every 30 s, nothing during the test.
	year := Rate{Count: 1 << 20, Period: 365 * 24 * time.Hour}
	req := Request{Subject: KeySubject("allot-outage"), Limits: Limits{Requests: year, Concurrency: 1 << 16},
		Cost: CostOf(1, 64, 64)}
	var shared int64 // admitted through Redis (not by the fallback)
	admit := func() Decision {
		t.Helper()
		d, err := gw.Admit(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("admit: %v %+v", err, d)
		}
		if !d.Degraded {
			shared++
		}
		_ = gw.Release(ctx, d.Grant)
		return d
	}
	for range 500 {
		admit()
	}
	if err := p.SetMode(faultproxy.Refuse); err != nil {
		t.Fatal(err)
	}
	p.CutExisting() // Redis is down
	// The allotment holds at most 1/16 of the limit, 65,536 requests.
	fromAllotment, degraded := 0, 0
	for i := 0; degraded < 100 && i < 70_000; i++ {
		if admit().Degraded {
			degraded++
		} else if degraded == 0 {
			fromAllotment++
		}
	}
	if fromAllotment == 0 || degraded == 0 {
		t.Fatalf("with Redis cut: %d admitted from the allotment, then %d by the fallback; want some of each", fromAllotment, degraded)
	}
	if err := p.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for admit().Degraded {
		if time.Now().After(deadline) {
			t.Fatal("still degraded 5s after Redis came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 500 {
		admit()
	}
	_ = gw.Close()
	d := exactView(t, prefix, req)
	if charged := (1 << 20) - d.Requests.Remaining; charged < shared {
		t.Fatalf("Redis counts %d requests; %d were admitted through it", charged, shared)
	}
	if n := leaseCount(t, admin, gw, req.Subject); n != 0 {
		t.Fatalf("%d leases left after close", n)
	}
	t.Logf("after the cut %d admitted from the allotment, %d by the fallback; %d admitted through Redis in all", fromAllotment, degraded, shared)
}

// After a burst, a gateway keeps at most 1/16 of a limit unused: the leases and units its
// requests give back beyond that go back to Redis at once, so another gateway can use them.
func TestAllotmentsGiveBackWhatABurstLeaves(t *testing.T) {
	gws := gateways(t, 2, RedisOptions{AllotWindow: DefaultAllotWindow})
	ctx := context.Background()
	// 64 in flight and 640 requests a day: 1/16 is 4 leases and 40 requests.
	req := Request{Subject: KeySubject("allot-burst"), Limits: Limits{Concurrency: 64, Requests: perDay(640)},
		Cost: CostOf(1, 64, 64)}
	var grants []*Grant
	for range 60 {
		d, err := gws[0].Admit(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("%v %+v", err, d)
		}
		grants = append(grants, d.Grant)
	}
	for _, g := range grants {
		// The request was refused upstream: all of it comes back.
		if err := gws[0].GiveBack(ctx, g, Cost{Requests: 1}); err != nil {
			t.Fatal(err)
		}
		_ = gws[0].Release(ctx, g)
	}
	// Once gateway 0's background releases land (one round trip), the other gateway finds all
	// but its spare 4 leases and 40 requests.
	settle(gws[0])
	held := 0
	for range 64 {
		d, err := gws[1].Admit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			break
		}
		held++
	}
	if held < 60 {
		t.Fatalf("after gateway 0's burst of 60 ended, gateway 1 got %d of 64 slots; gateway 0 may keep 4", held)
	}
	d := exactView(t, gws[0].prefix, Request{Subject: req.Subject, Limits: Limits{Requests: req.Limits.Requests}})
	if used := 640 - d.Requests.Remaining; used > int64(held)+2*40 {
		t.Fatalf("Redis counts %d requests used: gateway 1's %d and more than 1/16 of 640 unused in each gateway's allotment", used, held)
	}
}

// Close gives back every subject's allotment in one pipelined round trip: exactly, and within
// the batch timeout even when Redis hangs (one give-back call per subject would take the
// limiter's timeout per subject).
func TestAllotmentsCloseInOneRoundTrip(t *testing.T) {
	for _, hung := range []bool{false, true} {
		_, prefix, p := proxiedRedis(t)
		gw, _ := redisGateway(t, "redis://"+p.Addr()+"/0", prefix, RedisOptions{Policy: FailClosed,
			AllotWindow: DefaultAllotWindow, Timeout: 200 * time.Millisecond, BreakerThreshold: 1000})
		limits := Limits{Requests: perDay(1600)} // 1/16: 100
		const subjects = 200
		for i := range subjects {
			req := Request{Subject: KeySubject("allot-close-" + strconv.Itoa(i)), Limits: limits, Cost: CostOf(1, 64, 64)}
			var d Decision
			for range 3 {
				var err error
				if d, err = gw.Admit(context.Background(), req); err != nil || !d.Allowed {
					t.Fatalf("%v %+v", err, d)
				}
			}
			// The last one never reached an upstream: every allotment holds a unit to give back.
			if err := gw.GiveBack(context.Background(), d.Grant, Cost{Requests: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if hung {
			if err := p.SetMode(faultproxy.Blackhole); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		_ = gw.Close()
		took := time.Since(start)
		if hung {
			if took > 5*time.Second {
				t.Fatalf("Close took %v with Redis hung and %d subjects", took, subjects)
			}
			t.Logf("with Redis hung, Close took %v for %d subjects", took, subjects)
			_ = p.SetMode(faultproxy.Pass)
			continue
		}
		for i := range subjects {
			s := KeySubject("allot-close-" + strconv.Itoa(i))
			if d := exactView(t, prefix, Request{Subject: s, Limits: limits}); d.Requests.Remaining != 1600-2 {
				t.Fatalf("%s: %d requests left after close, want %d", s, d.Requests.Remaining, 1600-2)
			}
		}
	}
}
