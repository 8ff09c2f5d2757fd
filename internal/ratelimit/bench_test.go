package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

func BenchmarkLocal(b *testing.B) {
	m := benchMetrics(b)
	b.Run("admit", func(b *testing.B) { benchAdmit(b, NewLocal(LocalOptions{Metrics: m}), rateOnly(benchLimits), false) })
	b.Run("admit+release", func(b *testing.B) { benchAdmit(b, NewLocal(LocalOptions{Metrics: m}), benchLimits, false) })
	b.Run("admit+release/parallel", func(b *testing.B) { benchAdmit(b, NewLocal(LocalOptions{Metrics: m}), benchLimits, true) })
}

func BenchmarkRedis(b *testing.B) {
	c := needRedis(b)
	prefix := testPrefix(b, c)
	m := benchMetrics(b)
	newLim := func() *Redis { return NewRedis(c, RedisOptions{Prefix: prefix, Metrics: m, Timeout: time.Second}) }
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
	b.Run("circuit open, fail-open", func(b *testing.B) {
		lim := NewRedis(c, RedisOptions{Prefix: prefix, Metrics: m, BreakerCooldown: time.Hour})
		for range DefaultBreakerThreshold {
			lim.breaker.failure()
		}
		benchAdmit(b, lim, benchLimits, false)
	})
}
