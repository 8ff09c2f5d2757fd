package meter_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// countingBody is a request body of n bytes (a JSON object with a long field) that counts how
// much of it the gateway read.
type countingBody struct {
	n, off int64
	read   *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	const prefix = `{"model":"sandbox-image","prompt":"`
	if b.off >= b.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && b.off < b.n {
		if b.off < int64(len(prefix)) {
			p[k] = prefix[b.off]
		} else {
			p[k] = 'a'
		}
		k++
		b.off++
	}
	b.read.Add(int64(k))
	return k, nil
}

// sendBig posts a body of n bytes and reports the status and how many bytes the client got to
// send before the answer.
func sendBig(t *testing.T, base, key string, n int64) (int, http.Header, int64) {
	t.Helper()
	var read atomic.Int64
	req, _ := http.NewRequest("POST", base+"/v1/images/generations", &countingBody{n: n, read: &read})
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	// The client's send buffer is fixed small: left to autotune (up to net.ipv4.tcp_wmem's 4 MB
	// max) it absorbs megabytes of a body nobody reads while a busy machine delays the answer.
	// With it, what the client can push unread is the buffer (256 KB, which Linux doubles) plus
	// the server's initial receive window (128 KB): 622,592 bytes measured, far below the 4 MB
	// that tells a body read from one refused.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(256 << 10)
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		// The server may close the connection after answering without reading the body.
		return 0, nil, read.Load()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, read.Load()
}

// A key at its limits is turned away before its request's body is read: with its one slot in
// flight, or its requests per minute used up, a 64 MB body costs the gateway almost nothing.
func TestKeyAtItsLimitsIsRefusedBeforeTheBodyIsRead(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	secret := g.NewKey(t, &store.Key{Name: "tight", RPM: intp(2), Concurrency: intp(1)})

	// One slow request takes the key's only slot.
	done := make(chan int, 1)
	go func() {
		resp, _ := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"slow [sandbox:latency=1s]","size":"64x64"}`)
		done <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	const big = 64 << 20
	status, hdr, sent := sendBig(t, g.URL, secret, big)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("a request while the key's slot is taken: %d %v, want 429 with Retry-After", status, hdr)
	}
	if sent > 4<<20 {
		t.Errorf("the client sent %d bytes of a refused request; the gateway should not read the body", sent)
	}
	if s := <-done; s != http.StatusOK {
		t.Fatalf("the slow request: %d", s)
	}

	// The second request of the minute passes; the third is refused by the limiter, and from
	// then on the key's requests are refused before their bodies are read.
	if resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`); resp.StatusCode != 200 {
		t.Fatalf("second request: %d %s", resp.StatusCode, body)
	}
	if resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`); resp.StatusCode != 429 || !strings.Contains(string(body), "requests per minute") {
		t.Fatalf("third request: %d %s", resp.StatusCode, body)
	}
	status, hdr, sent = sendBig(t, g.URL, secret, big)
	if status != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("a request past the key's requests per minute: %d %v, want 429 with Retry-After", status, hdr)
	}
	if sent > 4<<20 {
		t.Errorf("the client sent %d bytes of a refused request; the gateway should not read the body", sent)
	}

	// Another key is not affected.
	if resp, body := post(t, g.URL, "/v1/images/generations", g.Key, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`); resp.StatusCode != 200 {
		t.Fatalf("another key: %d %s", resp.StatusCode, body)
	}
	k, err := g.App.Store.KeyByHash(context.Background(), hashOfSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	waitUsage(t, g.App.Store, k.ID, 2) // refusals are not ledger events
}

// A request an adapter refuses before calling its upstream (its own validation) is not a ledger
// event; one the upstream refused is (a failed event, nothing charged).
func TestAdapterRefusalsAreNotLedgerEvents(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	secret := g.NewKey(t, &store.Key{Name: "refusals"})
	resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x [sandbox:nosuch=1]","size":"64x64"}`)
	if resp.StatusCode != 400 {
		t.Fatalf("adapter refusal: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x [sandbox:fail=invalid_request]","size":"64x64"}`)
	if resp.StatusCode != 400 {
		t.Fatalf("upstream refusal: %d %s", resp.StatusCode, body)
	}
	k, err := g.App.Store.KeyByHash(context.Background(), hashOfSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // give a wrongly journaled event time to land
	evs := waitUsage(t, g.App.Store, k.ID, 1)
	if evs[0].Status != store.StatusFailed || evs[0].ErrorKind != "invalid_request" || evs[0].Cost != 0 {
		t.Fatalf("the ledger holds %+v, want the upstream's refusal only", evs[0])
	}
}

// A key with a budget cannot use a model without a price (its budget could not bound it) unless
// the operator allows it; a key without a budget can.
func TestUnpricedModelNeedsPermissionWithABudget(t *testing.T) {
	for _, allow := range []bool{false, true} {
		g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
			// Never reached: the refusal comes before any upstream call.
			c.Providers = append(c.Providers, config.ChannelConfig{Name: "compat", Type: "openai-compatible", BaseURL: "http://127.0.0.1:9/v1", APIKey: "k"})
			c.Billing.UnpricedWithBudget = allow
		}})
		budget := money.MustParse("5")
		budgeted := g.NewKey(t, &store.Key{Name: "budgeted", Budget: &budget})
		resp, body := post(t, g.URL, "/v1/images/generations", budgeted, `{"model":"compat/flux-dev","prompt":"x"}`)
		refused := resp.StatusCode == 403 && strings.Contains(string(body), "billing.unpriced_with_budget")
		if refused == allow {
			t.Errorf("allow=%v: budgeted key got %d %s", allow, resp.StatusCode, body)
		}
		resp, body = post(t, g.URL, "/v1/images/generations", g.Key, `{"model":"compat/flux-dev","prompt":"x"}`)
		if resp.StatusCode == 403 {
			t.Errorf("a key without a budget was refused: %s", body)
		}
	}
}

// Price = cost × markup: billing.markup 1.5 on sandbox-image (cost USD 0.01 an image) charges
// the key 0.015 and records the provider's 0.01; a model's own markup (2) overrides it; a price
// set in config (0.02, for an alias) is the price and is not marked up.
func TestMarkupMakesThePriceFromTheCost(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Billing.Markup = "1.5"
		c.Models = append(c.Models,
			config.ModelConfig{Name: "doubled", Target: "sandbox/sandbox-image", Markup: "2"},
			config.ModelConfig{Name: "fixed", Target: "sandbox/sandbox-image", Price: &config.Price{Unit: "image", Currency: "USD", Amount: "0.02"}})
	}})
	secret := g.NewKey(t, &store.Key{Name: "markup"})
	price, cost := charges(t, g, secret, []priced{{"sandbox-image", "0.015"}, {"doubled", "0.02"}, {"fixed", "0.02"}})
	// Keys paid 0.015 + 0.02 + 0.02; the provider charged 0.01 for each of the three images.
	if price.String() != "0.055" || cost.String() != "0.03" {
		t.Fatalf("price %s (want 0.055), cost %s (want 0.03)", price, cost)
	}
}

// A key's own markup replaces the model's and the deployment's: it pays the provider's cost ×
// its markup. A price set in config stays the price. Its budget is held and spent at that price,
// and the quote endpoint shows it.
func TestKeyMarkupPricesFromTheCost(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Billing.Markup = "1.5"
		c.Models = append(c.Models,
			config.ModelConfig{Name: "doubled", Target: "sandbox/sandbox-image", Markup: "2"},
			config.ModelConfig{Name: "fixed", Target: "sandbox/sandbox-image", Price: &config.Price{Unit: "image", Currency: "USD", Amount: "0.02"}})
	}})
	markup := money.MustParse("1.1")
	secret := g.NewKey(t, &store.Key{Name: "reseller", Markup: &markup})
	// The sandbox's image costs 0.01: × 1.1 = 0.011, whatever the model's (2) or the
	// deployment's (1.5) markup; "fixed" is priced in config at 0.02.
	price, cost := charges(t, g, secret, []priced{{"sandbox-image", "0.011"}, {"doubled", "0.011"}, {"fixed", "0.02"}})
	resp, body := post(t, g.URL, "/v1/images/quote", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64","n":3}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"cost":"0.033"`) {
		t.Fatalf("quote: %d %s, want cost 0.033 (3 × 0.011)", resp.StatusCode, body)
	}
	// /v1/models shows the key the price it pays.
	req, _ := http.NewRequest("GET", g.URL+"/v1/models/doubled", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	mr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(mb), `"amount":"0.011"`) || !strings.Contains(string(mb), "× markup 1.1") {
		t.Fatalf("/v1/models/doubled for the key: %s, want amount 0.011 at × markup 1.1", mb)
	}
	if price.String() != "0.042" || cost.String() != "0.03" {
		t.Fatalf("price %s (want 0.011 + 0.011 + 0.02 = 0.042), cost %s (want 0.03)", price, cost)
	}

	// A budget of 0.022 at ×1.1 pays for exactly two 0.01 images, even asked concurrently.
	budget := money.MustParse("0.022")
	secret = g.NewKey(t, &store.Key{Name: "budgeted reseller", Markup: &markup, Budget: &budget})
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, g.URL, "/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 429:
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 2 || refused.Load() != 4 {
		t.Fatalf("served %d, refused %d; want 2 and 4 (budget 0.022 at 0.011 an image)", ok.Load(), refused.Load())
	}
}

// priced is a model and the cost header one 64x64 image of it must carry.
type priced struct{ model, price string }

// charges generates one 64x64 image of each model with the key, checks each cost header, and
// returns the ledger's sums for the key: what it paid and what the provider charged.
func charges(t *testing.T, g *gatewaytest.Gateway, secret string, want []priced) (price, cost money.Amount) {
	t.Helper()
	for _, w := range want {
		resp, body := post(t, g.URL, "/v1/images/generations", secret, `{"model":"`+w.model+`","prompt":"x","size":"64x64"}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != w.price {
			t.Fatalf("%s: %d cost %q, want %s: %s", w.model, resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), w.price, body)
		}
	}
	k, err := g.App.Store.KeyByHash(context.Background(), hashOfSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range waitUsage(t, g.App.Store, k.ID, len(want)) {
		price, cost = price+e.Cost, cost+e.UpstreamCost
	}
	return price, cost
}
