package meter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

func post(t testing.TB, base, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func amount(s string) *money.Amount { a := money.MustParse(s); return &a }
func intp(n int) *int               { return &n }

// waitUsage polls the ledger until it holds n events for the key (the recorder writes off the
// hot path, in batches).
func waitUsage(t *testing.T, st store.Store, keyID string, n int) []store.UsageEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := st.ListUsage(context.Background(), store.UsageFilter{KeyID: keyID}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n || time.Now().After(deadline) {
			if len(evs) != n {
				t.Fatalf("ledger holds %d events for %s, want %d", len(evs), keyID, n)
			}
			return evs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSeedExampleCostsExactly prices seed 000's worked example through the front door: 1024×512
// at 4 steps and ¥0.0032 per megapixel-step is ¥0.0064, in the quote, the cost header and the ledger.
func TestSeedExampleCostsExactly(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{"IMAGEGW_CURRENCY": "CNY"}})
	resp, body := post(t, g.URL, "/v1/images/quote", g.Key, `{"model":"sandbox-fixed","prompt":"x","width":1024,"height":512,"n":2}`)
	var q map[string]any
	json.Unmarshal(body, &q)
	if resp.StatusCode != 200 || q["cost"] != "0.0128" || q["per_image"] != "0.0064" || q["currency"] != "CNY" || q["steps"] != float64(4) {
		t.Fatalf("quote: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, g.URL, "/v1/images/generations", g.Key, `{"model":"sandbox-fixed","prompt":"x","width":1024,"height":512}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.0064" || resp.Header.Get("X-Imagegw-Currency") != "CNY" {
		t.Fatalf("generate: %d cost=%q %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), resp.Header.Get("X-Imagegw-Currency"), body)
	}
	k, err := g.App.Store.KeyByHash(context.Background(), hashOf(g))
	if err != nil {
		t.Fatal(err)
	}
	evs := waitUsage(t, g.App.Store, k.ID, 1)
	if e := evs[0]; e.Cost != money.MustParse("0.0064") || e.Currency != "CNY" || e.Steps != 4 || e.Width != 1024 || e.Height != 512 || e.Status != store.StatusOK || e.NDelivered != 1 {
		t.Fatalf("ledger event %+v", e)
	}
}

// TestBudgetIsHeldAndSettled runs a key with a budget to exhaustion: delivered images are billed,
// withheld ones are not, and the request that cannot be paid is refused before any upstream call.
func TestBudgetIsHeldAndSettled(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	secret := g.NewKey(t, &store.Key{Name: "budget", Budget: amount("0.05")})
	// 3 requested, 1 withheld: 2 × $0.01 billed.
	resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x [sandbox:withhold=1]","n":3,"size":"64x64"}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.02" {
		t.Fatalf("%d cost=%q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
	// A failed request costs nothing.
	resp, _ = post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x [sandbox:fail=upstream_unavailable]","size":"64x64"}`)
	if resp.StatusCode != 502 || resp.Header.Get("X-Imagegw-Cost") != "0" {
		t.Fatalf("failure: %d cost=%q", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"))
	}
	// 0.03 left: 4 images (worst case 0.04) cannot be held.
	resp, body = post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","n":4,"size":"64x64"}`)
	if resp.StatusCode != 429 || !strings.Contains(string(body), `"insufficient_quota"`) || resp.Header.Get("x-should-retry") != "false" || !strings.Contains(string(body), "0.03") {
		t.Fatalf("over budget: %d retry=%q %s", resp.StatusCode, resp.Header.Get("x-should-retry"), body)
	}
	// 3 images fit exactly.
	resp, body = post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","n":3,"size":"64x64"}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.03" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, _ = post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
	if resp.StatusCode != 429 {
		t.Fatalf("a spent budget admitted a request: %d", resp.StatusCode)
	}
}

// TestRateLimitHeaders checks a key's per-minute limit: the 429 carries OpenAI-style headers.
func TestRateLimitHeaders(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	secret := g.NewKey(t, &store.Key{Name: "limited", RPM: intp(2), IPM: intp(100)})
	for i := 0; i < 2; i++ {
		resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
		if resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-limit-requests") != "2" || resp.Header.Get("x-ratelimit-remaining-requests") != fmt.Sprint(1-i) {
			t.Fatalf("request %d: %d %v %s", i, resp.StatusCode, resp.Header, body)
		}
	}
	resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
	if resp.StatusCode != 429 || !strings.Contains(string(body), "rate_limit_exceeded") || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("x-ratelimit-remaining-requests") != "0" || resp.Header.Get("x-ratelimit-limit-images") != "100" {
		t.Fatalf("third request: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// More images than the per-minute limit can ever allow: refused without Retry-After.
	small := g.NewKey(t, &store.Key{Name: "small", IPM: intp(3)})
	resp, body = post(t, g.URL, "/v1/images/generations", small, `{"model":"sandbox-image","prompt":"x","n":5,"size":"64x64"}`)
	if resp.StatusCode != 429 || !strings.Contains(string(body), "exceeds the limit") {
		t.Fatalf("unsatisfiable: %d %s", resp.StatusCode, body)
	}
}

// concurrentSpend fires 200 one-image requests at a key whose budget pays for 50, spread over
// the given gateways, and returns how many got images and the sum of their cost headers.
func concurrentSpend(t *testing.T, gws []*gatewaytest.Gateway, secret string) (int, money.Amount) {
	var mu sync.Mutex
	var ok int
	var sum money.Amount
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, gws[i%len(gws)].URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
			c, _ := money.Parse(resp.Header.Get("X-Imagegw-Cost"))
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == 200 {
				ok++
			}
			sum += c
		}()
	}
	wg.Wait()
	return ok, sum
}

// TestNoOverspendSQLite: 200 concurrent requests against a budget that pays for 50.
func TestNoOverspendSQLite(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	secret := g.NewKey(t, &store.Key{Name: "fifty", Budget: amount("0.50")})
	ok, sum := concurrentSpend(t, []*gatewaytest.Gateway{g}, secret)
	if ok != 50 || sum != money.MustParse("0.50") {
		t.Fatalf("%d requests got images for %s; want exactly 50 for 0.50", ok, sum)
	}
}

// TestNoOverspendAcrossGatewaysOnPostgres: three gateways (each its own pool, as separate
// processes would have) share one Postgres and one Redis; together they never admit more than the budget pays
// for. In the burst they may admit fewer: budget slices out at one gateway are not spendable at
// another until they go idle and are given back (billing.EscrowOptions.Idle); after that the
// whole budget is spent, to the micro-unit, and not one request more. The ledger's total, the
// key's spend and the sum of the cost headers clients saw are equal.
func TestNoOverspendAcrossGatewaysOnPostgres(t *testing.T) {
	url, rurl := storetest.PostgresURL(t), redisURL(t)
	var gws []*gatewaytest.Gateway
	for i := 0; i < 3; i++ {
		gws = append(gws, gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{"IMAGEGW_DATABASE_URL": url, "IMAGEGW_REDIS_URL": rurl}}))
	}
	// Limits on Redis too (high enough never to refuse here): the governed setup in full.
	secret := gws[0].NewKey(t, &store.Key{Name: "shared", Budget: amount("0.50"), RPM: intp(100000), Concurrency: intp(1000)})
	ok, sum := concurrentSpend(t, gws, secret)
	if ok > 50 || sum > money.MustParse("0.50") {
		t.Fatalf("%d requests got images for %s; the budget pays for 50 (0.50)", ok, sum)
	}
	t.Logf("the burst admitted %d of 50", ok)
	const body = `{"model":"sandbox-image","prompt":"x","size":"64x64"}`
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ok < 50; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 50 admitted after the slices went idle", ok)
		}
		resp, _ := post(t, gws[i%3].URL, "/v1/images/generations", secret, body)
		c, _ := money.Parse(resp.Header.Get("X-Imagegw-Cost"))
		sum += c
		if resp.StatusCode == 200 {
			ok++
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range 3 {
		if resp, b := post(t, gws[i].URL, "/v1/images/generations", secret, body); resp.StatusCode != 429 || !strings.Contains(string(b), "insufficient_quota") {
			t.Fatalf("a spent budget admitted a request: %d %s", resp.StatusCode, b)
		}
	}
	if sum != money.MustParse("0.50") {
		t.Fatalf("cost headers sum to %s; want 0.50", sum)
	}
	k, err := gws[0].App.Store.KeyByHash(context.Background(), hashOfSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	evs := waitUsage(t, gws[0].App.Store, k.ID, 50)
	var ledger money.Amount
	for _, e := range evs {
		ledger += e.Cost
	}
	bal, err := gws[0].App.Store.Balance(context.Background(), k.ID, store.PeriodTotal, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ledger != sum || bal.Spent != sum {
		t.Fatalf("ledger total %s, spent %s, cost headers %s", ledger, bal.Spent, sum)
	}
}
