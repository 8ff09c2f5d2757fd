package meter_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// TestLedgerEqualsCostHeadersOverAMixedRun runs a concurrent mix of models, sizes, counts,
// partial deliveries and failures, then checks that the ledger's total, the key's spent budget
// and the sum of the X-Imagegw-Cost headers clients saw are the same amount.
func TestLedgerEqualsCostHeadersOverAMixedRun(t *testing.T) {
	// The mix's six simulated upstream failures may come in a row; the sandbox channel's breaker
	// must not open on them (that is internal/router's test), or requests after them would be
	// refused without a call.
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) { c.Routing.Failures = 100 }})
	secret := g.NewKey(t, &store.Key{Name: "mixed", Budget: amount("100")})
	bodies := []string{
		`{"model":"sandbox-image","prompt":"a","n":3,"size":"64x64"}`,
		`{"model":"sandbox-image","prompt":"b [sandbox:withhold=2]","n":5,"size":"64x64"}`,
		`{"model":"sandbox-steps","prompt":"c","width":1024,"height":768,"steps":30}`,
		`{"model":"sandbox-steps","prompt":"d","n":2,"size":"512x512"}`,
		`{"model":"sandbox-fixed","prompt":"e","width":1024,"height":512,"n":6}`,
		`{"model":"sandbox-image","prompt":"f [sandbox:fail=upstream_unavailable]","n":2,"size":"64x64"}`,
		`{"model":"sandbox-fixed","prompt":"g","size":"1000x1000","map_nearest":true}`,
	}
	var mu sync.Mutex
	var headers money.Amount
	var delivered int
	var wg sync.WaitGroup
	for round := 0; round < 6; round++ {
		for _, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := post(t, g.URL, "/v1/images/generations", secret, b)
				c, err := money.Parse(resp.Header.Get("X-Imagegw-Cost"))
				if err != nil {
					t.Errorf("no cost header on %d", resp.StatusCode)
				}
				mu.Lock()
				headers += c
				if resp.StatusCode == 200 {
					delivered++
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	k, _ := g.App.Store.KeyByHash(context.Background(), hashOfSecret(secret))
	evs := waitUsage(t, g.App.Store, k.ID, 6*len(bodies))
	var ledger money.Amount
	statuses := map[string]int{}
	for _, e := range evs {
		ledger += e.Cost
		statuses[e.Status]++
	}
	bal, err := g.App.Store.Balance(context.Background(), k.ID, store.PeriodTotal, billing.PeriodStart(store.PeriodTotal, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if held := g.App.Escrow.Stats().Held; ledger != headers || bal.Spent != headers || held != 0 || headers == 0 {
		t.Fatalf("ledger %s, spent %s (held in flight %s), headers %s", ledger, bal.Spent, held, headers)
	}
	if statuses[store.StatusOK] != 6*6 || statuses[store.StatusFailed] != 6 {
		t.Fatalf("statuses %v", statuses)
	}
}

// TestClientGoneIsIndeterminate: a client that disconnects while the upstream works is not
// charged, and the ledger records the request as indeterminate.
func TestClientGoneIsIndeterminate(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	secret := g.NewKey(t, &store.Key{Name: "leaver", Budget: amount("1")})
	req, _ := http.NewRequest("POST", g.URL+"/v1/images/generations",
		strings.NewReader(`{"model":"sandbox-image","prompt":"slow [sandbox:latency=3s]","n":2,"size":"64x64"}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	if _, err := (&http.Client{Timeout: 300 * time.Millisecond}).Do(req); err == nil {
		t.Fatal("the client did not time out")
	}
	k, _ := g.App.Store.KeyByHash(context.Background(), hashOfSecret(secret))
	ev := waitUsage(t, g.App.Store, k.ID, 1)[0]
	if ev.Status != store.StatusIndeterminate || ev.Cost != 0 || ev.NRequested != 2 || ev.NDelivered != 0 || ev.ErrorKind != "canceled" {
		t.Fatalf("ledger event %+v", ev)
	}
	bal, _ := g.App.Store.Balance(context.Background(), k.ID, store.PeriodTotal, time.Time{})
	if held := g.App.Escrow.Stats().Held; bal.Spent != 0 || held != 0 {
		t.Fatalf("balance after an indeterminate request: %+v, held in flight %s", bal, held)
	}
}

// TestChannelLimitsFailOverThenRefuse: a channel at its configured limit is skipped for the
// model's next channel; with every channel at its limit the request is refused with 429, and
// that refusal, made before any upstream call, is not a ledger event.
func TestChannelLimitsFailOverThenRefuse(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Providers = append(c.Providers,
			config.ChannelConfig{Name: "sb-a", Type: "sandbox", RPM: 1},
			config.ChannelConfig{Name: "sb-b", Type: "sandbox", IPM: 1})
		c.Models = append(c.Models, config.ModelConfig{Name: "limited", Target: "sb-a/sandbox-image", Fallbacks: []string{"sb-b/sandbox-image"}})
	}})
	var channels []string
	for i := 0; i < 3; i++ {
		resp, body := post(t, g.URL, "/v1/images/generations", g.Key, `{"model":"limited","prompt":"x","size":"64x64"}`)
		if i < 2 && resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if i == 2 {
			if resp.StatusCode != 429 || !strings.Contains(string(body), "configured limits") || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("request 3: %d %v %s", resp.StatusCode, resp.Header, body)
			}
		}
	}
	k, _ := g.App.Store.KeyByHash(context.Background(), hashOf(g))
	if err := g.App.Recorder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, e := range waitUsage(t, g.App.Store, k.ID, 2) {
		channels = append(channels, e.Channel+":"+e.Status)
	}
	got := strings.Join(channels, ",")
	if got != "sb-b:ok,sb-a:ok" && got != "sb-a:ok,sb-b:ok" {
		t.Fatalf("channels used: %s", got)
	}
}

func redisURL(t *testing.T) string {
	u := os.Getenv("IMAGEGW_TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(u, "redis://"), "/0")
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		addr = addr[i+1:]
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required in CI and %s is unreachable: %v", addr, err)
		}
		t.Skipf("Redis at %s is unreachable (%v); start it with `redis-server --daemonize yes --port 6379 --save \"\" --appendonly no` or set IMAGEGW_TEST_REDIS_URL", addr, err)
	}
	c.Close()
	return u
}

// TestGlobalLimitAcrossGatewaysSharingRedis: three gateways sharing Redis enforce one key's
// per-minute limit together, not three times over.
func TestGlobalLimitAcrossGatewaysSharingRedis(t *testing.T) {
	url := redisURL(t)
	db := "sqlite:" + t.TempDir() + "/shared.db"
	var gws []*gatewaytest.Gateway
	for i := 0; i < 3; i++ {
		gws = append(gws, gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{"IMAGEGW_REDIS_URL": url, "IMAGEGW_DATABASE_URL": db}}))
	}
	secret := gws[0].NewKey(t, &store.Key{Name: "global", RPM: intp(10)})
	var mu sync.Mutex
	ok, limited := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, gws[i%3].URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case 200:
				ok++
			case 429:
				limited++
			}
		}()
	}
	wg.Wait()
	if ok != 10 || limited != 20 {
		t.Fatalf("%d admitted and %d limited across three gateways; want 10 and 20", ok, limited)
	}
}
