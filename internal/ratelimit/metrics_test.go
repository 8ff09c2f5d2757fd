package ratelimit

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/metrics/metricstest"
)

// TestMetricsFromStartup: the closed label sets and the configured backend's decisions exist,
// zero-valued, before anything is decided.
func TestMetricsFromStartup(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"imagegw_ratelimit_leases_dropped_total":   {"reason=abandoned", "reason=expired"},
		"imagegw_ratelimit_release_retries_total":  {"result=expired", "result=failed", "result=released"},
		"imagegw_ratelimit_redis_errors_total":     {"op=admit", "op=allot", "op=give_back", "op=release_batch", "op=renew", "op=renew_batch"},
		"imagegw_ratelimit_redis_duration_seconds": {"op=admit", "op=allot", "op=give_back", "op=release_batch", "op=renew", "op=renew_batch"},
		"imagegw_ratelimit_decisions_total":        nil,
	} {
		if got := metricstest.Series(t, reg, name); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}

	local := NewLocal(LocalOptions{Metrics: m})
	defer local.Close()
	m.InitDecisions(local, "key", "channel", "no_such_class")
	want := []string{
		"backend=local,limit=none,result=allowed,subject=channel",
		"backend=local,limit=none,result=allowed,subject=key",
	}
	if got := metricstest.Series(t, reg, "imagegw_ratelimit_decisions_total"); !slices.Equal(got, want) {
		t.Errorf("decisions: %v, want %v", got, want)
	}

	reg = prometheus.NewRegistry()
	if m, err = NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	m.InitDecisions(&Redis{}, "key")
	if got := metricstest.Series(t, reg, "imagegw_ratelimit_decisions_total"); !slices.Equal(got, []string{"backend=redis,limit=none,result=allowed,subject=key"}) {
		t.Errorf("redis decisions: %v", got)
	}
	var nilM *Metrics
	nilM.InitDecisions(local, "key") // a nil *Metrics records nothing
}

// TestRedisOpsComplete: every op the Redis limiter labels its round trips with is in redisOps
// (so its series exist from startup).
func TestRedisOpsComplete(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?:\.call\(ctx, |runBatch\(|redisCall\(|\.failed\()"([a-z_]+)"`)
	found := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			found++
			if !slices.Contains(redisOps[:], string(m[1])) {
				t.Errorf("%s: op %q is missing from redisOps", path, m[1])
			}
		}
	}
	if found < 3 {
		t.Fatalf("found %d op labels in the sources: update this test", found)
	}
}
