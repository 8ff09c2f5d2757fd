package siliconflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
	"github.com/imagegw/imagegw/providers/internal/sfwire/sffake"
	"github.com/imagegw/imagegw/providers/providertest"
	"github.com/imagegw/imagegw/providers/siliconflow/fake"
)

const testMaxResponse = 1 << 20

// clock is a settable clock shared by the fake and the adapter.
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
	a, err := New(providers.Config{Name: "sf-test", Logger: logs.Logger(), BaseURL: srv.URL + "/v1", APIKey: fake.DefaultKey,
		MaxResponseBytes: testMaxResponse, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	a.now = clk.Now
	return &fixture{a: a, f: f, srv: srv, clock: clk, logs: logs}
}

func i64(v int64) *int64           { return &v }
func f64(v float64) *float64       { return &v }
func boolp(v bool) *bool           { return &v }
func intp(v int) *int              { return &v }
func raw(v string) json.RawMessage { return json.RawMessage(v) }

func TestConformance(t *testing.T) {
	fx := newFixture(t)
	providertest.Run(t, providertest.Harness{
		Provider: fx.a,
		Script:   fx.f.Script,
		Request: func() *providers.Request {
			return &providers.Request{Operation: providers.OpGenerate, Model: FLUX1Schnell, Prompt: "a red fox", N: 1, Width: 1024, Height: 1024}
		},
		Secret:           fake.DefaultKey,
		MaxResponseBytes: testMaxResponse,
		Logs:             fx.logs,
		Faults:           errorCatalogue(),
	})
}

// errorCatalogue is SiliconFlow's own error answers (PROVIDERS.md §1.4) and the kinds they must become.
func errorCatalogue() []providertest.FaultCase {
	type F = providertest.Fault
	return []providertest.FaultCase{
		{Name: "401 bare JSON string", Fault: F{Status: 401, Body: `"Invalid token"`}, Kind: providers.KindUpstreamAuth},
		{Name: "401 plain text", Fault: F{Status: 401, Body: "Api key is invalid", ContentType: "text/plain; charset=utf-8"}, Kind: providers.KindUpstreamAuth},
		{Name: "403 real-name verification", Fault: F{Status: 403, Body: `{"message":"Sorry, this model requires real-name verification.","data":null}`}, Kind: providers.KindUpstreamAuth},
		{Name: "403 insufficient balance", Fault: F{Status: 403, Body: `{"code":30001,"message":"Sorry, your account balance is insufficient","data":null}`}, Kind: providers.KindUpstreamAuth},
		{Name: "400 20012 model does not exist", Fault: F{Status: 400, Body: `{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}`}, Kind: providers.KindModelNotFound},
		{Name: "400 20015 validation", Fault: F{Status: 400, Body: `{"code":20015,"message":"Field required","data":null}`}, Kind: providers.KindInvalidRequest},
		{Name: "400 content safety", Fault: F{Status: 400, Body: `{"code":20015,"message":"The prompt contains sensitive content and was rejected by the content safety check.","data":null}`}, Kind: providers.KindContentPolicy},
		{Name: "429 IPM limit", Fault: F{Status: 429, Body: `{"message":"Request was rejected due to rate limiting. Details: IPM limit reached.","data":null}`, Header: http.Header{"Retry-After": {"3"}}}, Kind: providers.KindUpstreamRateLimited, RetryAfter: 3 * time.Second},
		{Name: "503 50508 busy", Fault: F{Status: 503, Body: `{"code":50508,"message":"System is too busy now. Please try again later.","data":null}`}, Kind: providers.KindUpstreamUnavailable},
		{Name: "504 empty", Fault: F{Status: 504, ContentType: "text/plain"}, Kind: providers.KindUpstreamTimeout},
		{Name: "500 unknown", Fault: F{Status: 500, Body: `{"code":50000,"message":"Unknown error","data":null}`}, Kind: providers.KindUpstreamUnavailable},
		{Name: "404 html page", Fault: F{Status: 404, HTML: true}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 without images", Fault: F{Status: 200, Body: `{"images":[],"timings":{"inference":0.1},"seed":1}`}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 OpenAI shape", Fault: F{Status: 200, Body: `{"created":1,"data":[{"url":"https://x.example/y.png"}]}`}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 html", Fault: F{Status: 200, ContentType: "text/html", Body: "<html><body>maintenance</body></html>"}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 non-http url", Fault: F{Status: 200, Body: `{"images":[{"url":"file:///etc/passwd"}],"seed":1}`}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 error envelope", Fault: F{Status: 200, Body: `{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}`}, Kind: providers.KindModelNotFound},
	}
}

func TestRegistryAndConfig(t *testing.T) {
	p, err := providers.New(Name, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	a := p.(*Adapter)
	if a.Name() != Name || a.caller.Endpoint != DefaultBaseURL+"/images/generations" {
		t.Fatalf("name %q endpoint %q", a.Name(), a.caller.Endpoint)
	}
	if _, ok := p.(providers.Editor); !ok {
		t.Fatal("the adapter must implement providers.Editor")
	}
	p, err = providers.New(Name, providers.Config{Name: "sf-backup", APIKey: "k", BaseURL: "https://api.siliconflow.com/v1/"})
	if err != nil {
		t.Fatal(err)
	}
	if a := p.(*Adapter); a.Name() != "sf-backup" || a.caller.Endpoint != "https://api.siliconflow.com/v1/images/generations" {
		t.Fatalf("name %q endpoint %q", a.Name(), a.caller.Endpoint)
	}
	for _, cfg := range []providers.Config{
		{},                                   // no key
		{APIKey: "k", BaseURL: "ftp://x/v1"}, // bad scheme
		{APIKey: "k", BaseURL: "https://user:pw@x/v1"},
		{APIKey: "k", Options: map[string]string{"region": "cn"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		} else if cfg.APIKey != "" && strings.Contains(err.Error(), "pw") {
			t.Errorf("error leaks the URL password: %v", err)
		}
	}
}

func TestModelsAreCopies(t *testing.T) {
	fx := newFixture(t)
	ms := fx.a.Models()
	q := slices.IndexFunc(ms, func(m providers.Model) bool { return m.ID == QwenImage }) // a model with a size list
	ms[q].Size.Sizes[0] = providers.Size{W: 1, H: 1}
	ms[0].Operations[0] = providers.OpUpscale
	if again := fx.a.Models(); again[q].Size.Sizes[0].W == 1 || again[0].Operations[0] != providers.OpGenerate {
		t.Fatal("Models() returned shared slices")
	}
}

func TestCatalogShape(t *testing.T) {
	want := []string{FLUX1Schnell, ProFLUX1Schnell, FLUX1Dev, FLUX1Pro, SD35Large, SD35LargeTurbo, SD3Medium, SDXL, SD21,
		JanusPro7B, Kolors, QwenImage, QwenImageEdit, QwenImageEdit25}
	ms := Catalog()
	if len(ms) != len(want) {
		t.Fatalf("catalog has %d models, want %d", len(ms), len(want))
	}
	for i, m := range ms {
		if m.ID != want[i] {
			t.Errorf("model %d = %s, want %s", i, m.ID, want[i])
		}
		if m.Price.IsZero() || m.Price.Currency != "CNY" || m.Price.Amount <= 0 {
			t.Errorf("%s: price %+v", m.ID, m.Price)
		}
		if m.MaxN != 1 && m.MaxN != 4 {
			t.Errorf("%s: MaxN %d", m.ID, m.MaxN)
		}
		if m.SeedMax != 9_999_999_999 || m.URLTTL != time.Hour {
			t.Errorf("%s: seed max %d, url ttl %v", m.ID, m.SeedMax, m.URLTTL)
		}
		if m.Price.Unit == providers.PerMegapixelStep && m.FixedSteps == 0 && m.DefaultSteps == 0 {
			t.Errorf("%s: a per-step price needs FixedSteps or DefaultSteps", m.ID)
		}
	}
	for _, id := range []string{FLUX1Schnell, ProFLUX1Schnell, SD35LargeTurbo} {
		m := byID(t, id)
		if m.FixedSteps != 4 || m.Params.Has(providers.ParamSteps) {
			t.Errorf("%s must be fixed at 4 steps", id)
		}
	}
	if p := byID(t, SD35LargeTurbo).Price; p.Unit != providers.PerMegapixelStep || p.Amount.String() != "0.0032" {
		t.Errorf("SD 3.5 large turbo price %+v, want ¥0.0032 per megapixel-step (seed 000)", p)
	}
	if p := byID(t, FLUX1Pro).Price; p.Unit != providers.PerImage || p.Amount.String() != "0.37" {
		t.Errorf("FLUX.1-pro price %+v, want ¥0.37 per image (seed 000)", p)
	}
	if m := byID(t, QwenImageEdit25); m.MaxInputImages != 3 || !m.Supports(providers.OpEdit) || m.Supports(providers.OpGenerate) {
		t.Errorf("Qwen-Image-Edit-2509: %+v", m)
	}
	if m := byID(t, JanusPro7B); m.Size.Fixed != (providers.Size{W: 384, H: 384}) {
		t.Errorf("Janus-Pro-7B size rule %+v", m.Size)
	}
}

func byID(t *testing.T, id string) providers.Model {
	t.Helper()
	for _, m := range Catalog() {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("no model %s", id)
	return providers.Model{}
}

// TestCatalogAgreesWithFake checks the catalog (the front door's validation) against the fake
// (written separately from PROVIDERS.md): what the catalog allows, the fake accepts; what it
// forbids, the fake refuses.
func TestCatalogAgreesWithFake(t *testing.T) {
	fx := newFixture(t)
	spec := fake.Spec()
	post := func(body map[string]any) (int, string) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, fx.srv.URL+"/v1/images/generations", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+fake.DefaultKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := fx.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(rb)
	}
	img := (providers.Image{Data: []byte("\x89PNG\r\n\x1a\n"), ContentType: "image/png"}).DataURI()
	for _, m := range Catalog() {
		t.Run(m.ID, func(t *testing.T) {
			if _, ok := spec.Models[m.ID]; !ok {
				t.Fatalf("the fake does not know %s", m.ID)
			}
			// The minimal request: image_size is required wherever the model takes one.
			base := func() map[string]any {
				b := map[string]any{"model": m.ID, "prompt": "a cat"}
				if m.Supports(providers.OpEdit) {
					b["image"] = img
				}
				switch {
				case !m.Size.Fixed.IsZero():
					b["image_size"] = m.Size.Fixed.String()
				case !takesNoSize(m.Size):
					b["image_size"] = m.Size.Default.String()
				}
				return b
			}
			with := func(kv ...any) map[string]any {
				b := base()
				for i := 0; i < len(kv); i += 2 {
					b[kv[i].(string)] = kv[i+1]
				}
				return b
			}
			expect := func(ok bool, what string, body map[string]any) {
				t.Helper()
				st, rb := post(body)
				if ok && st != 200 {
					t.Errorf("%s: the catalog allows it but the fake answered %d %s", what, st, rb)
				}
				if !ok && st == 200 {
					t.Errorf("%s: the catalog forbids it but the fake accepted it", what)
				}
			}
			expect(true, "minimal request", base())
			if _, sized := base()["image_size"]; sized {
				b := base()
				delete(b, "image_size")
				expect(false, "no image_size (the field is required)", b)
			}
			for _, s := range m.Size.Sizes {
				expect(true, "size "+s.String(), with("image_size", s.String()))
			}
			switch {
			case !m.Size.Fixed.IsZero():
			case takesNoSize(m.Size):
				expect(false, "a size on an edit model", with("image_size", "1024x1024"))
			default:
				// Probes around every rule's bounds: lists, seed 000's custom sizes (512–1024 by 64)
				// and the "others" rule (256–2048 by 8, 2 359 296 px).
				for _, p := range []string{"1024x512", "512x1024", "640x896", "448x1024", "1088x512", "1000x600",
					"1536x1536", "1200x800", "1600x1600", "1001x1001", "248x1024", "256x256", "2048x1152", "1024x1024"} {
					sz, _ := providers.ParseSize(p)
					expect(sfwire.SizeAllowed(m.Size, sz.W, sz.H), "size "+p, with("image_size", p))
				}
			}
			expect(m.MaxN >= 4, "batch_size 4", with("batch_size", 4))
			expect(false, "batch_size 5", with("batch_size", 5))
			expect(m.Params.Has(providers.ParamSeed), "seed max", with("seed", int64(9_999_999_999)))
			expect(false, "seed above max", with("seed", int64(10_000_000_000)))
			switch {
			case m.FixedSteps > 0:
				expect(true, "the fixed steps", with("num_inference_steps", m.FixedSteps))
				expect(false, "other steps", with("num_inference_steps", m.FixedSteps+1))
			case m.Params.Has(providers.ParamSteps):
				expect(true, "min steps", with("num_inference_steps", m.MinSteps))
				expect(true, "max steps", with("num_inference_steps", m.MaxSteps))
				expect(false, "steps above max", with("num_inference_steps", m.MaxSteps+1))
			default:
				expect(false, "steps", with("num_inference_steps", 20))
			}
			if m.Params.Has(providers.ParamGuidance) {
				expect(true, "max guidance", with("guidance_scale", m.MaxGuidance))
				expect(false, "guidance above max", with("guidance_scale", m.MaxGuidance+0.5))
			} else {
				expect(false, "guidance", with("guidance_scale", 5.0))
			}
			expect(m.Params.Has(providers.ParamNegativePrompt), "negative_prompt", with("negative_prompt", "blur"))
			expect(m.Params.Has(providers.ParamPromptEnhancement), "prompt_enhancement", with("prompt_enhancement", true))
			expect(hasExtra(&m, ExtraCFG), "cfg", with("cfg", 4.0))
			if hasExtra(&m, ExtraCFG) {
				expect(false, "cfg out of range", with("cfg", 20.5))
			}
			takesImage := m.Params.Has(providers.ParamReferenceImage) || m.Supports(providers.OpEdit)
			if !m.Supports(providers.OpEdit) {
				expect(takesImage, "one image", with("image", img))
			}
			expect(takesImage && m.MaxInputImages >= 3, "three images", with("image", img, "image2", img, "image3", img))
			if m.Supports(providers.OpEdit) {
				b := base()
				delete(b, "image")
				expect(false, "an edit without an image", b)
			}
		})
	}
}

func TestGenerateAgainstFake(t *testing.T) {
	fx := newFixture(t)
	res, err := fx.a.Generate(context.Background(), &providers.Request{Model: SD35Large, Prompt: "two owls", N: 2,
		Width: 768, Height: 1024, Seed: i64(9_999_999_999), Steps: 30, GuidanceScale: f64(7.5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.UpstreamRequestID == "" || !res.Created.IsZero() {
		t.Fatalf("result %+v", res)
	}
	for _, im := range res.Images {
		if im.Seed == nil || *im.Seed != 9_999_999_999 {
			t.Fatalf("seed %v, want 9999999999", im.Seed)
		}
		if im.Width != 768 || im.Height != 1024 {
			t.Fatalf("size %dx%d", im.Width, im.Height)
		}
		if !strings.Contains(im.URL, "&Expires=") || strings.Contains(im.URL, `\u0026`) {
			t.Fatalf("url %q: want a literal & after decoding", im.URL)
		}
		if want := fx.clock.Now().Add(time.Hour); !im.Expires.Equal(want) {
			t.Fatalf("expires %v, want %v", im.Expires, want)
		}
	}
	// The image URL serves a real PNG of the requested size until it expires.
	b := download(t, fx, res.Images[0].URL, http.StatusOK)
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != 768 || cfg.Height != 1024 {
		t.Fatalf("png %v %+v", err, cfg)
	}
	if again := download(t, fx, res.Images[0].URL, http.StatusOK); !bytes.Equal(again, b) {
		t.Fatal("the same URL served different bytes")
	}
	if other := download(t, fx, res.Images[1].URL, http.StatusOK); bytes.Equal(other, b) {
		t.Fatal("two images of a batch are identical")
	}
	download(t, fx, strings.Replace(res.Images[0].URL, "-0.png", "-1.png", 1), http.StatusForbidden) // signature no longer matches
	fx.clock.Add(59 * time.Minute)
	download(t, fx, res.Images[0].URL, http.StatusOK)
	fx.clock.Add(time.Minute)
	download(t, fx, res.Images[0].URL, http.StatusForbidden)
}

func download(t *testing.T, fx *fixture, u string, want int) []byte {
	t.Helper()
	resp, err := fx.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", u, resp.StatusCode, b, want)
	}
	if want == http.StatusOK && resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	return b
}

func TestFakeAnswerEscapesAmpersands(t *testing.T) {
	fx := newFixture(t)
	body := `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024"}`
	req, _ := http.NewRequest(http.MethodPost, fx.srv.URL+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fake.DefaultKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := fx.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`\u0026Expires=`)) || bytes.Contains(b, []byte("&")) {
		t.Fatalf("%d %s: want & escaped as \\u0026", resp.StatusCode, b)
	}
	if resp.Header.Get("x-siliconcloud-trace-id") == "" {
		t.Fatal("no trace id header")
	}
}

func TestFakeStrictness(t *testing.T) {
	fx := newFixture(t)
	send := func(key, ct, body string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, fx.srv.URL+"/v1/images/generations", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("Content-Type", ct)
		resp, err := fx.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	ok := `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024"}`
	if st, _, b := send("wrong", "application/json", ok); st != 401 || b != `"Invalid token"` {
		t.Errorf("wrong key: %d %s", st, b)
	}
	if st, _, b := send("", "application/json", ok); st != 401 || b != `"Invalid token"` {
		t.Errorf("no key: %d %s", st, b)
	}
	cases := []struct{ ct, body, code string }{
		{"multipart/form-data; boundary=x", ok, "20015"},
		{"application/json", `{"model":"nope/model","prompt":"x"}`, "20012"},
		{"application/json", `{"prompt":"x"}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell"}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x"}`, "20015"}, // image_size is required
		{"application/json", `{"model":"deepseek-ai/Janus-Pro-7B","prompt":"x"}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024","n":2}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024","seed":1.5}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024","seed":"1"}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024","num_inference_steps":8}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024","negative_prompt":"y"}`, "20015"},
		{"application/json", `{"model":"Qwen/Qwen-Image-Edit","prompt":"x","image":"data:image/png;base64,!!"}`, "20015"},
		{"application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x ` + fake.UnsafePrompt + `","image_size":"1024x1024"}`, "20015"},
	}
	for _, c := range cases {
		st, ct, b := send(fake.DefaultKey, c.ct, c.body)
		if st != 400 || !strings.HasPrefix(ct, "application/json") || !strings.Contains(b, `"code":`+c.code) || !strings.HasSuffix(b, `"data":null}`) {
			t.Errorf("%s: %d %s %s, want 400 code %s", c.body, st, ct, b, c.code)
		}
	}
	if st, _, _ := send(fake.DefaultKey, "application/json", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024","num_inference_steps":4}`); st != 200 {
		t.Errorf("steps 4 on a fixed-step model: %d", st)
	}
}

func TestEditAgainstFake(t *testing.T) {
	fx := newFixture(t)
	src := providers.Image{Data: sffake.RenderPNG(640, 480, 7, 0), ContentType: "image/png", Width: 640, Height: 480}
	res, err := fx.a.Edit(context.Background(), &providers.Request{Operation: providers.OpEdit, Model: QwenImageEdit25,
		Prompt: "make it night", Images: []providers.Image{src, src, src}, Seed: i64(5)})
	if err != nil {
		t.Fatal(err)
	}
	b := download(t, fx, res.Images[0].URL, http.StatusOK)
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width != 640 || cfg.Height != 480 {
		t.Fatalf("edit output %v %+v, want the input's 640x480", err, cfg)
	}
	if res.Images[0].Width != 0 {
		t.Fatalf("the adapter cannot know an edit's output size, got %d", res.Images[0].Width)
	}
	var sent map[string]any
	if err := json.Unmarshal(fx.f.LastRequest().Body, &sent); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"image", "image2", "image3"} {
		if s, _ := sent[k].(string); !strings.HasPrefix(s, "data:image/png;base64,") {
			t.Fatalf("%s = %.40q", k, s)
		}
	}
	// Edit through providers.Do, and a mask refused before any call.
	n := fx.f.Script.Requests()
	_, err = providers.Do(context.Background(), fx.a, &providers.Request{Operation: providers.OpEdit, Model: QwenImageEdit,
		Prompt: "x", Images: []providers.Image{src}, Mask: &src})
	wantErr(t, err, providers.KindUnsupported, "mask")
	if fx.f.Script.Requests() != n {
		t.Fatal("a refused request reached the upstream")
	}
}

func TestAuthHeaderAndWrongKey(t *testing.T) {
	fx := newFixture(t)
	if _, err := fx.a.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: "x"}); err != nil {
		t.Fatal(err)
	}
	last := fx.f.LastRequest()
	if last.Method != http.MethodPost || last.Path != "/v1/images/generations" ||
		last.Header.Get("Authorization") != "Bearer "+fake.DefaultKey || last.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("recorded %+v", last)
	}
	bad, err := New(providers.Config{BaseURL: fx.srv.URL + "/v1", APIKey: "sk-wrong-secret-123", HTTP: fx.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: "x"})
	wantErr(t, err, providers.KindUpstreamAuth, "")
	if strings.Contains(err.Error(), "sk-wrong-secret-123") {
		t.Fatalf("the key leaked: %v", err)
	}
}

func TestUpstreamErrorsThroughFake(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	_, err := fx.a.Generate(ctx, &providers.Request{Model: "vendor/unknown-model", Prompt: "x"})
	wantErr(t, err, providers.KindModelNotFound, "")
	_, err = fx.a.Generate(ctx, &providers.Request{Model: FLUX1Schnell, Prompt: "x " + fake.UnsafePrompt})
	wantErr(t, err, providers.KindContentPolicy, "")
	// A model the adapter does not know is passed through unchecked; the upstream's 20015
	// names the field, which becomes Param.
	delete(fx.a.byID, FLUX1Schnell)
	_, err = fx.a.Generate(ctx, &providers.Request{Model: FLUX1Schnell, Prompt: "x", NegativePrompt: "blur", Width: 1024, Height: 1024})
	wantErr(t, err, providers.KindInvalidRequest, "negative_prompt")
	_, err = fx.a.Generate(ctx, &providers.Request{Model: FLUX1Schnell, Prompt: "x", Width: 1000, Height: 1000})
	wantErr(t, err, providers.KindInvalidRequest, "size")
	// Nothing is filled in for it, and image_size is required.
	_, err = fx.a.Generate(ctx, &providers.Request{Model: FLUX1Schnell, Prompt: "x"})
	wantErr(t, err, providers.KindInvalidRequest, "size")
}

func TestLatencyAndTimeout(t *testing.T) {
	clk := &clock{t: time.Now()}
	f := fake.New(fake.Options{Now: clk.Now, Latency: 2 * time.Second})
	srv := httptest.NewServer(f)
	defer srv.Close()
	a, err := New(providers.Config{BaseURL: srv.URL + "/v1", APIKey: fake.DefaultKey, Timeout: 100 * time.Millisecond, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: "x"})
	wantErr(t, err, providers.KindUpstreamTimeout, "")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the channel timeout was not applied: %v", d)
	}
}

func wantErr(t *testing.T, err error, kind providers.Kind, param string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Kind != kind || pe.Param != param {
		t.Fatalf("error %v: kind %s param %q, want %s %q", err, pe.Kind, pe.Param, kind, param)
	}
	if pe.Provider == "" || pe.Message == "" {
		t.Fatalf("error %v lacks a provider or a message", err)
	}
}
