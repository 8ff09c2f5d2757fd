package main

import (
	"math"
	"runtime/metrics"
	"strings"
	"testing"
)

// TestSchedHistogram: a window's share of a runtime histogram is the difference of two readings,
// its quantiles are bucket bounds, and "over 1 ms" counts the buckets that start there.
func TestSchedHistogram(t *testing.T) {
	buckets := []float64{0, 1e-4, 5e-4, 1e-3, 4e-3, math.Inf(1)}
	before := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{5, 5, 0, 0, 0}}
	after := &metrics.Float64Histogram{Buckets: buckets, Counts: []uint64{905, 95, 0, 9, 1}}
	h := delta(before, after) // the window: 900 under 0.1 ms, 90 under 0.5 ms, 9 of 1-4 ms, 1 over 4 ms
	if h.total != 1000 {
		t.Fatalf("total %d, want 1000", h.total)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 1e-4}, {0.9, 1e-4}, {0.95, 5e-4}, {0.99, 5e-4}, {0.995, 4e-3}, {1, 4e-3}} {
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := h.above(1e-3); got != 10 {
		t.Errorf("above 1 ms: %d, want 10", got)
	}
	st := schedStats{waits: h.total, waitP99: h.quantile(0.99), waitP999: h.quantile(0.999), waitsOver1ms: h.above(1e-3)}
	if s := st.String(); !strings.Contains(s, "1.00% over 1 ms") {
		t.Errorf("%q does not give the share over 1 ms", s)
	}
	if s := (schedStats{}).String(); s != "sched: n/a" {
		t.Errorf("no waits: %q", s)
	}
	// A real window: goroutines ran, so some waited (the runtime times one transition in 8 of
	// a goroutine's, so a thousand of them, one after another).
	s := startSched()
	for range 1000 {
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
	}
	if st := s.stop(); st.waits == 0 {
		t.Error("a window in which goroutines ran counted no scheduling waits")
	}
}
