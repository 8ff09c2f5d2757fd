package frontdoor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// flaky is a test upstream: two images per call, and the calls whose number (1-based, in arrival
// order) is in fail answer with a provider fault.
type flaky struct {
	name  string
	calls atomic.Int64
	fail  map[int64]providers.Kind
	seeds chan int64
	last  atomic.Pointer[providers.Request] // the last request it got
}

var flakies = map[string]*flaky{}

var flakyPNG = func() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 64, 64)))
	return b.Bytes()
}()

func init() {
	providers.Register("flaky-test", func(c providers.Config) (providers.Provider, error) {
		f := &flaky{name: c.Name, fail: map[int64]providers.Kind{}, seeds: make(chan int64, 64)}
		flakies[c.Name] = f
		return f, nil
	})
}

func (f *flaky) Name() string { return f.name }
func (f *flaky) Models() []providers.Model {
	return []providers.Model{{ID: "flaky/model-1", Operations: []providers.Operation{providers.OpGenerate}, MaxN: 2,
		Params: providers.ParamSeed, SeedMax: 1 << 40, Size: providers.SizeRule{Sizes: providers.MustSizes("64x64")},
		Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.01")}}}
}
func (f *flaky) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	n := f.calls.Add(1)
	f.last.Store(req)
	if req.Seed != nil {
		f.seeds <- *req.Seed
	}
	if k, ok := f.fail[n]; ok {
		return nil, &providers.Error{Kind: k, Provider: f.name, Message: "scripted failure"}
	}
	res := &providers.Result{}
	for i := 0; i < req.N; i++ {
		res.Images = append(res.Images, providers.Output{Data: flakyPNG, ContentType: "image/png", Width: 64, Height: 64})
	}
	return res, nil
}

func flakyGateway(t *testing.T, channels ...string) *gatewaytest.Gateway {
	return gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		for _, ch := range channels {
			c.Providers = append(c.Providers, config.ChannelConfig{Name: ch, Type: "flaky-test", APIKey: "k"})
		}
		if len(channels) > 1 {
			c.Models = append(c.Models, config.ModelConfig{Name: "flaky-failover", Target: channels[0] + "/flaky/model-1",
				Fallbacks: []string{channels[1] + "/flaky/model-1"}})
		}
	}})
}

// TestFanOutPartialFailure: n=6 on a model taking 2 per call is three upstream calls; when one
// fails, the four images of the others are delivered, the response says so, and only they are billed.
func TestFanOutPartialFailure(t *testing.T) {
	g := flakyGateway(t, "flaky-a")
	f := flakies["flaky-a"]
	f.fail[2] = providers.KindUpstreamUnavailable
	resp, body := do(t, g, jsonReq(`{"model":"flaky/model-1","prompt":"x","n":6,"seed":100,"response_format":"b64_json"}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Partial") != "requested=6; delivered=4" || resp.Header.Get("X-Imagegw-Cost") != "0.04" {
		t.Fatalf("%d partial=%q cost=%q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Partial"), resp.Header.Get("X-Imagegw-Cost"), body)
	}
	var out struct{ Data []json.RawMessage }
	json.Unmarshal(body, &out)
	if len(out.Data) != 4 {
		t.Fatalf("got %d images", len(out.Data))
	}
	// Each call got its own seed: the client's plus the images before it.
	close(f.seeds)
	got := map[int64]bool{}
	for s := range f.seeds {
		got[s] = true
	}
	if !got[100] || !got[102] || !got[104] || len(got) != 3 {
		t.Fatalf("seeds per call = %v, want 100, 102, 104", got)
	}

	// Every call failing: the first failure is the answer, nothing is billed.
	g2 := flakyGateway(t, "flaky-b")
	for i := int64(1); i <= 3; i++ {
		flakies["flaky-b"].fail[i] = providers.KindUpstreamAuth
	}
	resp, body = do(t, g2, jsonReq(`{"model":"flaky/model-1","prompt":"x","n":6}`))
	if resp.StatusCode != 502 || resp.Header.Get("x-should-retry") != "false" || resp.Header.Get("X-Imagegw-Cost") != "0" ||
		!strings.Contains(string(body), "upstream_auth_failed") || strings.Contains(string(body), "scripted") && !strings.Contains(string(body), "Upstream provider") {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
}

// TestFailoverToTheNextChannel: a provider fault on the first channel is retried on the next.
func TestFailoverToTheNextChannel(t *testing.T) {
	g := flakyGateway(t, "flaky-c", "flaky-d")
	flakies["flaky-c"].fail[1] = providers.KindUpstreamRateLimited
	resp, body := do(t, g, jsonReq(`{"model":"flaky-failover","prompt":"x","n":2}`))
	if resp.StatusCode != 200 || flakies["flaky-d"].calls.Load() != 1 {
		t.Fatalf("%d d-calls=%d %s", resp.StatusCode, flakies["flaky-d"].calls.Load(), body)
	}
	// The first channel's upstream does not have the model: the next one is tried.
	flakies["flaky-c"].fail[2] = providers.KindModelNotFound
	resp, body = do(t, g, jsonReq(`{"model":"flaky-failover","prompt":"x","n":2}`))
	if resp.StatusCode != 200 || flakies["flaky-d"].calls.Load() != 2 {
		t.Fatalf("model not found upstream: %d d-calls=%d %s", resp.StatusCode, flakies["flaky-d"].calls.Load(), body)
	}
	// A caller fault is not retried elsewhere.
	flakies["flaky-c"].fail[3] = providers.KindContentPolicy
	resp, body = do(t, g, jsonReq(`{"model":"flaky-failover","prompt":"x"}`))
	if resp.StatusCode != 400 || flakies["flaky-d"].calls.Load() != 2 || !strings.Contains(string(body), "content_policy_violation") {
		t.Fatalf("%d d-calls=%d %s", resp.StatusCode, flakies["flaky-d"].calls.Load(), body)
	}
}

// TestFailoverBillsTheServingChannelsPrice: an alias whose primary is priced 0.002 an image and
// whose fallback 0.01 bills each image at the price of the channel that made it, and holds the
// worst case of them against a budget.
func TestFailoverBillsTheServingChannelsPrice(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		for _, ch := range []string{"flaky-e", "flaky-f"} {
			c.Providers = append(c.Providers, config.ChannelConfig{Name: ch, Type: "flaky-test", APIKey: "k"})
		}
		c.Models = append(c.Models,
			config.ModelConfig{Target: "flaky-e/flaky/model-1", Price: &config.Price{Unit: "image", Currency: "USD", Amount: "0.002"}},
			config.ModelConfig{Name: "priced-failover", Target: "flaky-e/flaky/model-1", Fallbacks: []string{"flaky-f/flaky/model-1"}})
	}})
	e, f := flakies["flaky-e"], flakies["flaky-f"]

	// Every price says where it comes from: config, or assumed (no document gives it).
	for name, want := range map[string]string{"flaky-e/flaky/model-1": "config", "flaky-f/flaky/model-1": "assumed"} {
		resp, body := do(t, g, rawReq{method: "GET", path: "/v1/models/" + name})
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"source":"`+want+`"`) {
			t.Errorf("%s: %d %s, want pricing.source %q", name, resp.StatusCode, body, want)
		}
	}

	// Served by the primary: 2 × 0.002.
	resp, body := do(t, g, jsonReq(`{"model":"priced-failover","prompt":"x","n":2}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.004" {
		t.Fatalf("primary: %d cost %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
	// Failed over: 2 × 0.01, the fallback's price, not the primary's.
	e.fail[e.calls.Load()+1] = providers.KindUpstreamUnavailable
	resp, body = do(t, g, jsonReq(`{"model":"priced-failover","prompt":"x","n":2}`))
	if resp.StatusCode != 200 || f.calls.Load() != 1 || resp.Header.Get("X-Imagegw-Cost") != "0.02" {
		t.Fatalf("failover: %d f-calls=%d cost %q %s", resp.StatusCode, f.calls.Load(), resp.Header.Get("X-Imagegw-Cost"), body)
	}
	// Fanned out over both: three calls of 2, one fails over: 4 × 0.002 + 2 × 0.01.
	e.fail[e.calls.Load()+2] = providers.KindUpstreamUnavailable
	resp, body = do(t, g, jsonReq(`{"model":"priced-failover","prompt":"x","n":6}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.028" {
		t.Fatalf("mixed: %d cost %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}

	// A budget of 0.015 covers 2 images at the primary's price but not at the fallback's: the
	// hold is the worst case, so the request is refused before any call.
	budget := money.MustParse("0.015")
	secret := g.NewKey(t, &store.Key{Name: "small", Budget: &budget})
	before := e.calls.Load() + f.calls.Load()
	resp, body = do(t, g, rawReq{method: "POST", path: "/v1/images/generations", ctype: "application/json", key: secret,
		body: []byte(`{"model":"priced-failover","prompt":"x","n":2}`)})
	if resp.StatusCode != 429 || !strings.Contains(string(body), "budget") || e.calls.Load()+f.calls.Load() != before {
		t.Fatalf("over the worst case: %d %s", resp.StatusCode, body)
	}
	// One image (0.01 at worst) fits.
	resp, body = do(t, g, rawReq{method: "POST", path: "/v1/images/generations", ctype: "application/json", key: secret,
		body: []byte(`{"model":"priced-failover","prompt":"x","n":1}`)})
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.002" {
		t.Fatalf("within the worst case: %d cost %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
}

// SDK defaults that ask for nothing are accepted by any model: background and moderation
// "auto"; a user id the provider does not take is reported, not refused; a knob the model lacks
// is refused unless the client opts in to map_nearest, which drops it and says so.
func TestAutoDefaultsAndUser(t *testing.T) {
	g := flakyGateway(t, "flaky-g")
	resp, body := do(t, g, jsonReq(`{"model":"flaky/model-1","prompt":"x","background":"auto","moderation":"auto","quality":"auto","size":"auto","user":"end-user-7"}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Adjusted") != "user=set->not forwarded" {
		t.Fatalf("%d adjusted=%q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Adjusted"), body)
	}
	resp, body = do(t, g, jsonReq(`{"model":"flaky/model-1","prompt":"x","background":"transparent"}`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "map_nearest") {
		t.Fatalf("a knob the model lacks: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, g, jsonReq(`{"model":"flaky/model-1","prompt":"x","output_format":"webp","map_nearest":true}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Adjusted") != "output_format=webp->model default" {
		t.Fatalf("map_nearest: %d adjusted=%q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Adjusted"), body)
	}
}

// A model defined in config gets the size and steps billing prices sent to its adapter (which
// does not know the definition's defaults): 512x512 at 30 steps, USD 0.001 per megapixel-step,
// is 0.25 MP × 30 × 0.001 = 0.0075.
func TestDefinedModelIsSentWhatIsBilled(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Providers = append(c.Providers, config.ChannelConfig{Name: "flaky-h", Type: "flaky-test", APIKey: "k"})
		c.Models = append(c.Models, config.ModelConfig{Target: "flaky-h/custom-model",
			Define: &config.ModelDef{DefaultSize: "512x512", MinSide: 256, MaxSide: 1024, DefaultSteps: 30, MaxSteps: 50,
				Params: []string{"steps"}},
			Price: &config.Price{Unit: "megapixel_step", Currency: "USD", Amount: "0.001"}})
	}})
	resp, body := do(t, g, jsonReq(`{"model":"flaky-h/custom-model","prompt":"x"}`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.0075" {
		t.Fatalf("%d cost %q: %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
	req := flakies["flaky-h"].last.Load()
	if req.Width != 512 || req.Height != 512 || req.Steps != 30 {
		t.Fatalf("the adapter got %dx%d at %d steps, want what was billed: 512x512 at 30", req.Width, req.Height, req.Steps)
	}
}
