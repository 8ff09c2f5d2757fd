package usage

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBatchDurationFromStartup: both insert results have a (zero-count) latency series before
// the first insert.
func TestBatchDurationFromStartup(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	for _, result := range []string{"ok", "error"} {
		if got := metricValue(t, reg, "imagegw_usage_batch_duration_seconds", "result", result); got != 0 {
			t.Errorf("batch_duration{result=%q} count = %v, want 0", result, got)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "imagegw_usage_batch_duration_seconds" {
			if n := len(mf.GetMetric()); n != 2 {
				t.Errorf("%d batch_duration series, want 2 (ok, error)", n)
			}
			return
		}
	}
	t.Error("no imagegw_usage_batch_duration_seconds series")
}
