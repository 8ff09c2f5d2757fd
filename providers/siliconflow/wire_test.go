package siliconflow

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
	"github.com/imagegw/imagegw/providers/providertest"
)

// tinyPNG stands in for a reference image: the golden files stay small and stable.
var tinyPNG = providers.Image{Data: []byte("\x89PNG\r\n\x1a\nfake"), ContentType: "image/png", Width: 8, Height: 8}

type requestCase struct {
	name string
	op   providers.Operation
	req  providers.Request
}

func requestCases() []requestCase {
	return []requestCase{
		{"flux-schnell", providers.OpGenerate, providers.Request{Model: FLUX1Schnell,
			Prompt: "a lighthouse at dusk & seagulls <calm>", Width: 1024, Height: 576, Seed: i64(4_999_999_999),
			PromptEnhancement: boolp(true), Steps: 4, ResponseFormat: "b64_json"}},
		{"flux-schnell-defaults", providers.OpGenerate, providers.Request{Model: FLUX1Schnell, Prompt: "a fox", N: 1}},
		{"pro-flux-schnell-free-size", providers.OpGenerate, providers.Request{Model: ProFLUX1Schnell, Prompt: "a fox", Width: 1536, Height: 1536}},
		{"flux-dev", providers.OpGenerate, providers.Request{Model: FLUX1Dev, Prompt: "a fox", Width: 720, Height: 1440, Steps: 28, Seed: i64(0)}},
		{"sd35-large-batch", providers.OpGenerate, providers.Request{Model: SD35Large, Prompt: "two owls",
			NegativePrompt: "blurry, text", N: 4, Width: 768, Height: 1024, Steps: 30, GuidanceScale: f64(7.5), Seed: i64(42)}},
		{"sd35-turbo", providers.OpGenerate, providers.Request{Model: SD35LargeTurbo, Prompt: "owl", N: 2, GuidanceScale: f64(0)}},
		{"sd35-turbo-seed-000-example", providers.OpGenerate, providers.Request{Model: SD35LargeTurbo, Prompt: "owl", Width: 1024, Height: 512}},
		{"sdxl-img2img", providers.OpGenerate, providers.Request{Model: SDXL, Prompt: "in watercolour",
			Images: []providers.Image{tinyPNG}, Width: 1024, Height: 1024, Steps: 20}},
		{"sd21", providers.OpGenerate, providers.Request{Model: SD21, Prompt: "a house", Width: 512, Height: 512, N: 3}},
		{"janus", providers.OpGenerate, providers.Request{Model: JanusPro7B, Prompt: "a robot", Width: 384, Height: 384, Seed: i64(7)}},
		{"janus-defaults", providers.OpGenerate, providers.Request{Model: JanusPro7B, Prompt: "a robot"}},
		{"sd21-defaults", providers.OpGenerate, providers.Request{Model: SD21, Prompt: "a house"}},
		{"kolors-img2img", providers.OpGenerate, providers.Request{Model: Kolors, Prompt: "一只猫",
			Images: []providers.Image{{Data: []byte{0xff, 0xd8, 0xff}, ContentType: "image/jpeg"}}, GuidanceScale: f64(5), N: 2}},
		{"qwen-image-cfg", providers.OpGenerate, providers.Request{Model: QwenImage, Prompt: "a sign that says \"OPEN\"",
			Width: 1664, Height: 928, Steps: 50, Extra: map[string]json.RawMessage{"cfg": raw("4.0")}}},
		{"qwen-image-edit", providers.OpEdit, providers.Request{Operation: providers.OpEdit, Model: QwenImageEdit,
			Prompt: "make it night", Images: []providers.Image{tinyPNG}, Seed: i64(9_999_999_999)}},
		{"qwen-image-edit-2509", providers.OpEdit, providers.Request{Operation: providers.OpEdit, Model: QwenImageEdit25,
			Prompt: "put the hat from image 2 on the cat of image 1", NegativePrompt: "blur",
			Images: []providers.Image{tinyPNG, tinyPNG, {Data: []byte("RIFFxxxxWEBP"), ContentType: "image/webp"}}, Steps: 30}},
	}
}

func TestGoldenRequests(t *testing.T) {
	fx := newFixture(t)
	for _, c := range requestCases() {
		t.Run(c.name, func(t *testing.T) {
			w, err := toWire(fx.a.byID[c.req.Model], c.op, &c.req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := encode(w)
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, "request/"+c.name+".json", b)
			// The bytes on the wire are the translation, and the fake accepts them.
			req := c.req
			if _, err := providers.Do(context.Background(), fx.a, &req); err != nil {
				t.Fatalf("the fake refused the translation: %v", err)
			}
			if got := fx.f.LastRequest().Body; string(got) != string(b) {
				t.Fatalf("wire body differs from the translation:\n%s\n%s", got, b)
			}
		})
	}
}

func TestConfigAddedModelPassesThrough(t *testing.T) {
	req := &providers.Request{Model: "vendor/new-model", Prompt: "x", N: 2, Width: 1000, Height: 700, Steps: 25,
		GuidanceScale: f64(30), NegativePrompt: "n", PromptEnhancement: boolp(false), Seed: i64(1),
		Extra: map[string]json.RawMessage{"cfg": raw("2")}, Images: []providers.Image{tinyPNG, tinyPNG}}
	w, err := toWire(nil, providers.OpGenerate, req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := encode(w)
	providertest.Golden(t, "request/config-added-model.json", b)
}

func TestRefusals(t *testing.T) {
	gen := providers.OpGenerate
	cases := []struct {
		name  string
		op    providers.Operation
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"no prompt", gen, providers.Request{Model: FLUX1Schnell}, providers.KindInvalidRequest, "prompt"},
		{"mask", providers.OpEdit, providers.Request{Model: QwenImageEdit, Prompt: "x", Images: []providers.Image{tinyPNG}, Mask: &tinyPNG}, providers.KindUnsupported, "mask"},
		{"edit on a generate model", providers.OpEdit, providers.Request{Model: SDXL, Prompt: "x", Images: []providers.Image{tinyPNG}}, providers.KindUnsupported, "model"},
		{"generate on an edit model", gen, providers.Request{Model: QwenImageEdit, Prompt: "x", Images: []providers.Image{tinyPNG}}, providers.KindUnsupported, "model"},
		{"edit without image", providers.OpEdit, providers.Request{Model: QwenImageEdit, Prompt: "x"}, providers.KindInvalidRequest, "image"},
		{"too many edit images", providers.OpEdit, providers.Request{Model: QwenImageEdit, Prompt: "x", Images: []providers.Image{tinyPNG, tinyPNG}}, providers.KindUnsupported, "image"},
		{"four images", providers.OpEdit, providers.Request{Model: QwenImageEdit25, Prompt: "x", Images: []providers.Image{tinyPNG, tinyPNG, tinyPNG, tinyPNG}}, providers.KindUnsupported, "image"},
		{"empty image", providers.OpEdit, providers.Request{Model: QwenImageEdit, Prompt: "x", Images: []providers.Image{{}}}, providers.KindInvalidRequest, "image"},
		{"size on an edit model", providers.OpEdit, providers.Request{Model: QwenImageEdit, Prompt: "x", Images: []providers.Image{tinyPNG}, Width: 1024, Height: 1024}, providers.KindUnsupported, "size"},
		{"reference image on FLUX", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Images: []providers.Image{tinyPNG}}, providers.KindUnsupported, "image"},
		{"steps on a fixed-step model", gen, providers.Request{Model: SD35LargeTurbo, Prompt: "x", Steps: 8}, providers.KindUnsupported, "steps"},
		{"steps out of range", gen, providers.Request{Model: FLUX1Dev, Prompt: "x", Steps: 31}, providers.KindInvalidRequest, "steps"},
		{"steps on Janus", gen, providers.Request{Model: JanusPro7B, Prompt: "x", Steps: 10}, providers.KindUnsupported, "steps"},
		{"n above batch_size", gen, providers.Request{Model: SD35Large, Prompt: "x", N: 5}, providers.KindUnsupported, "n"},
		{"n on FLUX", gen, providers.Request{Model: FLUX1Dev, Prompt: "x", N: 2}, providers.KindUnsupported, "n"},
		{"size not in the list", gen, providers.Request{Model: QwenImage, Prompt: "x", Width: 1024, Height: 1024}, providers.KindInvalidRequest, "size"},
		{"custom size off the 64 grid", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Width: 1000, Height: 1000}, providers.KindInvalidRequest, "size"},
		{"custom size above 1024", gen, providers.Request{Model: SD35LargeTurbo, Prompt: "x", Width: 1088, Height: 512}, providers.KindInvalidRequest, "size"},
		{"custom size below 512", gen, providers.Request{Model: SD21, Prompt: "x", Width: 448, Height: 512}, providers.KindInvalidRequest, "size"},
		{"negative steps", gen, providers.Request{Model: SDXL, Prompt: "x", Steps: -1}, providers.KindInvalidRequest, "steps"},
		{"free size above the cap", gen, providers.Request{Model: FLUX1Dev, Prompt: "x", Width: 2048, Height: 2048}, providers.KindInvalidRequest, "size"},
		{"Janus other size", gen, providers.Request{Model: JanusPro7B, Prompt: "x", Width: 512, Height: 512}, providers.KindUnsupported, "size"},
		{"aspect ratio", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", AspectRatio: "16:9"}, providers.KindUnsupported, "aspect_ratio"},
		{"negative prompt on FLUX", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", NegativePrompt: "y"}, providers.KindUnsupported, "negative_prompt"},
		{"guidance on FLUX", gen, providers.Request{Model: FLUX1Dev, Prompt: "x", GuidanceScale: f64(3)}, providers.KindUnsupported, "guidance_scale"},
		{"guidance on Qwen-Image", gen, providers.Request{Model: QwenImage, Prompt: "x", GuidanceScale: f64(3)}, providers.KindUnsupported, "guidance_scale"},
		{"guidance out of range", gen, providers.Request{Model: SDXL, Prompt: "x", GuidanceScale: f64(21)}, providers.KindInvalidRequest, "guidance_scale"},
		{"seed too big", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Seed: i64(10_000_000_000)}, providers.KindInvalidRequest, "seed"},
		{"seed negative", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Seed: i64(-1)}, providers.KindInvalidRequest, "seed"},
		{"prompt enhancement on Kolors", gen, providers.Request{Model: Kolors, Prompt: "x", PromptEnhancement: boolp(true)}, providers.KindUnsupported, "prompt_enhancement"},
		{"cfg on SDXL", gen, providers.Request{Model: SDXL, Prompt: "x", Extra: map[string]json.RawMessage{"cfg": raw("4")}}, providers.KindUnsupported, "cfg"},
		{"cfg out of range", gen, providers.Request{Model: QwenImage, Prompt: "x", Extra: map[string]json.RawMessage{"cfg": raw("0.05")}}, providers.KindInvalidRequest, "cfg"},
		{"cfg not a number", gen, providers.Request{Model: QwenImage, Prompt: "x", Extra: map[string]json.RawMessage{"cfg": raw(`"high"`)}}, providers.KindInvalidRequest, "cfg"},
		{"unknown extra", gen, providers.Request{Model: QwenImage, Prompt: "x", Extra: map[string]json.RawMessage{"style_type": raw(`"AUTO"`)}}, providers.KindUnsupported, "style_type"},
		{"quality", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Quality: "hd"}, providers.KindUnsupported, "quality"},
		{"style", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Style: "vivid"}, providers.KindUnsupported, "style"},
		{"strength", gen, providers.Request{Model: SDXL, Prompt: "x", Strength: f64(0.5)}, providers.KindUnsupported, "strength"},
		{"output format", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", OutputFormat: "webp"}, providers.KindUnsupported, "output_format"},
		{"output compression", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", OutputCompression: intp(50)}, providers.KindUnsupported, "output_compression"},
		{"background", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Background: "transparent"}, providers.KindUnsupported, "background"},
		{"moderation", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", Moderation: "low"}, providers.KindUnsupported, "moderation"},
		{"user", gen, providers.Request{Model: FLUX1Schnell, Prompt: "x", User: "u1"}, providers.KindUnsupported, "user"},
		{"unknown model, 5 images", gen, providers.Request{Model: "x/y", Prompt: "x", N: 5}, providers.KindUnsupported, "n"},
		{"unknown model, 4 images in", gen, providers.Request{Model: "x/y", Prompt: "x", Images: []providers.Image{tinyPNG, tinyPNG, tinyPNG, tinyPNG}}, providers.KindUnsupported, "image"},
	}
	fx := newFixture(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := fx.f.Script.Requests()
			req := c.req
			req.Operation = c.op
			_, err := providers.Do(context.Background(), fx.a, &req)
			wantErr(t, err, c.kind, c.param)
			if fx.f.Script.Requests() != before {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
	// "auto" means "let the model decide" and is accepted.
	if _, err := fx.a.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: "x", Quality: "auto", Style: "auto", Background: "auto", Moderation: "auto"}); err != nil {
		t.Fatal(err)
	}
}

var goldenNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestGoldenResponses(t *testing.T) {
	cases := []struct {
		name string
		req  providers.Request
		body string
	}{
		{"signed-url-big-seed", providers.Request{Model: FLUX1Schnell, Width: 1024, Height: 576},
			`{"images":[{"url":"https://sc-maas.oss-cn-shanghai.aliyuncs.com/outputs/6f1c_0.png?OSSAccessKeyId=LTAI5t\u0026Expires=1735787045\u0026Signature=a%2Bb%3D"}],"timings":{"inference":1.42},"seed":4999999999,"shared_id":"abc"}`},
		{"batch-default-size", providers.Request{Model: SD35Large, N: 2},
			`{"images":[{"url":"https://cdn.example/a.png?x=1\u0026y=2"},{"url":"https://cdn.example/b.png"}],"timings":{"inference":123},"seed":7}`},
		{"janus-fixed-size", providers.Request{Model: JanusPro7B},
			`{"images":[{"url":"https://cdn.example/j.png"}],"timings":{"inference":0.5},"seed":1.0e3}`},
		{"edit-unknown-size-data-uri", providers.Request{Model: QwenImageEdit, Operation: providers.OpEdit},
			`{"images":[{"url":"data:image/webp;base64,UklGRg=="}],"seed":"12"}`},
		{"config-added-model-no-seed", providers.Request{Model: "vendor/new", Width: 640, Height: 480},
			`{"images":[{"url":"http://cdn.example/n.png"}]}`},
	}
	fx := newFixture(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
			r, err := sfwire.DecodeResponse("sf-test", h, []byte(c.body), "")
			if err != nil {
				t.Fatal(err)
			}
			res, err := fromWire("sf-test", fx.a.byID[c.req.Model], &c.req, r, "trace-1", goldenNow)
			if err != nil {
				t.Fatal(err)
			}
			// Without HTML escaping, the golden file shows the decoded "&" of the URLs.
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

func TestParseError(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	cases := []struct {
		status int
		h      http.Header
		body   string
		kind   providers.Kind
		code   string
		param  string
	}{
		{400, jsonCT, `{"code":20012,"message":"Model does not exist. Please check it carefully.","data":null}`, providers.KindModelNotFound, "20012", ""},
		{400, jsonCT, `{"code":20015,"message":"image_size: 1000x1000 is not one of …","data":null}`, providers.KindInvalidRequest, "20015", "size"},
		{400, jsonCT, `{"code":20015,"message":"body -> num_inference_steps: Input should be less than or equal to 100","data":null}`, providers.KindInvalidRequest, "20015", "steps"},
		{400, jsonCT, `{"code":20015,"message":"batch_size is not supported by model x","data":null}`, providers.KindInvalidRequest, "20015", "n"},
		{400, jsonCT, `{"code":20015,"message":"model: Field required","data":null}`, providers.KindInvalidRequest, "20015", "model"},
		{400, jsonCT, `{"code":20015,"message":"Field required","data":null}`, providers.KindInvalidRequest, "20015", ""},
		{400, jsonCT, `{"code":"20015","message":"image2: requires image","data":null}`, providers.KindInvalidRequest, "20015", "image"},
		{400, jsonCT, `{"code":20015,"message":"输入内容包含敏感词","data":null}`, providers.KindContentPolicy, "20015", ""},
		{401, jsonCT, `"Invalid token"`, providers.KindUpstreamAuth, "", ""},
		{401, http.Header{"Content-Type": {"text/plain"}}, `Api key is invalid`, providers.KindUpstreamAuth, "", ""},
		{401, http.Header{}, ``, providers.KindUpstreamAuth, "", ""},
		{403, jsonCT, `{"code":30011,"message":"real-name verification required","data":null}`, providers.KindUpstreamAuth, "30011", ""},
		{429, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"9"}}, `{"message":"Request was rejected due to rate limiting. Details: IPD limit reached.","data":null}`, providers.KindUpstreamRateLimited, "", ""},
		{503, jsonCT, `{"code":50508,"message":"System is too busy now. Please try again later.","data":null}`, providers.KindUpstreamUnavailable, "50508", ""},
		{400, jsonCT, `{"code":50508,"message":"System is too busy now.","data":null}`, providers.KindUpstreamUnavailable, "50508", ""},
		{504, http.Header{}, ``, providers.KindUpstreamTimeout, "", ""},
		{502, http.Header{"Content-Type": {"text/html"}}, `<html>bad gateway</html>`, providers.KindUpstreamUnavailable, "", ""},
		{404, jsonCT, `{"code":20012,"message":"模型不存在","data":null}`, providers.KindModelNotFound, "20012", ""},
		{404, http.Header{"Content-Type": {"text/plain"}}, `404 page not found`, providers.KindModelNotFound, "", ""},
		{404, http.Header{"Content-Type": {"text/html"}}, `<html>404</html>`, providers.KindUpstreamBadResponse, "", ""},
		{413, http.Header{}, ``, providers.KindTooLarge, "", ""},
		{418, jsonCT, `{"message":"teapot"}`, providers.KindUpstreamBadResponse, "", ""},
		{400, http.Header{"Content-Type": {"application/octet-stream"}}, "\x00\x01binary", providers.KindInvalidRequest, "", ""},
		{400, jsonCT, `{"error":{"message":"prompt is too long","code":"invalid_prompt"}}`, providers.KindInvalidRequest, "", "prompt"}, // a code that is not numeric is not kept
	}
	for _, c := range cases {
		e := parseError("sf", c.status, c.h, []byte(c.body), "sk-secret")
		if e.Kind != c.kind || e.Code != c.code || e.Param != c.param || e.Status != c.status || e.Provider != "sf" {
			t.Errorf("%d %s: got kind %s code %q param %q, want %s %q %q", c.status, c.body, e.Kind, e.Code, e.Param, c.kind, c.code, c.param)
		}
		if e.Message == "" || (len(c.body) > 8 && strings.Contains(e.Message, strings.Trim(c.body, `"`))) {
			t.Errorf("%d %s: message %q", c.status, c.body, e.Message)
		}
		if c.status == 429 && e.RetryAfter != 9*time.Second {
			t.Errorf("429: RetryAfter %v", e.RetryAfter)
		}
	}
	// The key never survives, even when an upstream echoes it.
	e := parseError("sf", 401, http.Header{"Content-Type": {"text/plain"}}, []byte("key sk-secret is invalid"), "sk-secret")
	if strings.Contains(e.Error(), "sk-secret") {
		t.Fatalf("error %q", e.Error())
	}
}
