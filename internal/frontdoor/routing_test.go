package frontdoor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/providertest"
	sffake "github.com/imagegw/imagegw/providers/siliconflow/fake"
)

// counter is a test upstream for routing: one image a call, after its channel's latency option;
// it counts its calls per replica (option "replica") and channel.
type counter struct {
	name    string
	latency time.Duration
	calls   *atomic.Int64
}

var (
	countersMu sync.Mutex
	counters   = map[string]*atomic.Int64{} // "<replica>/<channel>" → calls
)

// calls returns the call counter of a channel on a replica.
func calls(replica, channel string) *atomic.Int64 {
	countersMu.Lock()
	defer countersMu.Unlock()
	k := replica + "/" + channel
	if counters[k] == nil {
		counters[k] = &atomic.Int64{}
	}
	return counters[k]
}

func init() {
	providers.Register("routing-test", func(c providers.Config) (providers.Provider, error) {
		p := &counter{name: c.Name, calls: calls(c.Options["replica"], c.Name)}
		if v := c.Options["latency"]; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, err
			}
			p.latency = d
		}
		return p, nil
	})
}

func (c *counter) Name() string { return c.name }
func (c *counter) Models() []providers.Model {
	return []providers.Model{{ID: "rt/model", Operations: []providers.Operation{providers.OpGenerate}, MaxN: 1,
		Size:  providers.SizeRule{Sizes: providers.MustSizes("64x64")},
		Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.01"), Source: "test"}}}
}
func (c *counter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	c.calls.Add(1)
	if c.latency > 0 {
		select {
		case <-time.After(c.latency):
		case <-ctx.Done():
			return nil, providers.TransportError(ctx, c.name, ctx.Err())
		}
	}
	return &providers.Result{Images: []providers.Output{{Data: flakyPNG, ContentType: "image/png", Width: 64, Height: 64}}}, nil
}

// channel is a routing-test channel of a replica.
func channel(replica, name string, weight int, opts ...string) config.ChannelConfig {
	o := map[string]string{"replica": replica}
	for i := 0; i+1 < len(opts); i += 2 {
		o[opts[i]] = opts[i+1]
	}
	return config.ChannelConfig{Name: name, Type: "routing-test", APIKey: "k", Options: o, Weight: &weight}
}

// post sends a generation and returns its status and body; it is safe from any goroutine.
func post(g *gatewaytest.Gateway, body string) (int, []byte, http.Header, error) {
	req, _ := http.NewRequest("POST", g.URL+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// TestWeightsSplitTraffic: channels of weights 3 and 1 in one tier serve 75 % ± 5 % and 25 % of
// 2,000 requests.
func TestWeightsSplitTraffic(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Sandbox = false
		c.Providers = append(c.Providers, channel("w", "w-a", 3), channel("w", "w-b", 1))
	}})
	a, b := calls("w", "w-a"), calls("w", "w-b")
	const total, workers = 2000, 8
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= total {
				status, body, _, err := post(g, `{"model":"rt/model","prompt":"x","response_format":"url"}`)
				if err != nil || status != 200 {
					errs <- fmt.Errorf("status %d %s %v", status, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if a.Load()+b.Load() != total {
		t.Fatalf("%d + %d upstream calls for %d requests", a.Load(), b.Load(), total)
	}
	if share := float64(a.Load()) / total; share < 0.70 || share > 0.80 {
		t.Fatalf("w-a served %.3f of the requests (a=%d b=%d), want 0.75 ± 0.05", share, a.Load(), b.Load())
	}
}

// sfChannel starts a SiliconFlow fake and returns a channel of it (base URL, key) and its fault
// script.
func sfChannel(t *testing.T, name string, priority int) (config.ChannelConfig, *providertest.Script, string) {
	t.Helper()
	f := sffake.New(sffake.Options{})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	one := 1
	return config.ChannelConfig{Name: name, Type: "siliconflow", APIKey: config.Secret(sffake.DefaultKey), BaseURL: srv.URL + "/v1",
		Priority: priority, Weight: &one}, f.Script, strings.TrimPrefix(srv.URL, "http://")
}

const sfRequest = `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","size":"1024x1024","response_format":"url"}`

// channelState reads a channel's state for a model from the admin API.
func channelState(t *testing.T, g *gatewaytest.Gateway, name, model string) router.ModelView {
	t.Helper()
	resp, body := do(t, g, rawReq{method: "GET", path: "/admin/v1/channels", key: gatewaytest.AdminToken})
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/v1/channels: %d %s", resp.StatusCode, body)
	}
	var list struct{ Data []router.ChannelView }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, ch := range list.Data {
		for _, m := range ch.Models {
			if ch.Name == name && m.Model == model {
				return m
			}
		}
	}
	t.Fatalf("no channel %s model %s in %s", name, model, body)
	return router.ModelView{}
}

// TestBreakerMovesTrafficAndRecovers: a channel answering 500 fails over with no error the
// client sees; after routing.failures of them its breaker opens and it gets no more calls; once
// it is healthy again and the cooldown has passed, a probe closes the breaker and it serves
// again.
func TestBreakerMovesTrafficAndRecovers(t *testing.T) {
	bad, badScript, badHost := sfChannel(t, "sf-bad", 0)
	good, goodScript, goodHost := sfChannel(t, "sf-good", 1)
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Sandbox = false
		c.Providers = append(c.Providers, bad, good)
		c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, badHost, goodHost)
		c.Routing.Failures = 3
		c.Routing.Cooldown = config.Duration(3 * time.Second)
	}})
	const model = "black-forest-labs/FLUX.1-schnell"
	badScript.Push(providertest.Fault{Status: 500, Body: `{"code":50500,"message":"internal error"}`, Times: 1000})
	for i := range 10 {
		status, body, _, err := post(g, sfRequest)
		if err != nil || status != 200 {
			t.Fatalf("request %d: %d %s %v", i, status, body, err)
		}
	}
	if n := badScript.Requests(); n != 3 {
		t.Fatalf("the failing channel got %d calls, want 3 (then its breaker opens)", n)
	}
	if n := goodScript.Requests(); n != 10 {
		t.Fatalf("the healthy channel got %d calls, want 10", n)
	}
	st := channelState(t, g, "sf-bad", model)
	if st.State != router.Open || st.OpenUntil == nil || st.LastError == nil || *st.LastError != "upstream_unavailable" {
		t.Fatalf("sf-bad: %+v", st)
	}

	badScript.Clear() // healthy again
	time.Sleep(time.Until(st.OpenUntil.Add(50 * time.Millisecond)))
	status, body, _, err := post(g, sfRequest)
	if err != nil || status != 200 || badScript.Requests() != 4 || goodScript.Requests() != 10 {
		t.Fatalf("probe: %d %s %v; calls bad=%d good=%d", status, body, err, badScript.Requests(), goodScript.Requests())
	}
	if st := channelState(t, g, "sf-bad", model); st.State != router.Closed {
		t.Fatalf("sf-bad after a good probe: %+v", st)
	}
	for range 3 {
		if status, body, _, err := post(g, sfRequest); err != nil || status != 200 {
			t.Fatalf("%d %s %v", status, body, err)
		}
	}
	if badScript.Requests() != 7 || goodScript.Requests() != 10 {
		t.Fatalf("after recovery: bad=%d good=%d calls, want 7 and 10", badScript.Requests(), goodScript.Requests())
	}
}

// TestAllChannelsOpen: when the breaker of every channel of a model is open, the request is
// answered at once with 503 upstream_unavailable and Retry-After, without any upstream call and
// without a ledger row (the two failed calls have theirs).
func TestAllChannelsOpen(t *testing.T) {
	only, script, host := sfChannel(t, "sf-only", 0)
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Sandbox = false
		c.Providers = append(c.Providers, only)
		c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, host)
		c.Routing.Failures = 2
		c.Routing.Cooldown = config.Duration(time.Minute)
	}})
	script.Push(providertest.Fault{Status: 503, Body: `{"code":50505,"message":"busy"}`, Times: 1000})
	for range 2 {
		if status, body, _, _ := post(g, sfRequest); status != 502 {
			t.Fatalf("%d %s", status, body)
		}
	}
	status, body, h, _ := post(g, sfRequest)
	if status != 503 || !strings.Contains(string(body), `"upstream_unavailable"`) || !strings.Contains(string(body), "circuit breaker") ||
		h.Get("Retry-After") == "" || script.Requests() != 2 {
		t.Fatalf("all open: %d %v %s (calls %d)", status, h, body, script.Requests())
	}
	if err := g.App.Recorder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs, err := g.App.Store.ListUsage(t.Context(), store.UsageFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.RequestID == h.Get("X-Request-Id") || ev.Status != store.StatusFailed {
			t.Errorf("ledger row %+v; want only the two failed calls", ev)
		}
	}
	if len(evs) != 2 {
		t.Errorf("%d ledger rows, want the two failed calls", len(evs))
	}
}

// TestResetAfterSendIsIndeterminate: a connection reset after the request was sent is not
// retried on the next channel (the first upstream may be making the image): exactly one upstream
// call, the client gets the error and pays nothing, and the ledger says indeterminate. A refused
// connection (nothing sent) fails over.
func TestResetAfterSendIsIndeterminate(t *testing.T) {
	first, firstScript, firstHost := sfChannel(t, "sf-first", 0)
	second, secondScript, secondHost := sfChannel(t, "sf-second", 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	one := 1
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Sandbox = false
		c.Providers = append(c.Providers, first, second,
			config.ChannelConfig{Name: "sf-refused", Type: "siliconflow", APIKey: "k", BaseURL: "http://" + refused + "/v1", Weight: &one})
		c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, firstHost, secondHost, refused)
		c.Models = append(c.Models,
			config.ModelConfig{Name: "flux-reset", Target: "sf-first/black-forest-labs/FLUX.1-schnell", Fallbacks: []string{"sf-second/black-forest-labs/FLUX.1-schnell"}},
			config.ModelConfig{Name: "flux-refused", Target: "sf-refused/black-forest-labs/FLUX.1-schnell", Fallbacks: []string{"sf-second/black-forest-labs/FLUX.1-schnell"}})
	}})
	// The fake reads the whole request, then the connection is reset.
	firstScript.Push(providertest.Fault{Delay: 20 * time.Millisecond, Reset: true})
	status, body, h, _ := post(g, strings.Replace(sfRequest, "black-forest-labs/FLUX.1-schnell", "flux-reset", 1))
	if status != 502 || !strings.Contains(string(body), "upstream_unavailable") || h.Get("X-Imagegw-Cost") != "0" {
		t.Fatalf("reset: %d %v %s", status, h, body)
	}
	if firstScript.Requests() != 1 || secondScript.Requests() != 0 {
		t.Fatalf("upstream calls: first %d, second %d; want exactly one", firstScript.Requests(), secondScript.Requests())
	}
	ev := ledgerRow(t, g, h.Get("X-Request-Id"))
	if ev.Status != store.StatusIndeterminate || ev.Cost != 0 || ev.Channel != "sf-first" && ev.Channel != "" {
		t.Fatalf("ledger: %+v", ev)
	}

	status, body, h, _ = post(g, strings.Replace(sfRequest, "black-forest-labs/FLUX.1-schnell", "flux-refused", 1))
	if status != 200 || secondScript.Requests() != 1 {
		t.Fatalf("refused: %d %s (second %d calls)", status, body, secondScript.Requests())
	}
	if ev := ledgerRow(t, g, h.Get("X-Request-Id")); ev.Status != store.StatusOK || ev.Channel != "sf-second" {
		t.Fatalf("ledger after failover: %+v", ev)
	}
}

// ledgerRow waits for the request's usage event to reach the store.
func ledgerRow(t *testing.T, g *gatewaytest.Gateway, requestID string) store.UsageEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := g.App.Store.ListUsage(t.Context(), store.UsageFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.RequestID == requestID {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ledger row for %s", requestID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDisabledChannelFollowedByOtherReplica: a channel disabled through the admin API of one
// replica gets no traffic from another replica sharing the store within 5 s.
func TestDisabledChannelFollowedByOtherReplica(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
	start := func(replica string) *gatewaytest.Gateway {
		return gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{"IMAGEGW_DATABASE_URL": db}, Configure: func(c *config.Config) {
			c.Sandbox = false
			c.Providers = append(c.Providers, channel(replica, "d-a", 1), channel(replica, "d-b", 1))
		}})
	}
	g1, g2 := start("r1"), start("r2")
	const req = `{"model":"rt/model","prompt":"x","response_format":"url"}`
	for range 20 {
		if status, body, _, err := post(g2, req); err != nil || status != 200 {
			t.Fatalf("%d %s %v", status, body, err)
		}
	}
	if calls("r2", "d-a").Load() == 0 {
		t.Fatal("d-a got no traffic before it was disabled")
	}

	resp, body := do(t, g1, rawReq{method: "PATCH", path: "/admin/v1/channels/d-a", ctype: "application/json",
		key: gatewaytest.AdminToken, body: []byte(`{"enabled":false}`)})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"enabled": false`) || !strings.Contains(string(body), `"state": "disabled"`) {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	switched := time.Now()
	for channelState(t, g2, "d-a", "rt/model").State != router.Disabled {
		if time.Since(switched) > 5*time.Second {
			t.Fatal("the second replica did not follow the switch within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := calls("r2", "d-a").Load()
	for range 30 {
		if status, body, _, err := post(g2, req); err != nil || status != 200 {
			t.Fatalf("%d %s %v", status, body, err)
		}
	}
	if n := calls("r2", "d-a").Load(); n != before {
		t.Fatalf("the disabled channel got %d calls on the second replica", n-before)
	}

	// Every channel disabled: 503 upstream_unavailable.
	resp, body = do(t, g1, rawReq{method: "PATCH", path: "/admin/v1/channels/d-b", ctype: "application/json",
		key: gatewaytest.AdminToken, body: []byte(`{"enabled":false}`)})
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH d-b: %d %s", resp.StatusCode, body)
	}
	if status, body, _, _ := post(g1, req); status != 503 || !strings.Contains(string(body), "disabled") {
		t.Fatalf("all disabled: %d %s", status, body)
	}
}

// TestStrategies: cheapest sends every request to the channel charging least; fastest, once
// each channel was measured, to the channel with the lowest latency.
func TestStrategies(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Sandbox = false
		c.Providers = append(c.Providers, channel("s", "s-dear", 5), channel("s", "s-cheap", 1),
			channel("s", "s-slow", 5, "latency", "150ms"), channel("s", "s-quick", 1, "latency", "5ms"))
		c.Models = append(c.Models,
			config.ModelConfig{Target: "s-dear/rt/model", Price: &config.Price{Unit: "image", Currency: "USD", Amount: "0.05"}},
			config.ModelConfig{Target: "s-cheap/rt/model", Price: &config.Price{Unit: "image", Currency: "USD", Amount: "0.02"}},
			config.ModelConfig{Name: "rt-cheap", Target: "s-dear/rt/model", Fallbacks: []string{"s-cheap/rt/model"}, Strategy: "cheapest"},
			config.ModelConfig{Name: "rt-fast", Target: "s-slow/rt/model", Fallbacks: []string{"s-quick/rt/model"}, Strategy: "fastest"})
	}})
	for range 10 {
		status, body, h, _ := post(g, `{"model":"rt-cheap","prompt":"x","response_format":"url"}`)
		if status != 200 || h.Get("X-Imagegw-Cost") != "0.02" {
			t.Fatalf("cheapest: %d cost %q %s", status, h.Get("X-Imagegw-Cost"), body)
		}
	}
	if calls("s", "s-dear").Load() != 0 || calls("s", "s-cheap").Load() != 10 {
		t.Fatalf("cheapest: dear %d cheap %d", calls("s", "s-dear").Load(), calls("s", "s-cheap").Load())
	}
	// The first two calls measure both channels (a channel not measured yet goes first).
	for range 2 {
		if status, body, _, _ := post(g, `{"model":"rt-fast","prompt":"x","response_format":"url"}`); status != 200 {
			t.Fatalf("fastest: %d %s", status, body)
		}
	}
	if calls("s", "s-slow").Load() != 1 || calls("s", "s-quick").Load() != 1 {
		t.Fatalf("fastest warm-up: slow %d quick %d", calls("s", "s-slow").Load(), calls("s", "s-quick").Load())
	}
	for range 10 {
		if status, body, _, _ := post(g, `{"model":"rt-fast","prompt":"x","response_format":"url"}`); status != 200 {
			t.Fatalf("fastest: %d %s", status, body)
		}
	}
	if calls("s", "s-slow").Load() != 1 || calls("s", "s-quick").Load() != 11 {
		t.Fatalf("fastest: slow %d quick %d", calls("s", "s-slow").Load(), calls("s", "s-quick").Load())
	}
}
