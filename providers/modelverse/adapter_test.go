package modelverse

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
	"github.com/imagegw/imagegw/providers/modelverse/fake"
	"github.com/imagegw/imagegw/providers/providertest"
)

const testKey = "sk-test-modelverse-0123456789"

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
	a, err := New(providers.Config{Name: "mv-test", Logger: logs.Logger(), BaseURL: srv.URL + "/v1", APIKey: key,
		MaxResponseBytes: 1 << 20, HTTP: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fk, srv: srv, a: a, clock: c, logs: logs}
}

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }

const (
	fluxDevID   = "black-forest-labs/FLUX.1-dev"
	fluxDevNew  = "black-forest-labs/flux.1-dev"
	kontextPro  = "black-forest-labs/Flux-Kontext-Pro"
	kontextMaxM = "black-forest-labs/flux-kontext-max/multi"
	kontextT2I  = "black-forest-labs/Flux-Kontext-Pro-text2image"
	kontextT2IN = "black-forest-labs/flux-kontext-max/text-to-image"
	step1xID    = "stepfun-ai/Step1X-Edit"
	step1xNew   = "stepfun-ai/step1x-edit"
)

func TestConformance(t *testing.T) {
	e := newEnv(t, testKey)
	envelope := func(code, typ, msg string) string {
		b, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg, "type": typ, "param": "b4a7b49c-203c-43c9-88ce-9e636e77ace8", "code": code}})
		return string(b)
	}
	providertest.Run(t, providertest.Harness{
		Provider: e.a,
		Script:   e.fake.Script,
		Request: func() *providers.Request {
			return &providers.Request{Operation: providers.OpGenerate, Model: fluxDevID, Prompt: "a cute cat",
				N: 2, Width: 512, Height: 512, Seed: i64(42), ResponseFormat: "url"}
		},
		Secret:           testKey,
		MaxResponseBytes: 1 << 20,
		Logs:             e.logs,
		Faults: []providertest.FaultCase{
			{Name: "400 param_error", Fault: providertest.Fault{Status: 400, Body: envelope("param_error", "invalid_request_error", "Invalid param")}, Kind: providers.KindInvalidRequest},
			{Name: "400 invalid_messages", Fault: providertest.Fault{Status: 400, Body: envelope("invalid_messages", "invalid_request_error", "Invalid param")}, Kind: providers.KindInvalidRequest},
			{Name: "400 sensitive_check_error", Fault: providertest.Fault{Status: 400, Body: envelope("sensitive_check_error", "invalid_request_error", "Sensitive words detected")}, Kind: providers.KindContentPolicy},
			{Name: "400 model_error", Fault: providertest.Fault{Status: 400, Body: envelope("model_error", "invalid_request_error", "No permission to use the model")}, Kind: providers.KindModelNotFound},
			{Name: "400 tokens_too_long", Fault: providertest.Fault{Status: 400, Body: envelope("tokens_too_long", "invalid_request_error", "Prompt tokens too long")}, Kind: providers.KindInvalidRequest},
			{Name: "401 auth_error", Fault: providertest.Fault{Status: 401, Body: envelope("auth_error", "invalid_request_error", "Validate Certification failed")}, Kind: providers.KindUpstreamAuth},
			{Name: "408 timeout", Fault: providertest.Fault{Status: 408, Body: envelope("timeout", "timeout", "Request timeout, please try again later")}, Kind: providers.KindUpstreamTimeout},
			{Name: "429 rate_limit", Fault: providertest.Fault{Status: 429, Body: envelope("rate_limit", "rate_limit_error", "Rate limit exceeded, please try again later"), Header: http.Header{"Retry-After": {"2"}}}, Kind: providers.KindUpstreamRateLimited, RetryAfter: 2 * time.Second},
			{Name: "500 internal_error", Fault: providertest.Fault{Status: 500, Body: envelope("internal_error", "internal_error", "Internal Server Error")}, Kind: providers.KindUpstreamUnavailable},
			{Name: "500 model_server_error", Fault: providertest.Fault{Status: 500, Body: envelope("model_server_error", "internal_error", "Request llm server Error")}, Kind: providers.KindUpstreamUnavailable},
			{Name: "504 gateway_timeout_error", Fault: providertest.Fault{Status: 504, Body: envelope("gateway_timeout_error", "timeout", "Gateway timeout, please try again later or use stream api")}, Kind: providers.KindUpstreamTimeout},
			{Name: "401 plain text", Fault: providertest.Fault{Status: 401, Body: "Unauthorized", ContentType: "text/plain"}, Kind: providers.KindUpstreamAuth},
			{Name: "400 bare JSON string", Fault: providertest.Fault{Status: 400, Body: `"Invalid param"`}, Kind: providers.KindInvalidRequest},
			{Name: "200 error envelope", Fault: providertest.Fault{Status: 200, Body: envelope("sensitive_check_error", "invalid_request_error", "Sensitive")}, Kind: providers.KindContentPolicy},
			{Name: "200 empty data", Fault: providertest.Fault{Status: 200, Body: `{"created":1750667997,"data":[],"usage":{"input_tokens_details":{}}}`}, Kind: providers.KindUpstreamBadResponse},
			{Name: "200 html", Fault: providertest.Fault{Status: 200, Body: "<html></html>", ContentType: "text/html"}, Kind: providers.KindUpstreamBadResponse},
			{Name: "200 bad data prefix", Fault: providertest.Fault{Status: 200, Body: `{"created":1,"data":[{"b64_json":"data:image/png,abc"}]}`}, Kind: providers.KindUpstreamBadResponse},
		},
	})
}

func TestEachModelFamily(t *testing.T) {
	e := newEnv(t, testKey)
	ref := arktest.PNG(t, 96, 64)
	cases := []struct {
		name   string
		op     providers.Operation
		req    providers.Request
		images int
		w, h   int
		fields []string
	}{
		{"flux dev t2i n=3", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "cat", N: 3, Width: 768, Height: 512, Steps: 20, Seed: i64(5), GuidanceScale: f64(3)}, 3, 768, 512, []string{"n", "size", "steps", "seed", "guidance_scale"}},
		{"flux dev i2i renamed id", providers.OpGenerate, providers.Request{Model: fluxDevNew, Prompt: "cat", Images: []providers.Image{ref}, Strength: f64(0.6)}, 1, 1024, 1024, []string{"image", "strength"}},
		{"kontext single", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "add a hat", Images: []providers.Image{ref}, Seed: i64(1)}, 1, 0, 0, []string{"image", "seed"}},
		{"kontext multi", providers.OpEdit, providers.Request{Model: kontextMaxM, Prompt: "combine", Images: []providers.Image{ref, ref}, AspectRatio: "16:9"}, 1, 0, 0, []string{"images", "aspect_ratio"}},
		{"kontext text2image n=2", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "cat", N: 2, AspectRatio: "9:21"}, 2, 0, 0, []string{"n", "aspect_ratio"}},
		{"kontext text2image renamed", providers.OpGenerate, providers.Request{Model: kontextT2IN, Prompt: "cat"}, 1, 0, 0, nil},
		{"step1x", providers.OpEdit, providers.Request{Model: step1xNew, Prompt: "make it night", NegativePrompt: "blurry", Steps: 30, Images: []providers.Image{ref}}, 1, 0, 0, []string{"image", "negative_prompt", "steps"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Operation = tc.op
			res, err := providers.Do(context.Background(), e.a, &req)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Images) != tc.images {
				t.Fatalf("got %d images, want %d", len(res.Images), tc.images)
			}
			for _, im := range res.Images {
				if im.URL == "" || im.Width != tc.w || im.Height != tc.h || !im.Expires.Equal(e.clock.Now().Add(7*24*time.Hour)) {
					t.Fatalf("image %+v", im)
				}
			}
			if res.UpstreamRequestID == "" || res.Created.IsZero() {
				t.Fatalf("result lacks request id or created: %+v", res)
			}
			last := e.fake.LastRequest()
			var body map[string]any
			if err := json.Unmarshal(last.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body["model"] != tc.req.Model {
				t.Fatalf("model sent as %v", body["model"])
			}
			for _, f := range tc.fields {
				if _, ok := body[f]; !ok {
					t.Fatalf("field %s not sent: %s", f, last.Body)
				}
			}
			resp, err := e.srv.Client().Get(res.Images[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("download %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestB64PrefixStripped(t *testing.T) {
	e := newEnv(t, testKey)
	res, err := e.a.Generate(context.Background(), &providers.Request{Model: fluxDevID, Prompt: "cat", Width: 320, Height: 256,
		Seed: i64(9), ResponseFormat: "b64_json"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(e.fake.LastRequest().Body, []byte(`"response_format":"b64_json"`)) {
		t.Fatal("response_format not passed for FLUX.1-dev")
	}
	im := res.Images[0]
	if im.URL != "" || im.ContentType != "image/png" || im.Seed == nil || *im.Seed != 9 {
		t.Fatalf("image %+v", im)
	}
	data, err := im.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width != 320 || cfg.Height != 256 {
		t.Fatalf("decoded %dx%d %v", cfg.Width, cfg.Height, err)
	}
	// Other models get the URL default: response_format is not sent.
	if _, err := e.a.Generate(context.Background(), &providers.Request{Model: kontextT2I, Prompt: "cat", ResponseFormat: "b64_json"}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.fake.LastRequest().Body, []byte("response_format")) {
		t.Fatal("response_format sent to a Kontext model")
	}
}

func TestURLExpiresAfter7Days(t *testing.T) {
	e := newEnv(t, testKey)
	res, err := e.a.Generate(context.Background(), &providers.Request{Model: fluxDevID, Prompt: "cat", Width: 256, Height: 256})
	if err != nil {
		t.Fatal(err)
	}
	u := res.Images[0].URL
	if !strings.Contains(u, "&Signature=") {
		t.Fatalf("url %q is not signed", u)
	}
	get := func() int {
		resp, err := e.srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	e.clock.Add(7*24*time.Hour - time.Second)
	if st := get(); st != 200 {
		t.Fatalf("before expiry: %d", st)
	}
	e.clock.Add(time.Second)
	if st := get(); st != http.StatusForbidden {
		t.Fatalf("after 7 days: %d", st)
	}
}

func TestUpstreamErrorsFromTheFake(t *testing.T) {
	e := newEnv(t, testKey)
	cases := []struct {
		name string
		req  providers.Request
		kind providers.Kind
		code string
	}{
		{"content filter", providers.Request{Model: fluxDevID, Prompt: "fake:sensitive"}, providers.KindContentPolicy, "sensitive_check_error"},
		{"unknown model passed through", providers.Request{Model: "black-forest-labs/FLUX.2-pro", Prompt: "cat"}, providers.KindModelNotFound, "model_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.a.Generate(context.Background(), &tc.req)
			pe := arktest.AsError(t, err)
			if pe.Kind != tc.kind || pe.Code != tc.code || pe.Param != "" || pe.Provider != "mv-test" {
				t.Fatalf("got %s code %q param %q provider %q", pe.Kind, pe.Code, pe.Param, pe.Provider)
			}
			if !strings.Contains(pe.Err.Error(), "request id") || strings.Contains(pe.Message, "Sensitive words") || strings.Contains(pe.Message, "No permission") {
				t.Fatalf("request id not logged, or in the message: %v / %q", pe.Err, pe.Message)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	e := newEnv(t, "sk-wrong-modelverse-key")
	_, err := e.a.Generate(context.Background(), &providers.Request{Model: fluxDevID, Prompt: "cat"})
	pe := arktest.AsError(t, err)
	if pe.Kind != providers.KindUpstreamAuth || pe.Status != 401 || pe.Code != "auth_error" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "sk-wrong-modelverse-key") {
		t.Fatal("the key leaked into the error")
	}
}

func TestRefusedBeforeTheUpstream(t *testing.T) {
	e := newEnv(t, testKey)
	ref := arktest.PNG(t, 32, 32)
	cases := []struct {
		name  string
		op    providers.Operation
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"n above 4", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", N: 5}, providers.KindInvalidRequest, "n"},
		{"n on kontext", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "p", N: 2, Images: []providers.Image{ref}}, providers.KindUnsupported, "n"},
		{"flux dev size too big", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Width: 2048, Height: 1024}, providers.KindInvalidRequest, "size"},
		{"flux dev aspect ratio", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", AspectRatio: "1:1"}, providers.KindUnsupported, "aspect_ratio"},
		{"flux dev strength without image", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Strength: f64(0.5)}, providers.KindInvalidRequest, "strength"},
		{"flux dev strength range", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Strength: f64(1.5), Images: []providers.Image{ref}}, providers.KindInvalidRequest, "strength"},
		{"flux dev two images", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Images: []providers.Image{ref, ref}}, providers.KindInvalidRequest, "image"},
		{"flux dev steps range", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Steps: 51}, providers.KindInvalidRequest, "steps"},
		{"flux dev negative prompt", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", NegativePrompt: "x"}, providers.KindUnsupported, "negative_prompt"},
		{"flux dev edit", providers.OpEdit, providers.Request{Model: fluxDevID, Prompt: "p", Images: []providers.Image{ref}}, providers.KindUnsupported, "model"},
		{"seed range", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Seed: i64(9999999999)}, providers.KindInvalidRequest, "seed"},
		{"guidance range", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "p", GuidanceScale: f64(0.5)}, providers.KindInvalidRequest, "guidance_scale"},
		{"text2image size", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "p", Width: 1024, Height: 1024}, providers.KindUnsupported, "size"},
		{"text2image bad ratio", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "p", AspectRatio: "5:4"}, providers.KindInvalidRequest, "aspect_ratio"},
		{"text2image image", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "p", Images: []providers.Image{ref}}, providers.KindUnsupported, "image"},
		{"text2image steps", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "p", Steps: 10}, providers.KindUnsupported, "steps"},
		{"kontext without image", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "p"}, providers.KindInvalidRequest, "image"},
		{"kontext two images", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "p", Images: []providers.Image{ref, ref}}, providers.KindInvalidRequest, "image"},
		{"kontext size", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "p", Images: []providers.Image{ref}, Width: 512, Height: 512}, providers.KindUnsupported, "size"},
		{"kontext aspect", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "p", Images: []providers.Image{ref}, AspectRatio: "1:1"}, providers.KindUnsupported, "aspect_ratio"},
		{"kontext on generate", providers.OpGenerate, providers.Request{Model: kontextPro, Prompt: "p", Images: []providers.Image{ref}}, providers.KindUnsupported, "model"},
		{"kontext mask", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "p", Images: []providers.Image{ref}, Mask: &ref}, providers.KindUnsupported, "mask"},
		{"multi five images", providers.OpEdit, providers.Request{Model: kontextMaxM, Prompt: "p", Images: []providers.Image{ref, ref, ref, ref, ref}}, providers.KindInvalidRequest, "image"},
		{"step1x strength", providers.OpEdit, providers.Request{Model: step1xID, Prompt: "p", Images: []providers.Image{ref}, Strength: f64(0.5)}, providers.KindUnsupported, "strength"},
		{"quality", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Quality: "hd"}, providers.KindUnsupported, "quality"},
		{"output format", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", OutputFormat: "png"}, providers.KindUnsupported, "output_format"},
		{"extra", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "p", Extra: map[string]json.RawMessage{"watermark": json.RawMessage("true")}}, providers.KindUnsupported, "watermark"},
		{"no prompt", providers.OpGenerate, providers.Request{Model: fluxDevID}, providers.KindInvalidRequest, "prompt"},
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
			if pe.Provider != "mv-test" {
				t.Fatalf("Provider = %q", pe.Provider)
			}
		})
	}
	if n := e.fake.Script.Requests() - before; n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}
}

func TestRegistration(t *testing.T) {
	p, err := providers.New(Name, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != Name || p.(*Adapter).ch.Endpoint != DefaultBaseURL+"/images/generations" {
		t.Fatalf("name %q endpoint %q", p.Name(), p.(*Adapter).ch.Endpoint)
	}
	if !providers.Supports(p, providers.OpEdit) {
		t.Fatal("edit not supported")
	}
	for _, cfg := range []providers.Config{{}, {APIKey: "k", BaseURL: "/relative"}, {APIKey: "k", Options: map[string]string{"x": "y"}}} {
		if _, err := providers.New(Name, cfg); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}

// TestModelNotFoundHasStatus: Modelverse's model_error ("No permission to use the model", what it
// answers for an id it does not serve, such as a spelling it retired) is KindModelNotFound with
// the upstream status set, so the front door can tell it from a local refusal (status 0) and
// fail over to the model's next channel, for example one with the model's other spelling.
func TestModelNotFoundHasStatus(t *testing.T) {
	e := newEnv(t, testKey)
	inOK := `{"created":1,"data":[],"error":{"message":"No permission to use the model","type":"invalid_request_error","param":"req-1","code":"model_error"}}`
	cases := []struct {
		name   string
		fault  *providertest.Fault
		model  string
		status int
	}{
		{"unknown model, fake's 400", nil, "black-forest-labs/FLUX.2-pro", http.StatusBadRequest},
		{"catalog model the account may not use", &providertest.Fault{Status: 400, ContentType: "application/json",
			Body: `{"error":{"message":"No permission to use the model","type":"invalid_request_error","param":"req-1","code":"model_error"}}`}, fluxDevNew, 400},
		{"model_error in a 200", &providertest.Fault{Status: 200, ContentType: "application/json", Body: inOK}, fluxDevID, 200},
		{"404", &providertest.Fault{Status: 404, ContentType: "application/json", Body: `{"error":{"message":"Not Found","type":"invalid_request_error","param":"req-1","code":"not_found"}}`}, fluxDevID, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				e.fake.Script.Push(*tc.fault)
			}
			_, err := e.a.Generate(context.Background(), &providers.Request{Model: tc.model, Prompt: "cat"})
			pe := arktest.AsError(t, err)
			if pe.Kind != providers.KindModelNotFound || pe.Status != tc.status {
				t.Fatalf("got %s status %d, want %s %d", pe.Kind, pe.Status, providers.KindModelNotFound, tc.status)
			}
		})
	}
}
