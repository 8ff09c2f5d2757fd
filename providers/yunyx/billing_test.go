package yunyx

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/providers"
)

// byID returns the catalog model id.
func byID(id string) *providers.Model {
	for _, m := range Catalog() {
		if m.ID == id {
			return &m
		}
	}
	return nil
}

// TestBilledParametersAreSent runs a table of requests for every catalog model through the adapter
// against the fake and checks that billing prices what the upstream was told and made: image_size
// on the wire is the quote's Width×Height (the fake requires the field and applies no default of
// ours), and the fake generated that size. yunyx has no steps field, so no model may be priced by
// the step.
func TestBilledParametersAreSent(t *testing.T) {
	fx := newFixture(t)
	engine, err := billing.New("CNY", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Catalog() {
		if m.Price.Unit != providers.PerImage {
			t.Errorf("%s: yunyx documents no steps, yet the price is per %s", m.ID, m.Price.Unit)
		}
		cases := []providers.Request{{Model: m.ID, Prompt: "an island near sea"}}
		for _, s := range m.Size.Sizes {
			cases = append(cases, providers.Request{Model: m.ID, Prompt: "an island near sea", Width: s.W, Height: s.H})
		}
		if m.FixedSteps > 0 {
			cases = append(cases, providers.Request{Model: m.ID, Prompt: "an island near sea", Steps: m.FixedSteps})
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%dx%d/steps %d", m.ID, c.Width, c.Height, c.Steps), func(t *testing.T) {
				q, err := engine.Quote(&m, &c)
				if err != nil {
					t.Fatalf("Quote: %v", err)
				}
				req := c
				if _, err := providers.Do(context.Background(), fx.a, &req); err != nil {
					t.Fatalf("generate: %v", err)
				}
				var wire map[string]any
				body := fx.f.LastRequest().Body
				if err := json.Unmarshal(body, &wire); err != nil {
					t.Fatal(err)
				}
				billed := fmt.Sprintf("%dx%d", q.Width, q.Height)
				if wire["image_size"] != billed || q.SizeEstimated {
					t.Errorf("image_size %v on the wire, %s billed (%s): %s", wire["image_size"], billed, q.Rule(), body)
				}
				if _, ok := wire["num_inference_steps"]; ok {
					t.Errorf("num_inference_steps sent: %s", body)
				}
				ran, ok := fx.f.LastGeneration()
				if !ok || ran.Model != m.ID || fmt.Sprintf("%dx%d", ran.Width, ran.Height) != billed || ran.N != q.Images {
					t.Errorf("the upstream made %+v, %d × %s billed", ran, q.Images, billed)
				}
			})
		}
	}
}

// TestPriceSources: seed 003 states no price, so every yunyx price is marked assumed.
func TestPriceSources(t *testing.T) {
	for _, m := range Catalog() {
		if m.Price.IsZero() || m.Price.Source != providers.Assumed {
			t.Errorf("%s: price %+v, want a price with source %q (seed 003 gives none)", m.ID, m.Price, providers.Assumed)
		}
	}
}

// TestSeed003Contract checks the adapter and fake against seed 003's own statements: the
// image_size enum, the seed range 0-9999999999, prompt_enhancement, and "生成的图片 URL 有效期为 1
// 小时" (URLs valid for one hour).
func TestSeed003Contract(t *testing.T) {
	fx := newFixture(t)
	enum := []string{"1024x1024", "512x1024", "768x512", "768x1024", "1024x576", "576x1024"}
	for _, m := range Catalog() {
		if len(m.Size.Sizes) != len(enum) || m.Size.FreeForm() || m.Size.Default != (providers.Size{W: 1024, H: 1024}) {
			t.Errorf("%s: size rule %+v, want seed 003's enum with default 1024x1024", m.ID, m.Size)
		}
		for i, s := range m.Size.Sizes {
			if s.String() != enum[i] {
				t.Errorf("%s: size %d is %s, want %s", m.ID, i, s, enum[i])
			}
		}
		if m.SeedMin != 0 || m.SeedMax != 9_999_999_999 || !m.Params.Has(providers.ParamPromptEnhancement) || m.URLTTL != time.Hour {
			t.Errorf("%s: seed %d–%d, params %v, url ttl %v", m.ID, m.SeedMin, m.SeedMax, m.Params.Names(), m.URLTTL)
		}
	}
	for _, seed := range []int64{0, 9_999_999_999} {
		res, err := fx.a.Generate(context.Background(), &providers.Request{Model: FLUX1Schnell, Prompt: "x", Seed: i64(seed),
			PromptEnhancement: boolp(true), Width: 576, Height: 1024})
		if err != nil {
			t.Fatal(err)
		}
		if im := res.Images[0]; im.Seed == nil || *im.Seed != seed || !im.Expires.Equal(fx.clock.Now().Add(time.Hour)) {
			t.Errorf("seed %d: %+v", seed, im)
		}
		if ran, _ := fx.f.LastGeneration(); ran.Seed != seed || ran.Width != 576 || ran.Height != 1024 {
			t.Errorf("seed %d: the fake ran %+v", seed, ran)
		}
	}
}
