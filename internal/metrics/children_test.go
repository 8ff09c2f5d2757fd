package metrics_test

import (
	"slices"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/metrics/metricstest"
)

// TestCachedChildren: ObserveUpstream and Delivered update the series of their labels, the
// first time and from the cache; megapixels only when there are some.
func TestCachedChildren(t *testing.T) {
	m := metrics.New()
	for range 3 {
		m.ObserveUpstream("openai", "ch1", "ok", 2*time.Second)
	}
	m.ObserveUpstream("openai", "ch1", "upstream_timeout", time.Second)
	m.ObserveUpstream("openai", "ch2", "ok", time.Second)
	g := m.Registry
	if got := metricstest.Sum(t, g, "imagegw_upstream_requests_total", "channel", "ch1", "result", "ok"); got != 3 {
		t.Errorf("upstream ch1 ok = %v, want 3", got)
	}
	if got := metricstest.Sum(t, g, "imagegw_upstream_requests_total", "channel", "ch1", "result", "upstream_timeout"); got != 1 {
		t.Errorf("upstream ch1 timeout = %v, want 1", got)
	}
	if got := metricstest.Sum(t, g, "imagegw_upstream_duration_seconds", "channel", "ch1"); got != 4 {
		t.Errorf("upstream ch1 latency samples = %v, want 4", got)
	}
	m.Delivered("m1", "openai", "generate", 2, 0.5)
	m.Delivered("m1", "openai", "generate", 1, 0.25)
	m.Delivered("m2", "openai", "generate", 1, 0)
	if got := metricstest.Sum(t, g, "imagegw_images_total", "model", "m1", "operation", "generate"); got != 3 {
		t.Errorf("images m1 = %v, want 3", got)
	}
	if got := metricstest.Sum(t, g, "imagegw_megapixels_total", "model", "m1"); got != 0.75 {
		t.Errorf("megapixels m1 = %v, want 0.75", got)
	}
	if got := metricstest.Series(t, g, "imagegw_megapixels_total"); !slices.Equal(got, []string{"model=m1"}) {
		t.Errorf("megapixel series %v, want only m1's (none for a size not known)", got)
	}
}

// BenchmarkObserveUpstream is an upstream call's metrics from the cache, beside the vectors'
// WithLabelValues it replaces.
func BenchmarkObserveUpstream(b *testing.B) {
	m := metrics.New()
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			m.ObserveUpstream("openai-compatible", "openai-compatible", "ok", time.Second)
		}
	})
	b.Run("vectors", func(b *testing.B) {
		for b.Loop() {
			m.Upstream.WithLabelValues("openai-compatible", "openai-compatible", "ok").Inc()
			m.UpstreamLatency.WithLabelValues("openai-compatible", "openai-compatible").Observe(1)
		}
	})
}
