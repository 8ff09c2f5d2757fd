package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/imagegw/imagegw/internal/store/storetest"
)

// short runs every scenario very briefly: this checks the tool works, it measures nothing.
func short(setups ...string) *options {
	return &options{
		Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Workers: 4,
		Rate: 100, RateDuration: 300 * time.Millisecond, Inflight: 20, Delay: 100 * time.Millisecond,
		Timeout: 10 * time.Second, FailPause: 10 * time.Millisecond, Scenarios: scenarioOrder, Setups: setups, Runs: 1,
		Price: "0.001", ImageBytes: 1024, LargeBytes: 64 << 10, LargeWorkers: 2,
	}
}

func runShort(t *testing.T, o *options) string {
	t.Helper()
	var out, log bytes.Buffer
	if err := run(context.Background(), o, &out, &log); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	t.Logf("progress:\n%s\nreport:\n%s", log.String(), out.String())
	return out.String()
}

func TestLean(t *testing.T) {
	out := runShort(t, short("direct", "proxy", "lean"))
	for _, want := range []string{
		"| bare `httputil.ReverseProxy` |",
		"| imagegw: SQLite, no budget, in-process limiter |",
		"max req/s (4 workers, 300ms)",
		"| lean | ",
		"Exactness",
		"| lean | 1 |",
		"large: ~0 MB b64_json answers, req/s (2 workers, 300ms)",
		"large req/s ÷ bare proxy",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(out, "failures:") || strings.Contains(out, "**no**") {
		t.Errorf("failures or a ledger mismatch in the report")
	}
}

// TestGoverned needs Postgres and Redis: it skips without them, except in CI (CI=true),
// where it fails, as every Postgres test does.
func TestGoverned(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	o := short("governed")
	o.DatabaseURL = storetest.PostgresURL(t)
	o.RedisURL = testRedisURL(t)
	out := runShort(t, o)
	if !strings.Contains(out, "| governed | 1 |") || strings.Contains(out, "**no**") || strings.Contains(out, "failures:") {
		t.Errorf("governed run: failures or a ledger mismatch")
	}
}

// testRedisURL is IMAGEGW_TEST_REDIS_URL or the local default; it skips the test (fails it in
// CI) when Redis does not answer.
func testRedisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("IMAGEGW_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("IMAGEGW_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		msg := fmt.Sprintf("Redis at %s is unreachable (%v); start one with: redis-server --daemonize yes --port 6379 "+
			"--save \"\" --appendonly no (or point IMAGEGW_TEST_REDIS_URL at one)", opts.Addr, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-setups", "lean,direct", "-scenarios", "rate", "-runs", "3"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Setups, ",") != "direct,lean" || strings.Join(o.Scenarios, ",") != "rate" || o.Runs != 3 {
		t.Fatalf("%+v", o)
	}
	if _, err := parseFlags([]string{"-setups", "nginx"}, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown setup accepted")
	}
	if o, err := parseFlags([]string{"-setups", "all"}, &bytes.Buffer{}); err != nil || len(o.Setups) != len(setupOrder) {
		t.Fatalf("all: %v %v", o, err)
	}
}

func TestHelpers(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
	lat := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p50, p99 := percentile(lat, 50), percentile(lat, 99); p50 != 5 || p99 != 10 {
		t.Errorf("p50 %d p99 %d", p50, p99)
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median %v", m)
	}
	img, err := noisePNG(1024)
	if err != nil || len(img) < 900 || len(img) > 1400 {
		t.Errorf("noisePNG: %d bytes, %v", len(img), err)
	}
}
