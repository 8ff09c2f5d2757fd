package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/providertest"
	"github.com/imagegw/imagegw/providers/sandbox"
)

func newAdapter(t testing.TB, opts map[string]string) *sandbox.Adapter {
	t.Helper()
	a, err := sandbox.New(providers.Config{Name: "sandbox-test", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func seed(v int64) *int64    { return &v }
func f64(v float64) *float64 { return &v }
func boolp(v bool) *bool     { return &v }
func bg() context.Context    { return context.Background() }
func ptrInt(v int) *int      { return &v }
func genReq() *providers.Request {
	return &providers.Request{Model: sandbox.ModelImage, Prompt: "a lighthouse at dusk", N: 1, Width: 256, Height: 256, Seed: seed(7)}
}

// decode decodes a PNG output and checks what the Output says about it.
func decode(t *testing.T, o providers.Output) image.Image {
	t.Helper()
	if o.ContentType != "image/png" {
		t.Fatalf("content type = %q", o.ContentType)
	}
	img, err := png.Decode(bytes.NewReader(o.Data))
	if err != nil {
		t.Fatalf("output is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != o.Width || b.Dy() != o.Height {
		t.Fatalf("PNG is %dx%d, Output says %dx%d", b.Dx(), b.Dy(), o.Width, o.Height)
	}
	return img
}

// pngOf encodes a w×h image whose pixel (x, y) is f(x, y).
func pngOf(t testing.TB, w, h int, f func(x, y int) color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, f(x, y))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func nrgbaAt(img image.Image, x, y int) color.NRGBA {
	return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
}

// wantKind checks err is a *providers.Error of kind k (naming param when param is not empty)
// set with the channel's name.
func wantKind(t *testing.T, err error, k providers.Kind, param string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want a *providers.Error of kind %s, got %T %v", k, err, err)
	}
	if pe.Kind != k {
		t.Fatalf("kind = %s, want %s (%v)", pe.Kind, k, err)
	}
	if param != "" && pe.Param != param {
		t.Fatalf("param = %q, want %q (%v)", pe.Param, param, err)
	}
	if pe.Provider != "sandbox-test" {
		t.Fatalf("provider = %q, want the channel name (%v)", pe.Provider, err)
	}
	if pe.Message == "" {
		t.Fatalf("no message: %v", err)
	}
	return pe
}

func TestRegistered(t *testing.T) {
	if !providers.Registered(sandbox.Name) {
		t.Fatal("sandbox is not registered")
	}
	p, err := providers.New(sandbox.Name, providers.Config{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "dev" {
		t.Fatalf("Name() = %q, want the channel name", p.Name())
	}
	got := providers.OperationsOf(p)
	want := []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation}
	if !slices.Equal(got, want) {
		t.Fatalf("operations = %v, want %v", got, want)
	}
	if _, err := providers.Do(bg(), p, &providers.Request{Operation: providers.OpRemix, Model: sandbox.ModelImage, Prompt: "x"}); providers.KindOf(err) != providers.KindUnsupported {
		t.Fatalf("remix: %v, want unsupported", err)
	}
	for _, m := range p.Models() {
		for _, op := range m.Operations {
			if !providers.Supports(p, op) {
				t.Fatalf("model %s lists %s, which the adapter does not implement", m.ID, op)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	_, err := sandbox.New(providers.Config{Options: map[string]string{"latency": "soon", "fail": "oops", "colour": "red"}})
	if err == nil {
		t.Fatal("bad options were accepted")
	}
	for _, want := range []string{`"latency"`, `"fail"`, `unknown option "colour"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := sandbox.New(providers.Config{Options: map[string]string{"latency": "-1s"}}); err == nil {
		t.Fatal("a negative latency was accepted")
	}
	if _, err := sandbox.New(providers.Config{Options: map[string]string{"latency": "300ms", "fail": "upstream_unavailable"}}); err != nil {
		t.Fatal(err)
	}
}

func TestCatalog(t *testing.T) {
	a := newAdapter(t, nil)
	models := a.Models()
	byID := map[string]providers.Model{}
	for _, m := range models {
		byID[m.ID] = m
		if m.MaxN != 4 {
			t.Errorf("%s: MaxN = %d, want 4", m.ID, m.MaxN)
		}
		if m.Price.IsZero() {
			t.Errorf("%s has no price", m.ID)
		}
	}
	img, steps, fixed := byID[sandbox.ModelImage], byID[sandbox.ModelSteps], byID[sandbox.ModelFixed]
	if img.Price.Unit != providers.PerImage || img.Price.Currency != "USD" || img.Price.Amount != money.MustParse("0.01") {
		t.Errorf("sandbox-image price = %+v", img.Price)
	}
	if len(img.Operations) != 3 || len(steps.Operations) != 1 || len(fixed.Operations) != 1 {
		t.Errorf("operations: %v %v %v", img.Operations, steps.Operations, fixed.Operations)
	}
	if steps.DefaultSteps != 20 || steps.MinSteps != 1 || steps.MaxSteps != 50 || steps.FixedSteps != 0 {
		t.Errorf("sandbox-steps steps = %d default, %d..%d", steps.DefaultSteps, steps.MinSteps, steps.MaxSteps)
	}
	if fixed.FixedSteps != 4 || fixed.Params.Has(providers.ParamSteps) {
		t.Errorf("sandbox-fixed: FixedSteps = %d, params %v", fixed.FixedSteps, fixed.Params.Names())
	}
	// Seed 000's worked example: 1024x512 at 4 steps and ¥0.0032/M px/step costs ¥0.0064.
	p := fixed.Price
	if p.Unit != providers.PerMegapixelStep || p.Currency != "CNY" {
		t.Fatalf("sandbox-fixed price = %+v", p)
	}
	cost := money.Amount(int64(p.Amount) * 1024 * 512 * int64(fixed.FixedSteps) / (1024 * 1024))
	if cost != money.MustParse("0.0064") {
		t.Fatalf("1024x512 at 4 steps costs %s, want 0.0064", cost)
	}
	// Models returns a copy: changing it does not change the adapter.
	models[0].MaxN = 99
	if a.Models()[0].MaxN != 4 {
		t.Fatal("Models shares its slices with the adapter")
	}
	// The golden file shows the catalog as reviewers read it, with parameter names for the bitmask.
	type view struct {
		providers.Model
		Params []string
	}
	var views []view
	for _, m := range a.Models() {
		views = append(views, view{Model: m, Params: m.Params.Names()})
	}
	b, err := json.Marshal(views)
	if err != nil {
		t.Fatal(err)
	}
	providertest.Golden(t, "catalog.json", b)
}

func TestDeterminism(t *testing.T) {
	a := newAdapter(t, nil)
	gen := func(mut func(r *providers.Request)) []byte {
		t.Helper()
		r := genReq()
		r.NegativePrompt, r.GuidanceScale, r.Steps, r.Quality, r.Style = "fog", f64(7.5), 30, "hd", "natural"
		if mut != nil {
			mut(r)
		}
		res, err := a.Generate(bg(), r)
		if err != nil {
			t.Fatal(err)
		}
		return res.Images[0].Data
	}
	first := gen(nil)
	if !bytes.Equal(first, gen(nil)) {
		t.Fatal("the same request and seed gave different bytes")
	}
	for name, mut := range map[string]func(r *providers.Request){
		"seed":     func(r *providers.Request) { r.Seed = seed(8) },
		"prompt":   func(r *providers.Request) { r.Prompt += "!" },
		"negative": func(r *providers.Request) { r.NegativePrompt = "rain" },
		"steps":    func(r *providers.Request) { r.Steps = 31 },
		"style":    func(r *providers.Request) { r.Style = "vivid" },
		"size":     func(r *providers.Request) { r.Width = 264 },
	} {
		if bytes.Equal(first, gen(mut)) {
			t.Errorf("changing the %s did not change the image", name)
		}
	}

	// Without a seed the sandbox picks one and returns it; sending it back reproduces the image.
	r := genReq()
	r.Seed, r.N = nil, 2
	res, err := a.Generate(bg(), r)
	if err != nil {
		t.Fatal(err)
	}
	s0, s1 := res.Images[0].Seed, res.Images[1].Seed
	if s0 == nil || s1 == nil || *s1 != *s0+1 || *s0 < 0 || *s0 >= 1<<53 {
		t.Fatalf("seeds = %v, %v: want s, s+1 with 0 <= s < 2^53", s0, s1)
	}
	r.Seed = seed(*s0)
	again, err := a.Generate(bg(), r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res.Images {
		if !bytes.Equal(res.Images[i].Data, again.Images[i].Data) {
			t.Fatalf("image %d: the returned seed did not reproduce the image", i)
		}
	}
}

func TestSizes(t *testing.T) {
	a := newAdapter(t, nil)
	for _, tc := range []struct {
		name   string
		model  string
		w, h   int
		ratio  string
		ww, wh int
	}{
		{"default", sandbox.ModelImage, 0, 0, "", 1024, 1024},
		{"smallest", sandbox.ModelImage, 64, 64, "", 64, 64},
		{"thin", sandbox.ModelSteps, 2048, 64, "", 2048, 64},
		{"tall", sandbox.ModelFixed, 64, 2048, "", 64, 2048},
		{"dall-e-3 wide", sandbox.ModelImage, 1792, 1024, "", 1792, 1024},
		{"free form", sandbox.ModelImage, 1000, 520, "", 1000, 520},
		{"16:9", sandbox.ModelImage, 0, 0, "16:9", 1024, 576},
		{"2:3", sandbox.ModelImage, 0, 0, "2:3", 680, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a.Generate(bg(), &providers.Request{Model: tc.model, Prompt: "sizes", Width: tc.w, Height: tc.h, AspectRatio: tc.ratio, Seed: seed(1)})
			if err != nil {
				t.Fatal(err)
			}
			o := res.Images[0]
			decode(t, o)
			if o.Width != tc.ww || o.Height != tc.wh {
				t.Fatalf("size = %dx%d, want %dx%d", o.Width, o.Height, tc.ww, tc.wh)
			}
		})
	}
}

func TestN(t *testing.T) {
	a := newAdapter(t, nil)
	r := genReq()
	r.N = 0
	res, err := a.Generate(bg(), r)
	if err != nil || len(res.Images) != 1 {
		t.Fatalf("n=0: %v images, err %v; want 1", len(res.Images), err)
	}
	r.N = 4
	res, err = a.Generate(bg(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 4 || res.Withheld != 0 {
		t.Fatalf("n=4 gave %d images, %d withheld", len(res.Images), res.Withheld)
	}
	for i, o := range res.Images {
		if *o.Seed != 7+int64(i) {
			t.Errorf("image %d seed = %d, want %d", i, *o.Seed, 7+i)
		}
		for j := range i {
			if bytes.Equal(o.Data, res.Images[j].Data) {
				t.Errorf("images %d and %d are identical", j, i)
			}
		}
		decode(t, o)
	}
	// A lone image with image i's seed shows the same picture (only its index label differs).
	one := genReq()
	one.Seed = res.Images[2].Seed
	single, err := a.Generate(bg(), one)
	if err != nil {
		t.Fatal(err)
	}
	x, y := decode(t, res.Images[2]), decode(t, single.Images[0])
	if nrgbaAt(x, 200, 200) != nrgbaAt(y, 200, 200) || nrgbaAt(x, 30, 250) != nrgbaAt(y, 30, 250) {
		t.Error("the same seed drew a different pattern")
	}
	r.N = 5
	_, err = a.Generate(bg(), r)
	wantKind(t, err, providers.KindInvalidRequest, "n")
}

func TestSeedWraps(t *testing.T) {
	a := newAdapter(t, nil)
	r := genReq()
	r.Seed, r.N, r.Width, r.Height = seed(1<<63-1), 2, 64, 64
	res, err := a.Generate(bg(), r)
	if err != nil {
		t.Fatal(err)
	}
	if *res.Images[0].Seed != 1<<63-1 || *res.Images[1].Seed != 0 {
		t.Fatalf("seeds = %d, %d; want the largest int64, then 0", *res.Images[0].Seed, *res.Images[1].Seed)
	}
}

func TestValidation(t *testing.T) {
	a := newAdapter(t, nil)
	src := providers.Image{Data: pngOf(t, 64, 64, func(x, y int) color.NRGBA { return color.NRGBA{1, 2, 3, 255} }), ContentType: "image/png"}
	for _, tc := range []struct {
		name  string
		op    providers.Operation
		mut   func(r *providers.Request)
		kind  providers.Kind
		param string
	}{
		{"unknown model", providers.OpGenerate, func(r *providers.Request) { r.Model = "dall-e-3" }, providers.KindModelNotFound, "model"},
		{"empty prompt", providers.OpGenerate, func(r *providers.Request) { r.Prompt = "  " }, providers.KindInvalidRequest, "prompt"},
		{"n too large", providers.OpGenerate, func(r *providers.Request) { r.N = 5 }, providers.KindInvalidRequest, "n"},
		{"size not a multiple of 8", providers.OpGenerate, func(r *providers.Request) { r.Width = 100 }, providers.KindInvalidRequest, "size"},
		{"size too large", providers.OpGenerate, func(r *providers.Request) { r.Width = 2056 }, providers.KindInvalidRequest, "size"},
		{"size too small", providers.OpGenerate, func(r *providers.Request) { r.Width, r.Height = 56, 56 }, providers.KindInvalidRequest, "size"},
		{"half a size", providers.OpGenerate, func(r *providers.Request) { r.Height = 0 }, providers.KindInvalidRequest, "size"},
		{"size and ratio", providers.OpGenerate, func(r *providers.Request) { r.AspectRatio = "1:1" }, providers.KindInvalidRequest, "aspect_ratio"},
		{"unknown ratio", providers.OpGenerate, func(r *providers.Request) { r.Width, r.Height, r.AspectRatio = 0, 0, "5:4" }, providers.KindInvalidRequest, "aspect_ratio"},
		{"ratio on a size-only model", providers.OpGenerate, func(r *providers.Request) {
			r.Model, r.Width, r.Height, r.AspectRatio = sandbox.ModelSteps, 0, 0, "1:1"
		}, providers.KindUnsupported, "aspect_ratio"},
		{"steps on the fixed model", providers.OpGenerate, func(r *providers.Request) { r.Model, r.Steps = sandbox.ModelFixed, 5 }, providers.KindUnsupported, "steps"},
		{"steps out of range", providers.OpGenerate, func(r *providers.Request) { r.Model, r.Steps = sandbox.ModelSteps, 51 }, providers.KindInvalidRequest, "steps"},
		{"guidance on the fixed model", providers.OpGenerate, func(r *providers.Request) { r.Model, r.GuidanceScale = sandbox.ModelFixed, f64(3) }, providers.KindUnsupported, "guidance_scale"},
		{"guidance out of range", providers.OpGenerate, func(r *providers.Request) { r.GuidanceScale = f64(20.5) }, providers.KindInvalidRequest, "guidance_scale"},
		{"strength out of range", providers.OpGenerate, func(r *providers.Request) { r.Strength = f64(1.5) }, providers.KindInvalidRequest, "strength"},
		{"negative seed", providers.OpGenerate, func(r *providers.Request) { r.Seed = seed(-1) }, providers.KindInvalidRequest, "seed"},
		{"unknown quality", providers.OpGenerate, func(r *providers.Request) { r.Quality = "ultra" }, providers.KindInvalidRequest, "quality"},
		{"quality on a model without", providers.OpGenerate, func(r *providers.Request) { r.Model, r.Quality = sandbox.ModelSteps, "hd" }, providers.KindUnsupported, "quality"},
		{"unknown style", providers.OpGenerate, func(r *providers.Request) { r.Style = "noir" }, providers.KindInvalidRequest, "style"},
		{"output_format", providers.OpGenerate, func(r *providers.Request) { r.OutputFormat = "webp" }, providers.KindUnsupported, "output_format"},
		{"background", providers.OpGenerate, func(r *providers.Request) { r.Background = "transparent" }, providers.KindUnsupported, "background"},
		{"moderation", providers.OpGenerate, func(r *providers.Request) { r.Moderation = "low" }, providers.KindUnsupported, "moderation"},
		{"output_compression", providers.OpGenerate, func(r *providers.Request) { r.OutputCompression = ptrInt(50) }, providers.KindUnsupported, "output_compression"},
		{"strength on a model without", providers.OpGenerate, func(r *providers.Request) { r.Model, r.Strength = sandbox.ModelSteps, f64(0.5) }, providers.KindUnsupported, "strength"},
		{"extension field", providers.OpGenerate, func(r *providers.Request) {
			r.Extra = map[string]json.RawMessage{"style_type": []byte(`"AUTO"`), "magic": []byte(`1`)}
		}, providers.KindUnsupported, "magic"},
		{"mask on generate", providers.OpGenerate, func(r *providers.Request) { r.Mask = &src }, providers.KindUnsupported, "mask"},
		{"reference on a model without", providers.OpGenerate, func(r *providers.Request) { r.Model, r.Images = sandbox.ModelSteps, []providers.Image{src} }, providers.KindUnsupported, "image"},
		{"too many references", providers.OpGenerate, func(r *providers.Request) { r.Images = []providers.Image{src, src, src, src, src} }, providers.KindInvalidRequest, "image"},
		{"reference not an image", providers.OpGenerate, func(r *providers.Request) { r.Images = []providers.Image{{Data: []byte("GIF89a nope")}} }, providers.KindInvalidRequest, "image"},
		{"edit on a generate-only model", providers.OpEdit, func(r *providers.Request) { r.Model, r.Images = sandbox.ModelSteps, []providers.Image{src} }, providers.KindUnsupported, "model"},
		{"edit without an image", providers.OpEdit, nil, providers.KindInvalidRequest, "image"},
		{"edit with a bad mask", providers.OpEdit, func(r *providers.Request) {
			r.Images, r.Mask = []providers.Image{src}, &providers.Image{Data: []byte("\x89PNG\r\n\x1a\n truncated")}
		}, providers.KindInvalidRequest, "mask"},
		{"variation of two images", providers.OpVariation, func(r *providers.Request) { r.Images = []providers.Image{src, src} }, providers.KindInvalidRequest, "image"},
		{"variation on a generate-only model", providers.OpVariation, func(r *providers.Request) { r.Model, r.Images = sandbox.ModelFixed, []providers.Image{src} }, providers.KindUnsupported, "model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := genReq()
			r.Operation = tc.op
			if tc.mut != nil {
				tc.mut(r)
			}
			_, err := providers.Do(bg(), a, r)
			wantKind(t, err, tc.kind, tc.param)
		})
	}
	// Values the catalog allows pass: "auto", the steps of a fixed-step model, the bounds.
	for _, mut := range []func(r *providers.Request){
		func(r *providers.Request) { r.Quality, r.Style = "auto", "auto" },
		func(r *providers.Request) { r.Model, r.Steps = sandbox.ModelFixed, 4 },
		func(r *providers.Request) { r.Model, r.Steps, r.GuidanceScale = sandbox.ModelSteps, 50, f64(20) },
		func(r *providers.Request) { r.User, r.PromptEnhancement, r.ResponseFormat = "u-1", boolp(false), "url" },
		func(r *providers.Request) { r.Strength, r.Images = f64(0), []providers.Image{src} },
	} {
		r := genReq()
		mut(r)
		if _, err := a.Generate(bg(), r); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

func TestStandardSizes(t *testing.T) {
	a := newAdapter(t, nil)
	if testing.Short() {
		t.Skip("renders large images")
	}
	for _, s := range providers.MustSizes("256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536") {
		res, err := a.Generate(bg(), &providers.Request{Model: sandbox.ModelImage, Prompt: "openai sizes", Width: s.W, Height: s.H})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if o := res.Images[0]; o.Width != s.W || o.Height != s.H {
			t.Fatalf("%s came back %dx%d", s, o.Width, o.Height)
		}
	}
}

func TestEditWithMask(t *testing.T) {
	a := newAdapter(t, nil)
	const w, h = 256, 256
	srcColor := func(x, y int) color.NRGBA { return color.NRGBA{uint8(x), uint8(y), 77, 255} }
	src := pngOf(t, w, h, srcColor)
	// The left half of the mask is transparent: that is the area to edit.
	inArea := func(x, y int) bool { return x < w/2 }
	mask := pngOf(t, w, h, func(x, y int) color.NRGBA {
		if inArea(x, y) {
			return color.NRGBA{0, 0, 0, 0}
		}
		return color.NRGBA{0, 0, 0, 255}
	})
	res, err := a.Edit(bg(), &providers.Request{Model: sandbox.ModelImage, Prompt: "paint the left half", N: 2, Seed: seed(3),
		Images: []providers.Image{{Data: src, ContentType: "image/png"}}, Mask: &providers.Image{Data: mask, ContentType: "image/png"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || bytes.Equal(res.Images[0].Data, res.Images[1].Data) {
		t.Fatal("want two different edits")
	}
	for _, o := range res.Images {
		out := decode(t, o)
		if o.Width != w || o.Height != h {
			t.Fatalf("edit is %dx%d, want the source's %dx%d", o.Width, o.Height, w, h)
		}
		changed, area := 0, 0
		for y := range h {
			for x := range w {
				got := nrgbaAt(out, x, y)
				if !inArea(x, y) {
					if got != srcColor(x, y) {
						t.Fatalf("pixel (%d,%d) outside the mask changed: %v, want %v", x, y, got, srcColor(x, y))
					}
					continue
				}
				area++
				if got != srcColor(x, y) {
					changed++
				}
			}
		}
		if changed < area*95/100 {
			t.Fatalf("only %d of %d pixels inside the mask were repainted", changed, area)
		}
	}
}

func TestEditOwnTransparency(t *testing.T) {
	a := newAdapter(t, nil)
	const w, h = 128, 96
	hole := func(x, y int) bool { return x >= 32 && x < 96 && y >= 40 && y < 80 }
	srcColor := func(x, y int) color.NRGBA {
		if hole(x, y) {
			return color.NRGBA{}
		}
		return color.NRGBA{200, 10, 10, 255}
	}
	res, err := a.Edit(bg(), &providers.Request{Model: sandbox.ModelImage, Prompt: "fill the hole", Seed: seed(1),
		Images: []providers.Image{{Data: pngOf(t, w, h, srcColor)}}})
	if err != nil {
		t.Fatal(err)
	}
	out := decode(t, res.Images[0])
	for y := range h {
		for x := range w {
			got := nrgbaAt(out, x, y)
			switch {
			case hole(x, y) && got.A != 255:
				t.Fatalf("pixel (%d,%d) in the transparent area was not repainted: %v", x, y, got)
			case !hole(x, y) && got != srcColor(x, y):
				t.Fatalf("pixel (%d,%d) outside the transparent area changed: %v", x, y, got)
			}
		}
	}
}

func TestEditSizes(t *testing.T) {
	a := newAdapter(t, nil)
	src := pngOf(t, 64, 64, func(x, y int) color.NRGBA {
		if x < 32 {
			return color.NRGBA{}
		}
		return color.NRGBA{0, 0, 255, 255}
	})
	res, err := a.Edit(bg(), &providers.Request{Model: sandbox.ModelImage, Prompt: "grow", Width: 128, Height: 128, Images: []providers.Image{{Data: src}}})
	if err != nil {
		t.Fatal(err)
	}
	out := decode(t, res.Images[0])
	if out.Bounds().Dx() != 128 {
		t.Fatalf("edit ignored the requested size: %v", out.Bounds())
	}
	if got := nrgbaAt(out, 127, 127); got != (color.NRGBA{0, 0, 255, 255}) {
		t.Fatalf("a kept pixel of the scaled source is %v", got)
	}
	if got := nrgbaAt(out, 10, 127); got.A != 255 {
		t.Fatalf("the transparent half was not repainted: %v", got)
	}

	mask := pngOf(t, 32, 32, func(x, y int) color.NRGBA { return color.NRGBA{} })
	_, err = a.Edit(bg(), &providers.Request{Model: sandbox.ModelImage, Prompt: "x", Images: []providers.Image{{Data: src}}, Mask: &providers.Image{Data: mask}})
	wantKind(t, err, providers.KindInvalidRequest, "mask")
}

func TestVariation(t *testing.T) {
	a := newAdapter(t, nil)
	const w, h = 160, 120
	srcColor := func(x, y int) color.NRGBA {
		if y > 100 && x < 20 {
			return color.NRGBA{}
		}
		return color.NRGBA{220, 40, 40, 255}
	}
	src := providers.Image{Data: pngOf(t, w, h, srcColor), ContentType: "image/png"}
	vary := func(s int64, n int) *providers.Result {
		t.Helper()
		res, err := a.Vary(bg(), &providers.Request{Model: sandbox.ModelImage, N: n, Seed: seed(s), Images: []providers.Image{src}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := vary(11, 3)
	if len(res.Images) != 3 {
		t.Fatalf("%d variations, want 3", len(res.Images))
	}
	if !bytes.Equal(res.Images[0].Data, vary(11, 3).Images[0].Data) {
		t.Fatal("variation is not deterministic")
	}
	hues := map[color.NRGBA]bool{}
	for _, o := range res.Images {
		out := decode(t, o)
		if o.Width != w || o.Height != h {
			t.Fatalf("variation is %dx%d, want the source's size", o.Width, o.Height)
		}
		// Below the caption: the colour is hue-shifted, the transparent corner stays transparent.
		c := nrgbaAt(out, 120, 110)
		if c == srcColor(120, 110) {
			t.Fatal("the variation kept the source colour")
		}
		hues[c] = true
		if a := nrgbaAt(out, 5, 115).A; a != 0 {
			t.Fatalf("alpha changed: %d", a)
		}
	}
	if len(hues) < 2 {
		t.Fatal("every variation has the same hue")
	}
	// Requested size wins over the source's.
	r, err := a.Vary(bg(), &providers.Request{Model: sandbox.ModelImage, Width: 64, Height: 64, Images: []providers.Image{src}})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Images[0]; o.Width != 64 || o.Height != 64 {
		t.Fatalf("variation is %dx%d, want 64x64", o.Width, o.Height)
	}
}

func TestLargeSourceIsFitted(t *testing.T) {
	a := newAdapter(t, nil)
	src := pngOf(t, 3000, 100, func(x, y int) color.NRGBA { return color.NRGBA{9, 9, 9, 255} })
	res, err := a.Vary(bg(), &providers.Request{Model: sandbox.ModelImage, Images: []providers.Image{{Data: src}}})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Images[0]; o.Width != 2048 || o.Height != 68 {
		t.Fatalf("a 3000x100 source gave %dx%d, want 2048x68", o.Width, o.Height)
	}
}

func TestReferenceImage(t *testing.T) {
	a := newAdapter(t, nil)
	red := providers.Image{Data: pngOf(t, 50, 50, func(x, y int) color.NRGBA { return color.NRGBA{255, 0, 0, 255} })}
	gen := func(strength *float64, refs ...providers.Image) image.Image {
		t.Helper()
		r := genReq()
		r.Strength, r.Images = strength, refs
		res, err := a.Generate(bg(), r)
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, res.Images[0])
	}
	plain, none, full := gen(nil), gen(f64(0), red), gen(f64(1), red)
	for _, p := range []image.Point{{200, 200}, {10, 250}, {250, 100}} {
		if nrgbaAt(plain, p.X, p.Y) != nrgbaAt(none, p.X, p.Y) {
			t.Errorf("strength 0 changed pixel %v", p)
		}
		if got := nrgbaAt(full, p.X, p.Y); got != (color.NRGBA{255, 0, 0, 255}) {
			t.Errorf("strength 1 pixel %v = %v, want the reference's red", p, got)
		}
	}
	half := nrgbaAt(gen(nil, red), 200, 200)
	if half == nrgbaAt(plain, 200, 200) || half == (color.NRGBA{255, 0, 0, 255}) {
		t.Errorf("the default strength did not blend: %v", half)
	}
}

func TestRevisedPrompt(t *testing.T) {
	a := newAdapter(t, nil)
	r := genReq()
	res, _ := a.Generate(bg(), r)
	if res.Images[0].RevisedPrompt != "" {
		t.Fatal("a revised prompt without prompt enhancement")
	}
	r.PromptEnhancement = boolp(true)
	res, err := a.Generate(bg(), r)
	if err != nil {
		t.Fatal(err)
	}
	if rp := res.Images[0].RevisedPrompt; !strings.HasPrefix(rp, r.Prompt) || rp == r.Prompt {
		t.Fatalf("revised prompt = %q", rp)
	}
}

func TestLatencyAndCancellation(t *testing.T) {
	slow := newAdapter(t, map[string]string{"latency": "10s"})

	ctx, cancel := context.WithCancel(bg())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	_, err := slow.Generate(ctx, genReq())
	wantKind(t, err, providers.KindCanceled, "")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a canceled call took %v", d)
	}

	ctx, cancel = context.WithTimeout(bg(), 30*time.Millisecond)
	defer cancel()
	_, err = slow.Generate(ctx, genReq())
	wantKind(t, err, providers.KindUpstreamTimeout, "")

	// The channel's own timeout bounds the simulated latency too.
	timed, err := sandbox.New(providers.Config{Name: "sandbox-test", Timeout: 30 * time.Millisecond, Options: map[string]string{"latency": "10s"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = timed.Generate(bg(), genReq())
	wantKind(t, err, providers.KindUpstreamTimeout, "")

	// An already canceled context fails even without latency.
	ctx, cancel = context.WithCancel(bg())
	cancel()
	_, err = newAdapter(t, nil).Generate(ctx, genReq())
	wantKind(t, err, providers.KindCanceled, "")

	// Latency from the option and from a directive add up; the call then succeeds.
	a := newAdapter(t, map[string]string{"latency": "20ms"})
	r := genReq()
	r.Prompt += " [sandbox:latency=30ms]"
	start = time.Now()
	if _, err := a.Generate(bg(), r); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("the call took %v, less than its simulated latency", d)
	}
}

func TestFailDirective(t *testing.T) {
	a := newAdapter(t, nil)
	kinds := []providers.Kind{
		providers.KindInvalidRequest, providers.KindUnsupported, providers.KindContentPolicy, providers.KindModelNotFound,
		providers.KindTooLarge, providers.KindUnauthenticated, providers.KindPermissionDenied, providers.KindRateLimited,
		providers.KindQuotaExceeded, providers.KindUpstreamAuth, providers.KindUpstreamRateLimited,
		providers.KindUpstreamUnavailable, providers.KindUpstreamTimeout, providers.KindUpstreamBadResponse,
		providers.KindInternal, providers.KindUnavailable, providers.KindCanceled,
	}
	for _, k := range kinds {
		for _, op := range []providers.Operation{providers.OpGenerate, providers.OpEdit} {
			r := genReq()
			r.Operation = op
			r.Prompt = "a secret plan to take over the world [sandbox:fail=" + string(k) + "] please"
			if op == providers.OpEdit {
				r.Images = []providers.Image{{Data: pngOf(t, 8, 8, func(x, y int) color.NRGBA { return color.NRGBA{} })}}
			}
			_, err := providers.Do(bg(), a, r)
			pe := wantKind(t, err, k, "")
			if strings.Contains(pe.Message, "secret plan") {
				t.Fatalf("the prompt reached the message: %q", pe.Message)
			}
			if k == providers.KindUpstreamRateLimited && pe.RetryAfter != time.Second {
				t.Fatalf("RetryAfter = %v", pe.RetryAfter)
			}
			if k == providers.KindContentPolicy && pe.Param != "prompt" {
				t.Fatalf("content policy param = %q", pe.Param)
			}
		}
	}
	for _, p := range []string{
		"[sandbox:fail=everything]", "[sandbox:fail=]", "[sandbox:fail", "[sandbox:explode=1]", "[sandbox:withhold=-1]",
		"[sandbox:withhold=9]", "[sandbox:withhold=x]", "[sandbox:latency=forever]", "[sandbox:latency=2m]",
		"[sandbox:withhold=1][sandbox:withhold=1]", "[sandbox:]",
	} {
		r := genReq()
		r.Prompt = "x " + p
		_, err := a.Generate(bg(), r)
		wantKind(t, err, providers.KindInvalidRequest, "prompt")
	}
}

func TestFailOption(t *testing.T) {
	a := newAdapter(t, map[string]string{"fail": "upstream_unavailable"})
	_, err := a.Generate(bg(), genReq())
	pe := wantKind(t, err, providers.KindUpstreamUnavailable, "")
	if pe.Param != "" {
		t.Fatalf("a channel failure names param %q", pe.Param)
	}
	src := providers.Image{Data: pngOf(t, 8, 8, func(x, y int) color.NRGBA { return color.NRGBA{A: 255} })}
	_, err = a.Vary(bg(), &providers.Request{Model: sandbox.ModelImage, Images: []providers.Image{src}})
	wantKind(t, err, providers.KindUpstreamUnavailable, "")
	// Validation still comes first.
	_, err = a.Generate(bg(), &providers.Request{Model: "nope", Prompt: "x"})
	wantKind(t, err, providers.KindModelNotFound, "model")
}

func TestWithhold(t *testing.T) {
	a := newAdapter(t, nil)
	r := genReq()
	r.N, r.Prompt = 4, "four cats [sandbox:withhold=1] and [sandbox:latency=1ms]"
	res, err := a.Generate(bg(), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 3 || res.Withheld != 1 {
		t.Fatalf("got %d images and %d withheld, want 3 and 1", len(res.Images), res.Withheld)
	}
	for i, o := range res.Images {
		if *o.Seed != 7+int64(i) {
			t.Fatalf("delivered image %d has seed %d", i, *o.Seed)
		}
	}
	r.Prompt = "[sandbox:withhold=0] fine"
	if res, err := a.Generate(bg(), r); err != nil || len(res.Images) != 4 || res.Withheld != 0 {
		t.Fatalf("withhold=0: %v", err)
	}
	r.Prompt = "[sandbox:withhold=4] all of them"
	_, err = a.Generate(bg(), r)
	wantKind(t, err, providers.KindContentPolicy, "prompt")
}

func TestMaxResponseBytes(t *testing.T) {
	a, err := sandbox.New(providers.Config{Name: "sandbox-test", MaxResponseBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Generate(bg(), genReq())
	wantKind(t, err, providers.KindUpstreamBadResponse, "")
}

func TestConcurrentUse(t *testing.T) {
	a := newAdapter(t, nil)
	want, err := a.Generate(bg(), genReq())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			res, err := a.Generate(bg(), genReq())
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(res.Images[0].Data, want.Images[0].Data) {
				t.Error("concurrent calls rendered different bytes")
			}
		})
	}
	wg.Wait()
}

// TestGolden pins the exact bytes of one image per operation: a change to the renderer shows up
// here (run with -update when it is intended, and look at the new files).
func TestGolden(t *testing.T) {
	a := newAdapter(t, nil)
	src := providers.Image{Data: pngOf(t, 96, 96, func(x, y int) color.NRGBA {
		if (x-48)*(x-48)+(y-60)*(y-60) < 600 {
			return color.NRGBA{}
		}
		return color.NRGBA{uint8(x * 2), uint8(y * 2), 128, 255}
	}), ContentType: "image/png"}
	for _, tc := range []struct {
		file string
		req  *providers.Request
	}{
		{"generate.png", &providers.Request{Operation: providers.OpGenerate, Model: sandbox.ModelSteps, Prompt: "A golden retriever surfing a wave at sunset, photorealistic",
			NegativePrompt: "blurry", N: 1, Width: 320, Height: 192, Seed: seed(123456789), Steps: 28, GuidanceScale: f64(4.5)}},
		{"edit.png", &providers.Request{Operation: providers.OpEdit, Model: sandbox.ModelImage, Prompt: "a full moon", N: 1, Seed: seed(5), Images: []providers.Image{src}}},
		{"variation.png", &providers.Request{Operation: providers.OpVariation, Model: sandbox.ModelImage, N: 1, Seed: seed(9), Images: []providers.Image{src}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res, err := providers.Do(bg(), a, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, tc.file, res.Images[0].Data)
		})
	}
}

func TestEditTintsWithFurtherImages(t *testing.T) {
	a := newAdapter(t, nil)
	src := pngOf(t, 64, 64, func(x, y int) color.NRGBA {
		if y >= 32 {
			return color.NRGBA{}
		}
		return color.NRGBA{0, 200, 0, 255}
	})
	red := pngOf(t, 16, 16, func(x, y int) color.NRGBA { return color.NRGBA{255, 0, 0, 255} })
	edit := func(imgs ...[]byte) image.Image {
		t.Helper()
		r := &providers.Request{Model: sandbox.ModelImage, Prompt: "tint", Seed: seed(2), Strength: f64(1)}
		for _, b := range imgs {
			r.Images = append(r.Images, providers.Image{Data: b})
		}
		res, err := a.Edit(bg(), r)
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, res.Images[0])
	}
	plain, tinted := edit(src), edit(src, red)
	if got := nrgbaAt(tinted, 40, 60); got != (color.NRGBA{255, 0, 0, 255}) {
		t.Fatalf("the repainted area at strength 1 is %v, want the tint image's red", got)
	}
	if nrgbaAt(plain, 40, 60) == nrgbaAt(tinted, 40, 60) {
		t.Fatal("the further image did not tint the repainted area")
	}
	if got := nrgbaAt(tinted, 40, 10); got != (color.NRGBA{0, 200, 0, 255}) {
		t.Fatalf("a kept pixel changed to %v", got)
	}
}
