package ark

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/ark/fake"
	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
	"github.com/imagegw/imagegw/providers/providertest"
)

const testKey = "sk-test-ark-0123456789"

// env is an adapter wired to a fake.
type env struct {
	fake  *fake.Fake
	srv   *httptest.Server
	a     *Adapter
	clock *arktest.Clock
	logs  *providertest.Logs // everything the adapter logged
}

func newEnv(t *testing.T, key string) *env {
	t.Helper()
	c := arktest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fk := fake.New(fake.Options{APIKey: testKey, Now: c.Now})
	srv := httptest.NewServer(fk)
	t.Cleanup(srv.Close)
	logs := providertest.NewLogs()
	a, err := New(providers.Config{Name: "ark-test", Logger: logs.Logger(), BaseURL: srv.URL + "/api/v3", APIKey: key,
		MaxResponseBytes: 1 << 20, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fk, srv: srv, a: a, clock: c, logs: logs}
}

func i64(v int64) *int64              { return &v }
func f64(v float64) *float64          { return &v }
func kindOf(err error) providers.Kind { return providers.KindOf(err) }

func TestConformance(t *testing.T) {
	e := newEnv(t, testKey)
	envelope := func(code, typ, param string) string {
		b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": "upstream says no. Request id: 0217abc", "param": param, "type": typ}})
		return string(b)
	}
	providertest.Run(t, providertest.Harness{
		Provider: e.a,
		Script:   e.fake.Script,
		Request: func() *providers.Request {
			return &providers.Request{Operation: providers.OpGenerate, Model: ModelSeedream30T2I, Prompt: "a red fox in snow",
				N: 1, Width: 1024, Height: 768, Seed: i64(42), ResponseFormat: "url"}
		},
		Secret:           testKey,
		MaxResponseBytes: 1 << 20,
		Logs:             e.logs,
		Faults: []providertest.FaultCase{
			{Name: "401 AuthenticationError", Fault: providertest.Fault{Status: 401, Body: envelope("AuthenticationError", "Unauthorized", "")}, Kind: providers.KindUpstreamAuth},
			{Name: "403 AccountOverdueError", Fault: providertest.Fault{Status: 403, Body: envelope("AccountOverdueError", "Forbidden", "")}, Kind: providers.KindUpstreamAuth},
			{Name: "403 AccessDenied", Fault: providertest.Fault{Status: 403, Body: envelope("AccessDenied", "Forbidden", "")}, Kind: providers.KindUpstreamAuth},
			{Name: "400 InvalidParameter with empty param and type", Fault: providertest.Fault{Status: 400, Body: envelope("InvalidParameter", "", "")}, Kind: providers.KindInvalidRequest},
			{Name: "400 MissingParameter", Fault: providertest.Fault{Status: 400, Body: envelope("MissingParameter", "BadRequest", "prompt")}, Kind: providers.KindInvalidRequest},
			{Name: "400 InputTextSensitiveContentDetected", Fault: providertest.Fault{Status: 400, Body: envelope("InputTextSensitiveContentDetected", "BadRequest", "")}, Kind: providers.KindContentPolicy},
			{Name: "400 InputImageSensitiveContentDetected", Fault: providertest.Fault{Status: 400, Body: envelope("InputImageSensitiveContentDetected", "BadRequest", "")}, Kind: providers.KindContentPolicy},
			{Name: "400 OutputImageSensitiveContentDetected", Fault: providertest.Fault{Status: 400, Body: envelope("OutputImageSensitiveContentDetected", "BadRequest", "")}, Kind: providers.KindContentPolicy},
			{Name: "400 SensitiveContentDetected.SevereViolation", Fault: providertest.Fault{Status: 400, Body: envelope("SensitiveContentDetected.SevereViolation", "BadRequest", "")}, Kind: providers.KindContentPolicy},
			{Name: "400 InvalidEndpoint.ClosedEndpoint", Fault: providertest.Fault{Status: 400, Body: envelope("InvalidEndpoint.ClosedEndpoint", "BadRequest", "")}, Kind: providers.KindModelNotFound},
			{Name: "404 InvalidEndpointOrModel.NotFound", Fault: providertest.Fault{Status: 404, Body: envelope("InvalidEndpointOrModel.NotFound", "NotFound", "")}, Kind: providers.KindModelNotFound},
			{Name: "404 ModelNotOpen", Fault: providertest.Fault{Status: 404, Body: envelope("ModelNotOpen", "NotFound", "")}, Kind: providers.KindModelNotFound},
			{Name: "429 RateLimitExceeded.EndpointRPMExceeded", Fault: providertest.Fault{Status: 429, Body: envelope("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests", ""), Header: http.Header{"Retry-After": {"3"}}}, Kind: providers.KindUpstreamRateLimited, RetryAfter: 3 * time.Second},
			{Name: "429 QuotaExceeded", Fault: providertest.Fault{Status: 429, Body: envelope("QuotaExceeded", "TooManyRequests", "")}, Kind: providers.KindUpstreamRateLimited},
			{Name: "429 ServerOverloaded", Fault: providertest.Fault{Status: 429, Body: envelope("ServerOverloaded", "TooManyRequests", "")}, Kind: providers.KindUpstreamUnavailable},
			{Name: "500 InternalServiceError", Fault: providertest.Fault{Status: 500, Body: envelope("InternalServiceError", "InternalServerError", "")}, Kind: providers.KindUpstreamUnavailable},
			{Name: "503 ServiceUnavailable", Fault: providertest.Fault{Status: 503, Body: envelope("ServiceUnavailable", "ServiceUnavailable", "")}, Kind: providers.KindUpstreamUnavailable},
			{Name: "401 plain text", Fault: providertest.Fault{Status: 401, Body: "Unauthorized", ContentType: "text/plain"}, Kind: providers.KindUpstreamAuth},
			{Name: "400 bare JSON string", Fault: providertest.Fault{Status: 400, Body: `"bad request"`}, Kind: providers.KindInvalidRequest},
			{Name: "200 with every image failed", Fault: providertest.Fault{Status: 200, Body: `{"model":"m","created":1757323224,"data":[{"error":{"code":"OutputImageSensitiveContentDetected","message":"x"}}],"usage":{"generated_images":0}}`}, Kind: providers.KindContentPolicy},
			{Name: "200 with no data", Fault: providertest.Fault{Status: 200, Body: `{"model":"m","created":1757323224,"data":[]}`}, Kind: providers.KindUpstreamBadResponse},
			{Name: "200 html", Fault: providertest.Fault{Status: 200, Body: "<html>ok</html>", ContentType: "text/html"}, Kind: providers.KindUpstreamBadResponse},
			{Name: "200 non-http url", Fault: providertest.Fault{Status: 200, Body: `{"created":1,"data":[{"url":"file:///etc/passwd"}]}`}, Kind: providers.KindUpstreamBadResponse},
			{Name: "200 b64 that is not an image", Fault: providertest.Fault{Status: 200, Body: `{"created":1,"data":[{"b64_json":"aGVsbG8gd29ybGQ="}]}`}, Kind: providers.KindUpstreamBadResponse},
		},
	})
}

func TestGenerateEachModel(t *testing.T) {
	e := newEnv(t, testKey)
	ref := arktest.PNG(t, 64, 48)
	cases := []struct {
		name   string
		op     providers.Operation
		req    providers.Request
		w, h   int
		format string
	}{
		{"3.0 t2i", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "fox", Width: 768, Height: 512, Seed: i64(7), GuidanceScale: f64(2.5)}, 768, 512, "image/jpeg"},
		{"3.0 t2i default size", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "fox"}, 1024, 1024, "image/jpeg"},
		{"seededit", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "make it blue", Images: []providers.Image{ref}, Seed: i64(1), GuidanceScale: f64(5.5)}, 64, 48, "image/jpeg"},
		{"4.0 with refs", providers.OpGenerate, providers.Request{Model: ModelSeedream40, Prompt: "fox", Width: 1280, Height: 720, Images: []providers.Image{ref, ref}}, 1280, 720, "image/jpeg"},
		{"4.0 edit", providers.OpEdit, providers.Request{Model: ModelSeedream40, Prompt: "fox", Images: []providers.Image{ref}}, 2048, 2048, "image/jpeg"},
		{"4.5", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Prompt: "fox", Width: 2560, Height: 1440}, 2560, 1440, "image/jpeg"},
		{"5.0 png", providers.OpGenerate, providers.Request{Model: ModelSeedream50, Prompt: "fox", Width: 1440, Height: 2560, OutputFormat: "png"}, 1440, 2560, "image/png"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Operation = tc.op
			res, err := providers.Do(context.Background(), e.a, &req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Images) != 1 {
				t.Fatalf("got %d images", len(res.Images))
			}
			im := res.Images[0]
			if im.URL == "" || im.Width != tc.w || im.Height != tc.h {
				t.Fatalf("image = %+v, want a URL of %dx%d", im, tc.w, tc.h)
			}
			if want := e.clock.Now().Add(24 * time.Hour); !im.Expires.Equal(want) {
				t.Fatalf("Expires = %v, want %v", im.Expires, want)
			}
			if !strings.Contains(im.URL, "&") {
				t.Fatalf("URL %q has no signed query", im.URL)
			}
			if res.UpstreamRequestID == "" || res.Created.IsZero() {
				t.Fatalf("result lacks request id or created: %+v", res)
			}
			last := e.fake.LastRequest()
			if got := last.Header.Get("Authorization"); got != "Bearer "+testKey {
				t.Fatalf("Authorization = %q", got)
			}
			if last.Header.Get("X-Client-Request-Id") != res.UpstreamRequestID {
				t.Fatalf("request id %q not echoed as %q", last.Header.Get("X-Client-Request-Id"), res.UpstreamRequestID)
			}
			var body map[string]any
			if err := json.Unmarshal(last.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body["watermark"] != false {
				t.Fatalf("watermark = %v, want false", body["watermark"])
			}
			if _, ok := body["n"]; ok {
				t.Fatal("sent n, which Ark does not have")
			}
			resp, err := e.srv.Client().Get(im.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.format {
				t.Fatalf("download: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			cfg, _, err := image.DecodeConfig(resp.Body)
			if err != nil || cfg.Width != tc.w || cfg.Height != tc.h {
				t.Fatalf("downloaded image %dx%d (%v), want %dx%d", cfg.Width, cfg.Height, err, tc.w, tc.h)
			}
		})
	}
}

func TestURLExpiresAfter24h(t *testing.T) {
	e := newEnv(t, testKey)
	res, err := e.a.Generate(context.Background(), &providers.Request{Model: ModelSeedream30T2I, Prompt: "fox", Width: 512, Height: 512})
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		resp, err := e.srv.Client().Get(res.Images[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	e.clock.Add(24*time.Hour - time.Second)
	if st := get(); st != 200 {
		t.Fatalf("just before expiry: %d", st)
	}
	e.clock.Add(time.Second)
	if st := get(); st != http.StatusForbidden {
		t.Fatalf("after 24 h: %d, want 403", st)
	}
}

func TestB64(t *testing.T) {
	e := newEnv(t, testKey)
	res, err := e.a.Generate(context.Background(), &providers.Request{Model: ModelSeedream50, Prompt: "fox",
		Width: 2560, Height: 1440, OutputFormat: "png", ResponseFormat: "b64_json"})
	if err != nil {
		t.Fatal(err)
	}
	im := res.Images[0]
	if im.URL != "" || im.ContentType != "image/png" || im.Width != 2560 {
		t.Fatalf("image = URL %q type %q width %d", im.URL, im.ContentType, im.Width)
	}
	data, err := im.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != 2560 || cfg.Height != 1440 {
		t.Fatalf("decoded %dx%d %v", cfg.Width, cfg.Height, err)
	}
}

func TestSeedIsDeterministicAndEchoed(t *testing.T) {
	e := newEnv(t, testKey)
	get := func() ([]byte, *int64) {
		res, err := e.a.Generate(context.Background(), &providers.Request{Model: ModelSeedream30T2I, Prompt: "fox",
			Width: 512, Height: 512, Seed: i64(99), ResponseFormat: "b64_json"})
		if err != nil {
			t.Fatal(err)
		}
		data, err := res.Images[0].Bytes()
		if err != nil || len(data) == 0 {
			t.Fatalf("image bytes: %d, %v", len(data), err)
		}
		return data, res.Images[0].Seed
	}
	a, s := get()
	b, _ := get()
	if !bytes.Equal(a, b) || s == nil || *s != 99 {
		t.Fatalf("same seed gave different images, or seed %v not echoed", s)
	}
}

func TestWatermarkExtra(t *testing.T) {
	e := newEnv(t, testKey)
	_, err := e.a.Generate(context.Background(), &providers.Request{Model: ModelSeedream30T2I, Prompt: "fox",
		Extra: map[string]json.RawMessage{"watermark": json.RawMessage("true")}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(e.fake.LastRequest().Body, []byte(`"watermark":true`)) {
		t.Fatalf("body %s lacks watermark true", e.fake.LastRequest().Body)
	}
}

func TestUpstreamErrorsFromTheFake(t *testing.T) {
	e := newEnv(t, testKey)
	cases := []struct {
		name  string
		req   providers.Request
		kind  providers.Kind
		param string
		code  string
	}{
		{"input text filtered", providers.Request{Model: ModelSeedream30T2I, Prompt: "fake:sensitive-input"}, providers.KindContentPolicy, "prompt", "InputTextSensitiveContentDetected"},
		{"output filtered", providers.Request{Model: ModelSeedream30T2I, Prompt: "fake:sensitive-output"}, providers.KindContentPolicy, "", "OutputImageSensitiveContentDetected"},
		{"the only image failed in a 200", providers.Request{Model: ModelSeedream30T2I, Prompt: "fake:partial-fail"}, providers.KindContentPolicy, "", "OutputImageSensitiveContentDetected"},
		{"unknown endpoint passed through", providers.Request{Model: "ep-20260101-nope", Prompt: "fox"}, providers.KindModelNotFound, "", "InvalidEndpointOrModel.NotFound"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.a.Generate(context.Background(), &tc.req)
			pe := arktest.AsError(t, err)
			if pe.Kind != tc.kind || pe.Param != tc.param || pe.Code != tc.code || pe.Provider != "ark-test" {
				t.Fatalf("got %s param %q code %q provider %q, want %s %q %q", pe.Kind, pe.Param, pe.Code, pe.Provider, tc.kind, tc.param, tc.code)
			}
			if strings.Contains(pe.Message, "Request id") || strings.Contains(pe.Message, "sensitive information") {
				t.Fatalf("upstream text reached the message: %q", pe.Message)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	e := newEnv(t, "sk-wrong-key-123456")
	_, err := e.a.Generate(context.Background(), &providers.Request{Model: ModelSeedream30T2I, Prompt: "fox"})
	pe := arktest.AsError(t, err)
	if pe.Kind != providers.KindUpstreamAuth || pe.Status != 401 || pe.Code != "AuthenticationError" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "sk-wrong-key-123456") {
		t.Fatal("the key leaked into the error")
	}
}

func TestRefusedBeforeTheUpstream(t *testing.T) {
	e := newEnv(t, testKey)
	png64 := arktest.PNG(t, 64, 64)
	webp := providers.Image{Data: []byte("RIFF....WEBPVP8 "), ContentType: "image/webp", Width: 64, Height: 64}
	cases := []struct {
		name  string
		op    providers.Operation
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"no prompt", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I}, providers.KindInvalidRequest, "prompt"},
		{"n above 1", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", N: 2}, providers.KindUnsupported, "n"},
		{"image on 3.0", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Images: []providers.Image{png64}}, providers.KindUnsupported, "image"},
		{"3.0 side too small", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Width: 256, Height: 512}, providers.KindInvalidRequest, "size"},
		{"3.0 seed out of range", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Seed: i64(1 << 31)}, providers.KindInvalidRequest, "seed"},
		{"3.0 guidance out of range", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", GuidanceScale: f64(11)}, providers.KindInvalidRequest, "guidance_scale"},
		{"negative prompt", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", NegativePrompt: "x"}, providers.KindUnsupported, "negative_prompt"},
		{"steps", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Steps: 20}, providers.KindUnsupported, "steps"},
		{"quality", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Quality: "hd"}, providers.KindUnsupported, "quality"},
		{"aspect ratio", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Prompt: "p", AspectRatio: "16:9"}, providers.KindUnsupported, "aspect_ratio"},
		{"4.5 below the pixel floor", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Prompt: "p", Width: 1024, Height: 1024}, providers.KindInvalidRequest, "size"},
		{"4.5 above the ceiling", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Prompt: "p", Width: 8192, Height: 4096}, providers.KindInvalidRequest, "size"},
		{"4.0 aspect beyond 16", providers.OpGenerate, providers.Request{Model: ModelSeedream40, Prompt: "p", Width: 17 * 256, Height: 256}, providers.KindInvalidRequest, "size"},
		{"4.5 seed", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Prompt: "p", Seed: i64(1)}, providers.KindUnsupported, "seed"},
		{"4.0 output_format", providers.OpGenerate, providers.Request{Model: ModelSeedream40, Prompt: "p", OutputFormat: "png"}, providers.KindUnsupported, "output_format"},
		{"5.0 webp", providers.OpGenerate, providers.Request{Model: ModelSeedream50, Prompt: "p", OutputFormat: "webp"}, providers.KindUnsupported, "output_format"},
		{"4.0 eleven refs", providers.OpGenerate, providers.Request{Model: ModelSeedream40, Prompt: "p", Images: make11(png64)}, providers.KindInvalidRequest, "image"},
		{"seededit on generate", providers.OpGenerate, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p", Images: []providers.Image{png64}}, providers.KindUnsupported, "model"},
		{"seededit without image", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p"}, providers.KindInvalidRequest, "image"},
		{"seededit with size", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p", Images: []providers.Image{png64}, Width: 512, Height: 512}, providers.KindUnsupported, "size"},
		{"seededit with mask", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p", Images: []providers.Image{png64}, Mask: &png64}, providers.KindUnsupported, "mask"},
		{"seededit webp", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p", Images: []providers.Image{webp}}, providers.KindUnsupported, "image"},
		{"seededit panorama", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p", Images: []providers.Image{{Data: []byte{1}, ContentType: "image/png", Width: 300, Height: 100}}}, providers.KindInvalidRequest, "image"},
		{"seededit two images", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "p", Images: []providers.Image{png64, png64}}, providers.KindInvalidRequest, "image"},
		{"3.0 edit", providers.OpEdit, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Images: []providers.Image{png64}}, providers.KindUnsupported, "model"},
		{"unknown extra", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Extra: map[string]json.RawMessage{"style_type": json.RawMessage(`"x"`)}}, providers.KindUnsupported, "style_type"},
		{"watermark not a bool", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "p", Extra: map[string]json.RawMessage{"watermark": json.RawMessage(`"yes"`)}}, providers.KindInvalidRequest, "watermark"},
		{"variation", providers.OpVariation, providers.Request{Model: ModelSeedream30T2I, Prompt: "p"}, providers.KindUnsupported, "model"},
	}
	before := e.fake.Script.Requests()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Operation = tc.op
			_, err := providers.Do(context.Background(), e.a, &req)
			pe := arktest.AsError(t, err)
			if pe.Kind != tc.kind || pe.Param != tc.param {
				t.Fatalf("got %s param %q (%v), want %s %q", pe.Kind, pe.Param, err, tc.kind, tc.param)
			}
			if pe.Provider != "ark-test" {
				t.Fatalf("Provider = %q", pe.Provider)
			}
		})
	}
	if n := e.fake.Script.Requests() - before; n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}
}

func make11(im providers.Image) []providers.Image {
	out := make([]providers.Image, 11)
	for i := range out {
		out[i] = im
	}
	return out
}

func TestRegistration(t *testing.T) {
	if !providers.Registered(Name) {
		t.Fatal("ark is not registered")
	}
	p, err := providers.New(Name, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != Name || p.(*Adapter).ch.Endpoint != DefaultBaseURL+"/images/generations" {
		t.Fatalf("name %q endpoint %q", p.Name(), p.(*Adapter).ch.Endpoint)
	}
	if !providers.Supports(p, providers.OpEdit) || providers.Supports(p, providers.OpVariation) {
		t.Fatal("wrong operations")
	}
	for _, cfg := range []providers.Config{{}, {APIKey: "k", BaseURL: "ftp://x"}, {APIKey: "k", Options: map[string]string{"x": "y"}}} {
		if _, err := providers.New(Name, cfg); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

func TestDefaultTimeoutApplies(t *testing.T) {
	e := newEnv(t, testKey)
	e.a.ch.Timeout = 100 * time.Millisecond
	e.fake.Script.Push(providertest.Fault{Delay: time.Second})
	start := time.Now()
	_, err := e.a.Generate(context.Background(), &providers.Request{Model: ModelSeedream30T2I, Prompt: "p"})
	if kindOf(err) != providers.KindUpstreamTimeout || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

// TestModelNotFoundHasStatus: Ark's "no such model or endpoint" answers are KindModelNotFound
// with the upstream status set, so the front door can tell them from a local refusal (status 0)
// and fail over to the model's next channel.
func TestModelNotFoundHasStatus(t *testing.T) {
	e := newEnv(t, testKey)
	inOK := `{"created":1,"data":[],"error":{"code":"ModelNotOpen","message":"not open. Request id: 1","param":"","type":"NotFound"}}`
	cases := []struct {
		name   string
		fault  *providertest.Fault
		model  string
		status int
	}{
		{"unknown model, fake's 404", nil, "doubao-seedream-9-9-999999", http.StatusNotFound},
		{"closed endpoint", &providertest.Fault{Status: 400, ContentType: "application/json",
			Body: `{"error":{"code":"InvalidEndpoint.ClosedEndpoint","message":"closed. Request id: 1","param":"","type":"BadRequest"}}`}, ModelSeedream30T2I, 400},
		{"model not open, in a 200", &providertest.Fault{Status: 200, ContentType: "application/json", Body: inOK}, ModelSeedream30T2I, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				e.fake.Script.Push(*tc.fault)
			}
			_, err := e.a.Generate(context.Background(), &providers.Request{Model: tc.model, Prompt: "fox"})
			pe := arktest.AsError(t, err)
			if pe.Kind != providers.KindModelNotFound || pe.Status != tc.status {
				t.Fatalf("got %s status %d, want %s %d", pe.Kind, pe.Status, providers.KindModelNotFound, tc.status)
			}
		})
	}
}
