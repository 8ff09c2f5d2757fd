package yunyx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
	"github.com/imagegw/imagegw/providers/providertest"
	"github.com/imagegw/imagegw/providers/yunyx/fake"
)

const testMaxResponse = 1 << 20

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	a     *Adapter
	f     *fake.Fake
	srv   *httptest.Server
	clock *clock
	logs  *providertest.Logs // everything the adapter logged
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	f := fake.New(fake.Options{Now: clk.Now})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	logs := providertest.NewLogs()
	a, err := New(providers.Config{Name: "yunyx-test", Logger: logs.Logger(), BaseURL: srv.URL + "/v1", APIKey: fake.DefaultKey,
		MaxResponseBytes: testMaxResponse, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	a.now = clk.Now
	return &fixture{a: a, f: f, srv: srv, clock: clk, logs: logs}
}

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }
func boolp(v bool) *bool     { return &v }

func TestConformance(t *testing.T) {
	fx := newFixture(t)
	type F = providertest.Fault
	providertest.Run(t, providertest.Harness{
		Provider: fx.a,
		Script:   fx.f.Script,
		Request: func() *providers.Request {
			return &providers.Request{Operation: providers.OpGenerate, Model: FLUX1Schnell, Prompt: "an island near sea", Width: 1024, Height: 1024}
		},
		Secret:           fake.DefaultKey,
		MaxResponseBytes: testMaxResponse,
		Logs:             fx.logs,
		// Seed 003's status list, with SiliconFlow-like bodies (assumed) and other plausible shapes.
		Faults: []providertest.FaultCase{
			{Name: "400 bad parameter", Fault: F{Status: 400, Body: `{"code":20015,"message":"image_size: invalid","data":null}`}, Kind: providers.KindInvalidRequest},
			{Name: "400 plain text", Fault: F{Status: 400, Body: "请求参数错误", ContentType: "text/plain; charset=utf-8"}, Kind: providers.KindInvalidRequest},
			{Name: "401 bare string", Fault: F{Status: 401, Body: `"Invalid token"`}, Kind: providers.KindUpstreamAuth},
			{Name: "401 OpenAI-style envelope", Fault: F{Status: 401, Body: `{"error":{"message":"无效的令牌","type":"auth_error"}}`}, Kind: providers.KindUpstreamAuth},
			{Name: "404 model not found", Fault: F{Status: 404, Body: `{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}`}, Kind: providers.KindModelNotFound},
			{Name: "404 plain text", Fault: F{Status: 404, Body: "模型不存在", ContentType: "text/plain"}, Kind: providers.KindModelNotFound},
			{Name: "429 too frequent", Fault: F{Status: 429, Body: `{"message":"请求过于频繁","data":null}`, Header: http.Header{"Retry-After": {"5"}}}, Kind: providers.KindUpstreamRateLimited, RetryAfter: 5 * time.Second},
			{Name: "503 unavailable", Fault: F{Status: 503, Body: `{"code":50508,"message":"System is too busy now. Please try again later.","data":null}`}, Kind: providers.KindUpstreamUnavailable},
			{Name: "504 timeout", Fault: F{Status: 504, Body: `{"message":"服务超时","data":null}`}, Kind: providers.KindUpstreamTimeout},
			{Name: "400 content safety", Fault: F{Status: 400, Body: `{"code":20015,"message":"提示词包含敏感内容","data":null}`}, Kind: providers.KindContentPolicy},
			{Name: "200 without images", Fault: F{Status: 200, Body: `{"images":[],"timings":{"inference":1},"seed":1}`}, Kind: providers.KindUpstreamBadResponse},
		},
	})
}

func TestRegistryAndConfig(t *testing.T) {
	p, err := providers.New(Name, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if a := p.(*Adapter); a.Name() != Name || a.caller.Endpoint != "https://api.yunyx.top/v1/images/generations" {
		t.Fatalf("name %q endpoint %q", a.Name(), a.caller.Endpoint)
	}
	if _, ok := p.(providers.Editor); ok {
		t.Fatal("yunyx has no edit operation")
	}
	for _, cfg := range []providers.Config{{}, {APIKey: "k", BaseURL: "api.yunyx.top/v1"}, {APIKey: "k", Options: map[string]string{"x": "y"}}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestCatalog(t *testing.T) {
	ms := Catalog()
	if len(ms) != 2 || ms[0].ID != FLUX1Schnell || ms[1].ID != SD35Large {
		t.Fatalf("%+v", ms)
	}
	for _, m := range ms {
		if m.MaxN != 1 || m.Params != providers.ParamSeed|providers.ParamPromptEnhancement || m.SeedMax != 9_999_999_999 ||
			len(m.Size.Sizes) != 6 || m.URLTTL != time.Hour || m.Price.IsZero() || m.MaxInputImages != 0 {
			t.Errorf("%s: %+v", m.ID, m)
		}
	}
	fx := newFixture(t)
	ms = fx.a.Models()
	ms[0].Size.Sizes[0] = providers.Size{W: 1, H: 1}
	if fx.a.Models()[0].Size.Sizes[0].W == 1 {
		t.Fatal("Models() returned shared slices")
	}
}

// TestCatalogAgreesWithFake: what the catalog allows, the fake accepts; what it forbids, the
// fake refuses.
func TestCatalogAgreesWithFake(t *testing.T) {
	fx := newFixture(t)
	post := func(body map[string]any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, fx.srv.URL+"/v1/images/generations", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+fake.DefaultKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := fx.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, m := range Catalog() {
		// The minimal request carries image_size: it is required (PROVIDERS.md §4.2).
		with := func(k string, v any) map[string]any {
			b := map[string]any{"model": m.ID, "prompt": "x", "image_size": m.Size.Default.String()}
			if k != "" {
				b[k] = v
			}
			return b
		}
		if _, ok := fake.Spec().Models[m.ID]; !ok || post(with("", nil)) != 200 {
			t.Fatalf("the fake does not serve %s", m.ID)
		}
		if st := post(map[string]any{"model": m.ID, "prompt": "x"}); st != 400 {
			t.Errorf("%s without image_size: %d, want 400 (the field is required)", m.ID, st)
		}
		if st := post(map[string]any{"image_size": "1024x1024", "prompt": "x"}); st != 400 {
			t.Errorf("no model: %d, want 400 (the field is required)", st)
		}
		for _, s := range m.Size.Sizes {
			if st := post(with("image_size", s.String())); st != 200 {
				t.Errorf("%s %s: %d", m.ID, s, st)
			}
		}
		for k, v := range map[string]any{"prompt_enhancement": true, "seed": int64(9_999_999_999)} {
			if st := post(with(k, v)); st != 200 {
				t.Errorf("%s %s: %d", m.ID, k, st)
			}
		}
		for k, v := range map[string]any{"image_size": "1024x768", "seed": int64(10_000_000_000), "batch_size": 2, "n": 2,
			"prompt_enhancement": "yes", "negative_prompt": "x", "num_inference_steps": 4, "guidance_scale": 3.5, "image": "https://x.example/a.png", "cfg": 4} {
			if st := post(with(k, v)); st != 400 {
				t.Errorf("%s %s=%v: %d, want 400", m.ID, k, v, st)
			}
		}
	}
	for _, size := range []string{"1024x512", "512x512", "1280x720"} { // not in seed 003's enum
		if st := post(map[string]any{"model": FLUX1Schnell, "prompt": "x", "image_size": size}); st != 400 {
			t.Errorf("image_size %s: %d, want 400", size, st)
		}
	}
	if st := post(map[string]any{"model": "black-forest-labs/FLUX.1-schnell", "prompt": "x", "image_size": "1024x1024"}); st != 404 {
		t.Errorf("a SiliconFlow model id: %d, want 404", st)
	}
}

func TestGenerateAgainstFake(t *testing.T) {
	fx := newFixture(t)
	res, err := fx.a.Generate(context.Background(), &providers.Request{Model: SD35Large, Prompt: "a boat",
		Width: 576, Height: 1024, Seed: i64(8_888_888_888), PromptEnhancement: boolp(true)})
	if err != nil {
		t.Fatal(err)
	}
	im := res.Images[0]
	if len(res.Images) != 1 || *im.Seed != 8_888_888_888 || im.Width != 576 || !strings.Contains(im.URL, "&Expires=") ||
		!im.Expires.Equal(fx.clock.Now().Add(time.Hour)) {
		t.Fatalf("%+v", res)
	}
	resp, err := fx.srv.Client().Get(im.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width != 576 || cfg.Height != 1024 {
		t.Fatalf("%v %+v", err, cfg)
	}
	fx.clock.Add(time.Hour)
	resp, _ = fx.srv.Client().Get(im.URL)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an expired URL answered %d", resp.StatusCode)
	}
	// Defaults: the default size is sent (the field is required) and reported; the fake picks a
	// random (possibly > int32) seed.
	res, err = fx.a.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: "x", Steps: 4})
	if err != nil || res.Images[0].Width != 1024 || res.Images[0].Seed == nil {
		t.Fatalf("%+v %v", res, err)
	}
	if got := string(fx.f.LastRequest().Body); got != `{"model":"FLUX.1-schnell","prompt":"x","image_size":"1024x1024"}` {
		t.Fatalf("body %s", got)
	}
	_, err = fx.a.Generate(context.Background(), &providers.Request{Model: "FLUX.1-dev", Prompt: "x"})
	wantErr(t, err, providers.KindModelNotFound, "")
	_, err = fx.a.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: fake.UnsafePrompt})
	wantErr(t, err, providers.KindContentPolicy, "")
}

func TestGoldenRequests(t *testing.T) {
	fx := newFixture(t)
	for _, c := range []struct {
		name string
		req  providers.Request
	}{
		{"flux-schnell", providers.Request{Model: FLUX1Schnell, Prompt: "an island near sea, with seagulls & a light house",
			Width: 1024, Height: 1024, PromptEnhancement: boolp(true), Seed: i64(9_999_999_999)}},
		{"sd35-large", providers.Request{Model: SD35Large, Prompt: "a boat", Width: 768, Height: 512, PromptEnhancement: boolp(false)}},
		{"defaults", providers.Request{Model: SD35Large, Prompt: "a boat", N: 1, ResponseFormat: "b64_json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := toWire(fx.a.byID[c.req.Model], &c.req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := encode(w)
			providertest.Golden(t, "request/"+c.name+".json", b)
			req := c.req
			if _, err := fx.a.Generate(context.Background(), &req); err != nil {
				t.Fatalf("the fake refused the translation: %v", err)
			}
			if got := fx.f.LastRequest().Body; !bytes.Equal(got, b) {
				t.Fatalf("wire %s, translation %s", got, b)
			}
		})
	}
}

func TestGoldenResponses(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name string
		req  providers.Request
		body string
	}{
		{"seed-003-example", providers.Request{Model: FLUX1Schnell},
			`{"images":[{"url":"https://example.com/images/xxx.png"}],"timings":{"inference":123},"seed":123}`},
		{"signed-url-big-seed", providers.Request{Model: SD35Large, Width: 1024, Height: 576},
			`{"images":[{"url":"https://cdn.example/o/a.png?Expires=1\u0026Signature=s%2F"}],"timings":{"inference":2.5},"seed":9999999999}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := sfwire.DecodeResponse("yunyx", http.Header{"Content-Type": {"application/json"}}, []byte(c.body), "")
			if err != nil {
				t.Fatal(err)
			}
			res, err := fromWire("yunyx", byID(c.req.Model), &c.req, r, now)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(res); err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, "response/"+c.name+".json", buf.Bytes())
		})
	}
}

func TestRefusals(t *testing.T) {
	fx := newFixture(t)
	img := providers.Image{Data: []byte("x"), ContentType: "image/png"}
	for _, c := range []struct {
		name  string
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"no prompt", providers.Request{Model: FLUX1Schnell}, providers.KindInvalidRequest, "prompt"},
		{"n", providers.Request{Model: FLUX1Schnell, Prompt: "x", N: 2}, providers.KindUnsupported, "n"},
		{"negative prompt", providers.Request{Model: FLUX1Schnell, Prompt: "x", NegativePrompt: "y"}, providers.KindUnsupported, "negative_prompt"},
		{"steps on schnell", providers.Request{Model: FLUX1Schnell, Prompt: "x", Steps: 8}, providers.KindUnsupported, "steps"},
		{"steps on sd35", providers.Request{Model: SD35Large, Prompt: "x", Steps: 4}, providers.KindUnsupported, "steps"},
		{"guidance", providers.Request{Model: SD35Large, Prompt: "x", GuidanceScale: f64(7)}, providers.KindUnsupported, "guidance_scale"},
		{"image", providers.Request{Model: SD35Large, Prompt: "x", Images: []providers.Image{img}}, providers.KindUnsupported, "image"},
		{"mask", providers.Request{Model: SD35Large, Prompt: "x", Mask: &img}, providers.KindUnsupported, "mask"},
		{"size off the enum", providers.Request{Model: SD35Large, Prompt: "x", Width: 1024, Height: 768}, providers.KindInvalidRequest, "size"},
		{"size off the enum, configured model", providers.Request{Model: "FLUX.1-dev", Prompt: "x", Width: 2048, Height: 2048}, providers.KindInvalidRequest, "size"},
		{"aspect ratio", providers.Request{Model: SD35Large, Prompt: "x", AspectRatio: "16:9"}, providers.KindUnsupported, "aspect_ratio"},
		{"seed", providers.Request{Model: SD35Large, Prompt: "x", Seed: i64(-1)}, providers.KindInvalidRequest, "seed"},
		{"extra", providers.Request{Model: SD35Large, Prompt: "x", Extra: map[string]json.RawMessage{"cfg": json.RawMessage("4")}}, providers.KindUnsupported, "cfg"},
		{"quality", providers.Request{Model: SD35Large, Prompt: "x", Quality: "hd"}, providers.KindUnsupported, "quality"},
		{"user", providers.Request{Model: SD35Large, Prompt: "x", User: "u"}, providers.KindUnsupported, "user"},
		{"edit", providers.Request{Operation: providers.OpEdit, Model: SD35Large, Prompt: "x", Images: []providers.Image{img}}, providers.KindUnsupported, "model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := fx.f.Script.Requests()
			req := c.req
			_, err := providers.Do(context.Background(), fx.a, &req)
			wantErr(t, err, c.kind, c.param)
			if fx.f.Script.Requests() != before {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
}

func TestParseError(t *testing.T) {
	for _, c := range []struct {
		status int
		ct     string
		body   string
		kind   providers.Kind
	}{
		{400, "application/json", `{"code":20015,"message":"seed: bad","data":null}`, providers.KindInvalidRequest},
		{401, "application/json", `"Invalid token"`, providers.KindUpstreamAuth},
		{404, "application/json", `{"code":20012,"message":"Model does not exist.","data":null}`, providers.KindModelNotFound},
		{429, "application/json", `{"message":"slow down","data":null}`, providers.KindUpstreamRateLimited},
		{503, "", ``, providers.KindUpstreamUnavailable},
		{504, "", ``, providers.KindUpstreamTimeout},
	} {
		e := parseError("yunyx", c.status, http.Header{"Content-Type": {c.ct}}, []byte(c.body), "k")
		if e.Kind != c.kind || e.Provider != "yunyx" || e.Status != c.status {
			t.Errorf("%d %s: %v, want %s", c.status, c.body, e, c.kind)
		}
	}
}

func wantErr(t *testing.T, err error, kind providers.Kind, param string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Kind != kind || pe.Param != param || pe.Provider == "" || pe.Message == "" {
		t.Fatalf("error %v: kind %s param %q, want %s %q", err, pe.Kind, pe.Param, kind, param)
	}
}
