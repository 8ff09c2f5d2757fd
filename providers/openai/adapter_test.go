package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

func TestRegistry(t *testing.T) {
	p, err := providers.New(Name, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != Name {
		t.Fatalf("name %q", p.Name())
	}
	if got := providers.OperationsOf(p); !slices.Equal(got, []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation}) {
		t.Fatalf("openai operations %v", got)
	}
	if _, err := providers.New(CompatibleName, providers.Config{APIKey: "k"}); err == nil || !strings.Contains(err.Error(), "base URL is required") {
		t.Fatalf("a compatible channel without a base URL: %v", err)
	}
	c, err := providers.New(CompatibleName, providers.Config{APIKey: "k", BaseURL: "https://api.example.com/v1", Name: "agg"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "agg" || !slices.Equal(providers.OperationsOf(c), []providers.Operation{providers.OpGenerate}) {
		t.Fatalf("compatible channel %q ops %v", c.Name(), providers.OperationsOf(c))
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  providers.Config
		new  func(providers.Config) error
	}{
		{"no key", providers.Config{}, func(c providers.Config) error { _, err := New(c); return err }},
		{"bad base URL", providers.Config{APIKey: "k", BaseURL: "api.openai.com"}, func(c providers.Config) error { _, err := New(c); return err }},
		{"unknown option", providers.Config{APIKey: "k", Options: map[string]string{"layout": "x"}}, func(c providers.Config) error { _, err := New(c); return err }},
		{"compat-only option on openai", providers.Config{APIKey: "k", Options: map[string]string{OptSizeField: "size"}}, func(c providers.Config) error { _, err := New(c); return err }},
		{"bad size_field", providers.Config{APIKey: "k", BaseURL: "http://h/v1", Options: map[string]string{OptSizeField: "wh"}}, func(c providers.Config) error { _, err := NewCompatible(c); return err }},
		{"bad extension", providers.Config{APIKey: "k", BaseURL: "http://h/v1", Options: map[string]string{OptExtensions: "seed,cfg"}}, func(c providers.Config) error { _, err := NewCompatible(c); return err }},
		{"bad max_n", providers.Config{APIKey: "k", BaseURL: "http://h/v1", Options: map[string]string{OptMaxN: "0"}}, func(c providers.Config) error { _, err := NewCompatible(c); return err }},
		{"bad url_ttl", providers.Config{APIKey: "k", BaseURL: "http://h/v1", Options: map[string]string{OptURLTTL: "soon"}}, func(c providers.Config) error { _, err := NewCompatible(c); return err }},
		{"bad response_format", providers.Config{APIKey: "k", BaseURL: "http://h/v1", Options: map[string]string{OptResponseFormat: "yes please"}}, func(c providers.Config) error { _, err := NewCompatible(c); return err }},
	} {
		if err := tc.new(tc.cfg); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else if strings.Contains(err.Error(), "k\"") {
			t.Errorf("%s: the key is in the error: %v", tc.name, err)
		}
	}
}

func TestCatalog(t *testing.T) {
	a, err := New(providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	models := a.Models()
	byID := map[string]providers.Model{}
	for _, m := range models {
		byID[m.ID] = m
		if m.MaxN < 1 || len(m.Operations) == 0 || m.Price.Currency != "USD" || m.Price.Unit != providers.PerImage || m.Price.Amount <= 0 {
			t.Errorf("%s: incomplete %+v", m.ID, m)
		}
		for _, op := range m.Operations {
			if !providers.Supports(a, op) {
				t.Errorf("%s: operation %s not implemented", m.ID, op)
			}
		}
	}
	if byID["dall-e-3"].MaxN != 1 || byID["dall-e-2"].MaxN != 10 || byID["gpt-image-1"].MaxInputImages != 16 {
		t.Fatal("MaxN or MaxInputImages wrong")
	}
	if byID["dall-e-2"].URLTTL != time.Hour || byID["gpt-image-1"].URLTTL != 0 {
		t.Fatal("URL lifetimes wrong")
	}
	// First matching tier wins; empty fields match anything.
	price := func(id, quality, size string) string {
		p := byID[id].Price
		for _, tr := range p.Tiers {
			if (tr.Quality == "" || tr.Quality == quality) && (tr.Size == "" || tr.Size == size) {
				return tr.Amount.String()
			}
		}
		return p.Amount.String()
	}
	for _, tc := range []struct{ id, q, size, want string }{
		{"dall-e-3", "", "1024x1024", "0.04"},
		{"dall-e-3", "standard", "1792x1024", "0.08"},
		{"dall-e-3", "hd", "1024x1024", "0.08"},
		{"dall-e-3", "hd", "1024x1792", "0.12"},
		{"dall-e-3", "hd", "", "0.08"},
		{"dall-e-2", "", "256x256", "0.016"},
		{"dall-e-2", "", "512x512", "0.018"},
		{"dall-e-2", "", "1024x1024", "0.02"},
		{"gpt-image-1", "low", "1024x1024", "0.011"},
		{"gpt-image-1", "medium", "1536x1024", "0.063"},
		{"gpt-image-1", "high", "1024x1536", "0.25"},
		{"gpt-image-1", "high", "1024x1024", "0.167"},
		{"gpt-image-1", "auto", "1024x1024", "0.167"},
		{"gpt-image-1", "", "", "0.25"},
		{"gpt-image-1", "low", "", "0.016"},
	} {
		if got := price(tc.id, tc.q, tc.size); got != tc.want {
			t.Errorf("%s %q %q: price %s, want %s", tc.id, tc.q, tc.size, got, tc.want)
		}
	}

	c, err := NewCompatible(providers.Config{APIKey: "k", BaseURL: "http://h/v1",
		Options: map[string]string{OptExtensions: "seed, negative_prompt", OptMaxN: "4", OptURLTTL: "2h"}})
	if err != nil {
		t.Fatal(err)
	}
	cm := c.Models()
	if len(cm) != 6 {
		t.Fatalf("%d compatible models", len(cm))
	}
	for _, m := range cm {
		if m.ID == "dall-e-3" {
			if m.Params != 0 || m.MaxN != 1 || len(m.Size.Sizes) != 2 {
				t.Errorf("compatible dall-e-3 %+v", m)
			}
			continue
		}
		if m.Params != providers.ParamSeed|providers.ParamNegativePrompt || m.MaxN != 4 || m.URLTTL != 2*time.Hour ||
			m.Size.Multiple != 8 || m.MaxSteps != 0 || m.SeedMax != 2147483647 {
			t.Errorf("compatible %s %+v", m.ID, m)
		}
	}
}

func TestGenerateDallE3AgainstFake(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	a, f, srv := openAIFake(t, fake.Options{Now: clk.Now}, map[string]string{OptOrganization: "org-1", OptProject: "proj-1"})
	res, err := a.Generate(context.Background(), &providers.Request{Model: "dall-e-3", Prompt: "a red fox", N: 1,
		Width: 1024, Height: 1792, Quality: "hd", Style: "vivid", ResponseFormat: "url"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.UpstreamRequestID == "" || res.Created.IsZero() {
		t.Fatalf("result %+v", res)
	}
	im := res.Images[0]
	if im.URL == "" || im.RevisedPrompt == "" || im.Width != 1024 || im.Height != 1792 {
		t.Fatalf("image %+v", im)
	}
	if d := im.Expires.Sub(res.Created); d != URLTTL {
		t.Fatalf("expires %v after creation", d)
	}
	last := f.LastRequest()
	if last.Header.Get("Authorization") != "Bearer "+testKey || last.Header.Get("OpenAI-Organization") != "org-1" ||
		last.Header.Get("OpenAI-Project") != "proj-1" || last.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", last.Header)
	}
	resp, err := srv.Client().Get(im.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cfg, err := png.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 1024 || cfg.Height != 1792 {
		t.Fatalf("download: %d %v %+v", resp.StatusCode, err, cfg)
	}
	clk.Add(URLTTL)
	resp, err = srv.Client().Get(im.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the URL still works after %v: %d", URLTTL, resp.StatusCode)
	}
}

func TestGenerateBytesAgainstFake(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	for _, tc := range []struct {
		req      providers.Request
		ct       string
		w, h, n  int
		noRFSent bool
	}{
		{providers.Request{Model: "dall-e-2", Prompt: "fox", N: 3, Width: 256, Height: 256, ResponseFormat: "b64_json"}, "image/png", 256, 256, 3, false},
		{providers.Request{Model: "gpt-image-1", Prompt: "fox", N: 2, ResponseFormat: "url"}, "image/png", 1024, 1024, 2, true},
		{providers.Request{Model: "gpt-image-1", Prompt: "fox", Width: 1536, Height: 1024, OutputFormat: "jpeg", OutputCompression: ptr(50), Quality: "low"}, "image/jpeg", 1536, 1024, 1, true},
		{providers.Request{Model: "gpt-image-1-mini", Prompt: "fox", Width: 1024, Height: 1536, OutputFormat: "webp", Background: "transparent", Moderation: "low"}, "image/webp", 1024, 1536, 1, true},
	} {
		res, err := a.Generate(context.Background(), &tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.req.Model, err)
		}
		if len(res.Images) != tc.n {
			t.Fatalf("%d images, want %d", len(res.Images), tc.n)
		}
		for _, im := range res.Images {
			if im.URL != "" || im.ContentType != tc.ct || len(bytesOf(t, im)) == 0 || im.Width != tc.w || im.Height != tc.h {
				t.Fatalf("%s: image %s %dx%d url=%q", tc.req.Model, im.ContentType, im.Width, im.Height, im.URL)
			}
		}
		if tc.noRFSent && bytes.Contains(f.LastRequest().Body, []byte("response_format")) {
			t.Fatalf("response_format was sent to %s", tc.req.Model)
		}
	}
}

// parts reads the multipart body of the fake's last request: part names in order.
func parts(t *testing.T, r fake.Recorded) []string {
	t.Helper()
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
	var names []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p.FormName())
	}
}

func TestEditAndVaryAgainstFake(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	sq := pngImage(t, 64, 64, true)
	mask := pngImage(t, 64, 64, true)
	opaque := pngImage(t, 64, 64, false)

	res, err := a.Edit(context.Background(), &providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "add a hat",
		N: 2, Width: 256, Height: 256, Images: []providers.Image{opaque}, Mask: &mask})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Images[0].URL == "" || res.Images[0].Expires.IsZero() {
		t.Fatalf("dall-e-2 edit %+v", res)
	}
	if got := parts(t, f.LastRequest()); !slices.Equal(got, []string{"model", "prompt", "n", "size", "image", "mask"}) {
		t.Fatalf("parts %v", got)
	}

	res, err = a.Edit(context.Background(), &providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "picnic",
		Images: []providers.Image{sq, jpegImage(t, 80, 60), sq}, Mask: &mask, Quality: "medium",
		Extra: map[string]json.RawMessage{ExtraInputFidelity: json.RawMessage(`"low"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || len(bytesOf(t, res.Images[0])) == 0 {
		t.Fatalf("gpt-image edit %+v", res)
	}
	if got := parts(t, f.LastRequest()); !slices.Equal(got, []string{"model", "prompt", "quality", "input_fidelity", "image[]", "image[]", "image[]", "mask"}) {
		t.Fatalf("parts %v", got)
	}

	res, err = providers.Do(context.Background(), a, &providers.Request{Operation: providers.OpVariation, Model: "dall-e-2", N: 2,
		ResponseFormat: "b64_json", Images: []providers.Image{opaque}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Images[0].ContentType != "image/png" {
		t.Fatalf("variation %+v", res)
	}
}

// TestUpstreamRefusalsMapped drives the fake's own refusals through the adapter.
func TestUpstreamRefusalsMapped(t *testing.T) {
	a, _, _ := openAIFake(t, fake.Options{}, nil)
	sq := pngImage(t, 64, 64, true)
	wrongMask := pngImage(t, 32, 32, true)
	jpg := jpegImage(t, 64, 64)
	jpg.Width, jpg.Height = 0, 0 // dimensions unknown to the adapter: only the upstream can tell
	cases := []struct {
		name  string
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"dall-e policy", providers.Request{Operation: providers.OpGenerate, Model: "dall-e-3", Prompt: "x " + fake.ContentPolicyTrigger}, providers.KindContentPolicy, ""},
		{"gpt policy", providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1", Prompt: "x " + fake.ContentPolicyTrigger}, providers.KindContentPolicy, ""},
		{"gpt edit policy", providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x " + fake.ContentPolicyTrigger, Images: []providers.Image{sq}}, providers.KindContentPolicy, ""},
		{"size not for model", providers.Request{Operation: providers.OpGenerate, Model: "dall-e-3", Prompt: "x", Width: 512, Height: 512}, providers.KindInvalidRequest, "size"},
		{"unknown model", providers.Request{Operation: providers.OpGenerate, Model: "dall-e-9", Prompt: "x"}, providers.KindInvalidRequest, "model"},
		{"mask size only the upstream sees", providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{jpg}, Mask: &wrongMask}, providers.KindInvalidRequest, "mask"},
		{"dall-e-2 edit without alpha or mask", providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "x", Images: []providers.Image{pngImage(t, 64, 64, false)}}, providers.KindInvalidRequest, "image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := providers.Do(context.Background(), a, &tc.req)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Param != tc.param || pe.Provider != "openai-test" || pe.Status != 400 {
				t.Fatalf("got %v, want kind %s param %q", err, tc.kind, tc.param)
			}
		})
	}
	bad, err := New(providers.Config{BaseURL: a.c.baseURL, APIKey: "sk-wrong-key-000000000000", HTTP: a.c.http})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Generate(context.Background(), &providers.Request{Model: "dall-e-2", Prompt: "x"})
	if providers.KindOf(err) != providers.KindUpstreamAuth || strings.Contains(err.Error(), "sk-wrong-key-000000000000") {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestAdapterRefusals checks the defense in depth: what the wire cannot carry is refused before
// any call, naming the parameter.
func TestAdapterRefusals(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	c, _, _ := compatibleFake(t, map[string]string{OptExtensions: "seed"})
	sq := pngImage(t, 64, 64, true)
	wide := pngImage(t, 96, 64, true)
	big := providers.Image{Data: append([]byte(pngSignature+"\x00\x00\x00\x0dIHDR\x00\x00\x00\x40\x00\x00\x00\x40"), make([]byte, 4<<20)...), ContentType: "image/png"}
	mask32 := pngImage(t, 32, 32, true)
	extra := func(k, v string) map[string]json.RawMessage { return map[string]json.RawMessage{k: json.RawMessage(v)} }
	cases := []struct {
		name  string
		p     providers.Provider
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"negative prompt", a, providers.Request{Model: "dall-e-3", Prompt: "x", NegativePrompt: "y"}, providers.KindUnsupported, "negative_prompt"},
		{"seed", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Seed: ptr(int64(1))}, providers.KindUnsupported, "seed"},
		{"steps", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Steps: 4}, providers.KindUnsupported, "steps"},
		{"guidance", a, providers.Request{Model: "gpt-image-1", Prompt: "x", GuidanceScale: ptr(2.0)}, providers.KindUnsupported, "guidance_scale"},
		{"strength", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Strength: ptr(0.5)}, providers.KindUnsupported, "strength"},
		{"aspect ratio", a, providers.Request{Model: "gpt-image-1", Prompt: "x", AspectRatio: "16:9"}, providers.KindUnsupported, "aspect_ratio"},
		{"prompt enhancement", a, providers.Request{Model: "gpt-image-1", Prompt: "x", PromptEnhancement: ptr(true)}, providers.KindUnsupported, "prompt_enhancement"},
		{"background on dall-e", a, providers.Request{Model: "dall-e-3", Prompt: "x", Background: "opaque"}, providers.KindUnsupported, "background"},
		{"style on gpt", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Style: "vivid"}, providers.KindUnsupported, "style"},
		{"dall-e-3 n", a, providers.Request{Model: "dall-e-3", Prompt: "x", N: 2}, providers.KindInvalidRequest, "n"},
		{"n above 10", a, providers.Request{Model: "dall-e-2", Prompt: "x", N: 11}, providers.KindInvalidRequest, "n"},
		{"half a size", a, providers.Request{Model: "dall-e-2", Prompt: "x", Width: 512}, providers.KindInvalidRequest, "size"},
		{"no prompt", a, providers.Request{Model: "dall-e-2"}, providers.KindInvalidRequest, "prompt"},
		{"unknown extra", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Extra: extra("style_type", `"AUTO"`)}, providers.KindUnsupported, "style_type"},
		{"input_fidelity on generate", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Extra: extra(ExtraInputFidelity, `"high"`)}, providers.KindUnsupported, ExtraInputFidelity},
		{"input_fidelity on mini", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1-mini", Prompt: "x", Images: []providers.Image{sq}, Extra: extra(ExtraInputFidelity, `"high"`)}, providers.KindUnsupported, ExtraInputFidelity},
		{"input_fidelity value", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{sq}, Extra: extra(ExtraInputFidelity, `"max"`)}, providers.KindInvalidRequest, ExtraInputFidelity},
		{"reference image on generate", a, providers.Request{Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{sq}}, providers.KindUnsupported, "image"},
		{"dall-e-3 edit", a, providers.Request{Operation: providers.OpEdit, Model: "dall-e-3", Prompt: "x", Images: []providers.Image{sq}}, providers.KindUnsupported, "model"},
		{"dall-e-2 edit jpeg", a, providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "x", Images: []providers.Image{jpegImage(t, 64, 64)}}, providers.KindInvalidRequest, "image"},
		{"dall-e-2 edit not square", a, providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "x", Images: []providers.Image{wide}}, providers.KindInvalidRequest, "image"},
		{"dall-e-2 edit 4 MB", a, providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "x", Images: []providers.Image{big}}, providers.KindInvalidRequest, "image"},
		{"dall-e-2 edit two images", a, providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "x", Images: []providers.Image{sq, sq}}, providers.KindInvalidRequest, "image"},
		{"edit without image", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x"}, providers.KindInvalidRequest, "image"},
		{"17 images", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x", Images: slices.Repeat([]providers.Image{sq}, 17)}, providers.KindInvalidRequest, "image"},
		{"gif source", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{{Data: []byte("GIF89a"), ContentType: "image/gif"}}}, providers.KindInvalidRequest, "image"},
		{"mask size", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{sq}, Mask: &mask32}, providers.KindInvalidRequest, "mask"},
		{"jpeg mask", a, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{sq}, Mask: ptr(jpegImage(t, 64, 64))}, providers.KindInvalidRequest, "mask"},
		{"variation gpt", a, providers.Request{Operation: providers.OpVariation, Model: "gpt-image-1", Images: []providers.Image{sq}}, providers.KindUnsupported, "model"},
		{"variation prompt", a, providers.Request{Operation: providers.OpVariation, Model: "dall-e-2", Prompt: "x", Images: []providers.Image{sq}}, providers.KindUnsupported, "prompt"},
		{"variation mask", a, providers.Request{Operation: providers.OpVariation, Model: "dall-e-2", Images: []providers.Image{sq}, Mask: &sq}, providers.KindUnsupported, "mask"},
		{"compatible edit", c, providers.Request{Operation: providers.OpEdit, Model: "flux-dev", Prompt: "x"}, providers.KindUnsupported, "model"},
		{"compatible negative prompt not enabled", c, providers.Request{Model: "flux-dev", Prompt: "x", NegativePrompt: "y"}, providers.KindUnsupported, "negative_prompt"},
		{"compatible steps not enabled", c, providers.Request{Model: "flux-dev", Prompt: "x", Steps: 20}, providers.KindUnsupported, "steps"},
		{"compatible n above max_n", c, providers.Request{Model: "flux-dev", Prompt: "x", N: 2}, providers.KindInvalidRequest, "n"},
		{"compatible background", c, providers.Request{Model: "flux-dev", Prompt: "x", Background: "opaque"}, providers.KindUnsupported, "background"},
		{"compatible extra", c, providers.Request{Model: "flux-dev", Prompt: "x", Extra: extra(ExtraInputFidelity, `"high"`)}, providers.KindUnsupported, ExtraInputFidelity},
	}
	before := f.Script.Requests()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := providers.Do(context.Background(), tc.p, &tc.req)
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.Param != tc.param || pe.Provider == "" || pe.Message == "" {
				t.Fatalf("got %v, want kind %s param %q", err, tc.kind, tc.param)
			}
		})
	}
	if f.Script.Requests() != before {
		t.Fatal("a refused request reached the upstream")
	}
}

func TestCompatibleAgainstFake(t *testing.T) {
	c, f, _ := compatibleFake(t, map[string]string{OptURLTTL: "1h"})
	res, err := c.Generate(context.Background(), &providers.Request{Model: "flux-1.1-pro", Prompt: "a red fox", NegativePrompt: "blurry",
		Width: 2048, Height: 1152, Steps: 30, GuidanceScale: ptr(3.5), Seed: ptr(int64(42))})
	if err != nil {
		t.Fatal(err)
	}
	im := res.Images[0]
	if im.URL == "" || im.Seed == nil || *im.Seed != 42 || im.Width != 2048 || im.Expires.IsZero() {
		t.Fatalf("image %+v", im)
	}
	var sent map[string]any
	_ = json.Unmarshal(f.LastRequest().Body, &sent)
	if sent["width"] != 2048.0 || sent["height"] != 1152.0 || sent["size"] != nil || sent["seed"] != 42.0 {
		t.Fatalf("sent %v", sent)
	}
	// The host refuses seed on dall-e-3 though the channel enables it: that is KindUnsupported.
	_, err = c.Generate(context.Background(), &providers.Request{Model: "dall-e-3", Prompt: "x", Seed: ptr(int64(1))})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUnsupported || pe.Param != "seed" {
		t.Fatalf("dall-e-3 with a seed: %v", err)
	}
	c2, _, _ := compatibleFake(t, map[string]string{OptSizeField: "size", OptResponseFormat: "true", OptMaxN: "3"})
	res, err = c2.Generate(context.Background(), &providers.Request{Model: "dall-e-3", Prompt: "x", Width: 1792, Height: 1024, ResponseFormat: "b64_json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(bytesOf(t, res.Images[0])) == 0 || res.Images[0].ContentType != "image/png" {
		t.Fatalf("b64 answer %+v", res.Images[0])
	}
	res, err = c2.Generate(context.Background(), &providers.Request{Model: "flux-schnell", Prompt: "x", N: 3})
	if err != nil || len(res.Images) != 3 {
		t.Fatalf("n=3: %v", err)
	}
}

func TestTimeoutFromConfig(t *testing.T) {
	f := fake.New(fake.Options{APIKey: testKey, Latency: 5 * time.Second})
	srv := httptestServer(t, f)
	a, err := New(providers.Config{BaseURL: srv.URL + "/v1", APIKey: testKey, HTTP: srv.Client(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.Generate(context.Background(), &providers.Request{Model: "dall-e-2", Prompt: "x"})
	if providers.KindOf(err) != providers.KindUpstreamTimeout || time.Since(start) > 3*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}
