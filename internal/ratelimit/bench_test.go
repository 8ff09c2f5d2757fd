package ratelimit

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// A typical key: rpm, ipm, mppm and a concurrency limit, limits high enough that every request
// is admitted (a refusal costs the same).
var benchLimits = Limits{
	Requests:    Rate{Count: 1 << 40, Period: time.Minute},
	Images:      Rate{Count: 1 << 40, Period: time.Minute},
	Megapixels:  Rate{Count: 1 << 40, Period: time.Minute},
	Concurrency: 1 << 30,
}

func benchMetrics(b *testing.B) *Metrics {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchAdmit measures one request's limiter cost: Admit and, with a concurrency limit, Release.
func benchAdmit(b *testing.B, lim Limiter, limits Limits, parallel bool) {
	ctx := context.Background()
	cost := CostOf(2, 1024, 1024)
	var seq atomic.Int64
	one := func(s Subject) {
		d, err := lim.Admit(ctx, Request{Subject: s, Limits: limits, Cost: cost})
		if err != nil || !d.Allowed {
			b.Fatalf("admit: %+v %v", d, err)
		}
		if err := lim.Release(ctx, d.Grant); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			one(KeySubject("bench"))
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		s := KeySubject("bench" + strconv.FormatInt(seq.Add(1)%16, 10)) // 16 keys shared by the workers
		for pb.Next() {
			one(s)
		}
	})
}

func rateOnly(l Limits) Limits { l.Concurrency = 0; return l }

// holdLeases admits n requests over subjects subjects ("held<i>") and keeps their grants, so the
// benchmarks run with a populated lease registry, as under load.
func holdLeases(b *testing.B, lim Limiter, n, subjects int) []*Grant {
	b.Helper()
	held := make([]*Grant, 0, n)
	for i := range n {
		d, err := lim.Admit(context.Background(), Request{Subject: KeySubject("held" + strconv.Itoa(i%subjects)),
			Limits: benchLimits, Cost: oneReq, LeaseTTL: time.Minute})
		if err != nil || !d.Allowed {
			b.Fatalf("admit: %+v %v", d, err)
		}
		held = append(held, d.Grant)
	}
	return held
}

// benchRenewPass measures one renewal pass over n held leases on subjects subjects: one batch
// (for Redis one pipeline with one script call per subject).
func benchRenewPass(b *testing.B, k *keeper, held []*Grant) {
	ls := make([]*lease, len(held))
	for i, g := range held {
		ls[i] = g.lease
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		status, _, _ := k.backend.renewLeases(ls)
		for _, st := range status {
			if st != 1 {
				b.Fatalf("renewal status %d", st)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ls)), "ns/lease")
}

func BenchmarkLocal(b *testing.B) {
	m := benchMetrics(b)
	newLim := func(b *testing.B) *Local {
		l := NewLocal(LocalOptions{Metrics: m})
		b.Cleanup(func() { _ = l.Close() })
		return l
	}
	b.Run("admit", func(b *testing.B) { benchAdmit(b, newLim(b), rateOnly(benchLimits), false) })
	b.Run("admit+release", func(b *testing.B) { benchAdmit(b, newLim(b), benchLimits, false) })
	b.Run("admit+release/parallel", func(b *testing.B) { benchAdmit(b, newLim(b), benchLimits, true) })
	b.Run("admit+release/10000 leases held", func(b *testing.B) {
		l := newLim(b)
		held := holdLeases(b, l, 10000, 1000)
		benchAdmit(b, l, benchLimits, false)
		runtime.KeepAlive(held)
	})
	b.Run("renew pass/1000 leases on 100 subjects", func(b *testing.B) {
		l := newLim(b)
		benchRenewPass(b, l.keeper, holdLeases(b, l, 1000, 100))
	})
}

func BenchmarkRedis(b *testing.B) {
	c := needRedis(b)
	prefix := testPrefix(b, c)
	m := benchMetrics(b)
	newLim := func() *Redis {
		r := NewRedis(c, RedisOptions{Prefix: prefix, Metrics: m, Timeout: time.Second})
		b.Cleanup(func() { _ = r.Close() })
		return r
	}
	b.Run("ping baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Ping(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("admit", func(b *testing.B) { benchAdmit(b, newLim(), rateOnly(benchLimits), false) })
	b.Run("admit+release", func(b *testing.B) { benchAdmit(b, newLim(), benchLimits, false) })
	b.Run("admit+release/parallel", func(b *testing.B) { benchAdmit(b, newLim(), benchLimits, true) })
	b.Run("admit+release/64 goroutines", func(b *testing.B) {
		// Its own client, counting round trips: one per command sent alone, one per pipeline.
		rc := needRedis(b)
		var trips atomic.Int64
		rc.AddHook(roundTrips{&trips})
		lim := NewRedis(rc, RedisOptions{Prefix: prefix, Metrics: m, Timeout: time.Second})
		b.Cleanup(func() { _ = lim.Close() })
		b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		start := trips.Load()
		benchAdmit(b, lim, benchLimits, true)
		b.StopTimer()
		_ = lim.Close() // flushes what is still queued: those round trips belong to the pairs too
		b.ReportMetric(float64(trips.Load()-start)/float64(b.N), "roundtrips/pair")
	})
	b.Run("admit+release/1000 leases held", func(b *testing.B) {
		lim := newLim()
		held := holdLeases(b, lim, 1000, 100)
		benchAdmit(b, lim, benchLimits, false)
		runtime.KeepAlive(held)
	})
	b.Run("renew pass/1000 leases on 100 subjects", func(b *testing.B) {
		lim := newLim()
		benchRenewPass(b, lim.keeper, holdLeases(b, lim, 1000, 100))
	})
	b.Run("circuit open, fail-open", func(b *testing.B) {
		lim := NewRedis(c, RedisOptions{Prefix: prefix, Metrics: m, BreakerCooldown: time.Hour})
		b.Cleanup(func() { _ = lim.Close() })
		for range DefaultBreakerThreshold {
			lim.breaker.failure()
		}
		benchAdmit(b, lim, benchLimits, false)
	})
}

// roundTrips is a go-redis hook that counts round trips: a command sent alone is one, a
// pipeline is one.
type roundTrips struct{ n *atomic.Int64 }

func (h roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
