package usage

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/metrics/metricstest"
)

// TestBatchDurationFromStartup: both insert results have a (zero-count) latency series before
// the first insert.
func TestBatchDurationFromStartup(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	const name = "imagegw_usage_batch_duration_seconds"
	if got := metricstest.Series(t, reg, name); !slices.Equal(got, []string{"result=error", "result=ok"}) {
		t.Errorf("batch_duration series %v, want result=error and result=ok", got)
	}
	if got := metricstest.Sum(t, reg, name); got != 0 {
		t.Errorf("batch_duration count = %v, want 0", got)
	}
}
