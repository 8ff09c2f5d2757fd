package billing

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/ideogram"
	"github.com/imagegw/imagegw/providers/sandbox"
	"github.com/imagegw/imagegw/providers/siliconflow"
)

func mustEngine(t testing.TB, currency string, rates map[string]string) *Engine {
	t.Helper()
	e, err := New(currency, rates)
	if err != nil {
		t.Fatalf("New(%s, %v): %v", currency, rates, err)
	}
	return e
}

func catalogModel(t testing.TB, models []providers.Model, id string) *providers.Model {
	t.Helper()
	for i := range models {
		if models[i].ID == id {
			return &models[i]
		}
	}
	t.Fatalf("model %q is not in the catalog", id)
	return nil
}

func extra(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		b, _ := json.Marshal(kv[i+1])
		m[kv[i]] = b
	}
	return m
}

func amt(s string) money.Amount { return money.MustParse(s) }

// TestSeedExamples checks every worked example and list price of the seeds against the
// catalogs the adapters ship, to the micro-unit.
func TestSeedExamples(t *testing.T) {
	cny := mustEngine(t, "CNY", map[string]string{"USD": "7.2"})
	usd := mustEngine(t, "USD", map[string]string{"CNY": "0.14"})
	sf := siliconflow.Catalog()
	ig := ideogram.Catalog()
	type tc struct {
		name     string
		engine   *Engine
		model    *providers.Model
		req      providers.Request
		perImage string
		total    string
	}
	turbo := catalogModel(t, sf, siliconflow.SD35LargeTurbo)
	fluxPro := catalogModel(t, sf, siliconflow.FLUX1Pro)
	v3 := catalogModel(t, ig, ideogram.ModelV3)
	cases := []tc{
		// Seed 000 §3: (1024*512)/(1024*1024) * 4 * 0.0032 = 0.0064 yuan.
		{"seed000 per MP-step 1024x512 4 steps", cny, turbo, providers.Request{Width: 1024, Height: 512, N: 1}, "0.0064", "0.0064"},
		{"seed000 per MP-step, 4 images", cny, turbo, providers.Request{Width: 1024, Height: 512, N: 4}, "0.0064", "0.0256"},
		{"seed000 per MP-step in USD at 0.14", usd, turbo, providers.Request{Width: 1024, Height: 512, N: 1}, "0.000896", "0.000896"},
		{"seed000 per MP-step default size 1024x1024", cny, turbo, providers.Request{N: 1}, "0.0128", "0.0128"},
		// Seed 000 §3: ¥0.37/Image for FLUX.1-pro, "unrelated to the pixel size and the number of steps".
		{"seed000 FLUX.1-pro 1024x512", cny, fluxPro, providers.Request{Width: 1024, Height: 512, Steps: 4, N: 1}, "0.37", "0.37"},
		{"seed000 FLUX.1-pro 2048x1152", cny, fluxPro, providers.Request{Width: 2048, Height: 1152, N: 1}, "0.37", "0.37"},
		{"seed000 FLUX.1-pro no size", cny, fluxPro, providers.Request{N: 2}, "0.37", "0.74"},
		{"seed000 FLUX.1-pro in USD", usd, fluxPro, providers.Request{N: 1}, "0.0518", "0.0518"},
		// Seed 002, V3 计价: Generate Turbo $0.03, Default $0.06, Quality $0.09; Edit Turbo $0.06 …
		{"seed002 v3 generate TURBO", usd, v3, providers.Request{Operation: providers.OpGenerate, Extra: extra("rendering_speed", "TURBO"), N: 2}, "0.03", "0.06"},
		{"seed002 v3 generate DEFAULT", usd, v3, providers.Request{Operation: providers.OpGenerate, Extra: extra("rendering_speed", "DEFAULT"), N: 1}, "0.06", "0.06"},
		{"seed002 v3 generate QUALITY", usd, v3, providers.Request{Operation: providers.OpGenerate, Extra: extra("rendering_speed", "QUALITY"), N: 8}, "0.09", "0.72"},
		{"seed002 v3 generate speed in lower case", usd, v3, providers.Request{Operation: providers.OpGenerate, Extra: extra("rendering_speed", "quality"), N: 1}, "0.09", "0.09"},
		{"seed002 v3 generate no speed is DEFAULT", usd, v3, providers.Request{Operation: providers.OpGenerate, N: 1}, "0.06", "0.06"},
		{"seed002 v3 remix TURBO", usd, v3, providers.Request{Operation: providers.OpRemix, Extra: extra("rendering_speed", "TURBO"), N: 1}, "0.03", "0.03"},
		{"seed002 v3 edit TURBO", usd, v3, providers.Request{Operation: providers.OpEdit, Extra: extra("rendering_speed", "TURBO"), N: 1}, "0.06", "0.06"},
		{"seed002 v3 reframe QUALITY", usd, v3, providers.Request{Operation: providers.OpReframe, Extra: extra("rendering_speed", "QUALITY"), N: 1}, "0.09", "0.09"},
		{"seed002 v3 replace background DEFAULT", usd, v3, providers.Request{Operation: providers.OpReplaceBackground, Extra: extra("rendering_speed", "DEFAULT"), N: 1}, "0.06", "0.06"},
		{"seed002 v3 quality high is QUALITY", usd, v3, providers.Request{Operation: providers.OpGenerate, Quality: "high", N: 1}, "0.09", "0.09"},
		{"seed002 v3 quality low is TURBO", usd, v3, providers.Request{Operation: providers.OpEdit, Quality: "low", N: 2}, "0.06", "0.12"},
		{"seed002 upscale", usd, v3, providers.Request{Operation: providers.OpUpscale, N: 1}, "0.06", "0.06"},
		{"seed002 v3 generate QUALITY in CNY at 7.2", cny, v3, providers.Request{Extra: extra("rendering_speed", "QUALITY"), N: 1}, "0.648", "0.648"},
		// Seed 002, V2 & V1 计价.
		{"seed002 2a", usd, catalogModel(t, ig, ideogram.ModelV2A), providers.Request{N: 1}, "0.04", "0.04"},
		{"seed002 2a Turbo", usd, catalogModel(t, ig, ideogram.ModelV2ATurbo), providers.Request{N: 1}, "0.025", "0.025"},
		{"seed002 2.0", usd, catalogModel(t, ig, ideogram.ModelV2), providers.Request{N: 1}, "0.08", "0.08"},
		{"seed002 2.0 Turbo", usd, catalogModel(t, ig, ideogram.ModelV2Turbo), providers.Request{Operation: providers.OpRemix, N: 1}, "0.05", "0.05"},
		{"seed002 1.0", usd, catalogModel(t, ig, ideogram.ModelV1), providers.Request{N: 1, AspectRatio: "16:9"}, "0.06", "0.06"},
		{"seed002 1.0 Turbo", usd, catalogModel(t, ig, ideogram.ModelV1Turbo), providers.Request{N: 3}, "0.02", "0.06"},
		{"seed002 2.0 Edit", usd, catalogModel(t, ig, ideogram.ModelV2), providers.Request{Operation: providers.OpEdit, N: 1}, "0.08", "0.08"},
		{"seed002 2.0 Turbo Edit", usd, catalogModel(t, ig, ideogram.ModelV2Turbo), providers.Request{Operation: providers.OpEdit, N: 1}, "0.05", "0.05"},
		{"seed002 legacy upscale", usd, catalogModel(t, ig, ideogram.ModelV1), providers.Request{Operation: providers.OpUpscale, N: 1}, "0.06", "0.06"},
		{"seed002 2a Turbo in CNY", cny, catalogModel(t, ig, ideogram.ModelV2ATurbo), providers.Request{N: 1}, "0.18", "0.18"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := c.engine.Quote(c.model, &c.req)
			if err != nil {
				t.Fatalf("Quote: %v", err)
			}
			if q.PerImage != amt(c.perImage) || q.Total != amt(c.total) {
				t.Errorf("per image %s total %s, want %s and %s (rule %q)", q.PerImage, q.Total, c.perImage, c.total, q.Rule())
			}
			if q.Currency != c.engine.Currency() {
				t.Errorf("currency %s, want %s", q.Currency, c.engine.Currency())
			}
		})
	}
}

// TestSandboxSeedExample: the sandbox's fixed-step model reproduces seed 000's example.
func TestSandboxSeedExample(t *testing.T) {
	p, err := providers.New("sandbox", providers.Config{Name: "sandbox"})
	if err != nil {
		t.Fatal(err)
	}
	m := catalogModel(t, p.Models(), sandbox.ModelFixed)
	q, err := mustEngine(t, "CNY", nil).Quote(m, &providers.Request{Width: 1024, Height: 512, N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if q.Total != amt("0.0064") || q.Steps != 4 {
		t.Errorf("sandbox-fixed 1024x512: %s at %d steps, want 0.0064 at 4 (%s)", q.Total, q.Steps, q.Rule())
	}
	want := "CNY 0.0032 per megapixel-step × 0.5 MP (1024x512) × 4 steps = CNY 0.0064 per image"
	if q.Rule() != want {
		t.Errorf("rule %q, want %q", q.Rule(), want)
	}
}

// tiered is a DALL·E 3-shaped price: hd and standard by size, in USD.
var tiered = providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: amt("0.04"), Tiers: []providers.PriceTier{
	{Quality: "hd", Size: "1024x1024", Amount: amt("0.08")},
	{Quality: "hd", Size: "1792x1024", Amount: amt("0.12")},
	{Quality: "hd", Amount: amt("0.08")},
	{Size: "1024x1024", Amount: amt("0.04")},
	{Size: "1792x1024", Amount: amt("0.08")},
	{Operation: providers.OpEdit, Amount: amt("0.5")},
}}

func TestRules(t *testing.T) {
	usd := mustEngine(t, "USD", map[string]string{"CNY": "0.14", "EUR": "1.1"})
	sq := providers.Size{W: 1024, H: 1024}
	type tc struct {
		name  string
		model providers.Model
		req   providers.Request
		total string
		tier  int
		check func(t *testing.T, q Quote)
	}
	cases := []tc{
		{"tier hd by size", providers.Model{Price: tiered, Size: providers.SizeRule{Default: sq}},
			providers.Request{Quality: "hd", Width: 1792, Height: 1024, N: 1}, "0.12", 1, nil},
		{"tier hd, quality case-insensitive", providers.Model{Price: tiered, Size: providers.SizeRule{Default: sq}},
			providers.Request{Quality: "HD", Width: 1792, Height: 1024, N: 1}, "0.12", 1, nil},
		{"tier hd at the default size", providers.Model{Price: tiered, Size: providers.SizeRule{Default: sq}},
			providers.Request{Quality: "hd", N: 1}, "0.08", 0, nil},
		{"tier hd at an unlisted size", providers.Model{Price: tiered},
			providers.Request{Quality: "hd", Width: 1024, Height: 1792, N: 1}, "0.08", 2, nil},
		{"tier standard by size", providers.Model{Price: tiered},
			providers.Request{Quality: "standard", Width: 1792, Height: 1024, N: 2}, "0.16", 4, nil},
		{"no tier matches: base amount", providers.Model{Price: tiered},
			providers.Request{Width: 512, Height: 512, N: 1}, "0.04", -1, nil},
		{"tier by operation", providers.Model{Price: tiered},
			providers.Request{Operation: providers.OpEdit, Width: 512, Height: 512, N: 1}, "0.5", 5, nil},
		{"rendering_speed wins over quality", providers.Model{Price: tiered},
			providers.Request{Quality: "standard", Extra: extra("rendering_speed", "hd"), Width: 1792, Height: 1024, N: 1}, "0.12", 1, nil},
		{"rendering_speed that is not a string is ignored", providers.Model{Price: tiered},
			providers.Request{Quality: "hd", Extra: map[string]json.RawMessage{"rendering_speed": json.RawMessage(`3`)}, Width: 1792, Height: 1024, N: 1}, "0.12", 1, nil},
		{"per megapixel", providers.Model{Price: providers.Price{Unit: providers.PerMegapixel, Currency: "USD", Amount: amt("0.01")}},
			providers.Request{Width: 1536, Height: 1024, N: 1}, "0.015", -1, func(t *testing.T, q Quote) {
				if q.Megapixels() != "1.5" {
					t.Errorf("megapixels %s, want 1.5", q.Megapixels())
				}
			}},
		{"per megapixel ignores steps", providers.Model{FixedSteps: 50, Price: providers.Price{Unit: providers.PerMegapixel, Currency: "EUR", Amount: amt("0.02")}},
			providers.Request{Width: 2048, Height: 2048, N: 3}, "0.264", -1, nil}, // 0.02 × 4 MP × 1.1 × 3
		{"per MP-step: fixed steps beat the request", providers.Model{FixedSteps: 4, DefaultSteps: 20, Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: amt("0.0032")}},
			providers.Request{Width: 1024, Height: 1024, Steps: 30, N: 1}, "0.001792", -1, func(t *testing.T, q Quote) {
				if q.Steps != 4 {
					t.Errorf("steps %d, want 4", q.Steps)
				}
			}},
		{"per MP-step: requested steps", providers.Model{DefaultSteps: 20, MaxSteps: 50, Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: amt("0.0075")}},
			providers.Request{Width: 768, Height: 512, Steps: 30, N: 1}, "0.011813", -1, nil}, // 0.0075 × 0.375 × 30 × 0.14 = 0.0118125, half up
		{"per MP-step: default steps", providers.Model{DefaultSteps: 20, MaxSteps: 50, Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: amt("0.0075")}},
			providers.Request{Width: 768, Height: 512, N: 1}, "0.007875", -1, nil},
		{"per MP-step: max steps when nothing else is known", providers.Model{MaxSteps: 50, Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "USD", Amount: amt("0.001")}},
			providers.Request{Width: 1024, Height: 1024, N: 1}, "0.05", -1, nil},
		{"fixed size beats the request", providers.Model{Size: providers.SizeRule{Fixed: providers.Size{W: 384, H: 384}}, DefaultSteps: 1,
			Price: providers.Price{Unit: providers.PerMegapixel, Currency: "USD", Amount: amt("1")}},
			providers.Request{Width: 1024, Height: 1024, N: 1}, "0.140625", -1, func(t *testing.T, q Quote) {
				if q.Width != 384 || q.Height != 384 || q.SizeEstimated {
					t.Errorf("size %dx%d estimated=%v, want 384x384 not estimated", q.Width, q.Height, q.SizeEstimated)
				}
			}},
		{"free quota is carried", providers.Model{Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: amt("0.18"), FreeImages: 10}},
			providers.Request{N: 1}, "0.0252", -1, func(t *testing.T, q Quote) {
				if q.FreeImages != 10 {
					t.Errorf("free images %d, want 10", q.FreeImages)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := usd.Quote(&c.model, &c.req)
			if err != nil {
				t.Fatalf("Quote: %v", err)
			}
			want := amt(c.total)
			if q.Total != want || q.Tier != c.tier {
				t.Errorf("total %s tier %d, want %s tier %d (rule %q)", q.Total, q.Tier, want, c.tier, q.Rule())
			}
			if c.check != nil {
				c.check(t, q)
			}
		})
	}
}

func TestSizeResolution(t *testing.T) {
	e := mustEngine(t, "USD", nil)
	perMP := providers.Price{Unit: providers.PerMegapixel, Currency: "USD", Amount: amt("1")}
	listed := providers.MustSizes("1024x1024", "1344x768", "768x1344", "1536x640")
	cases := []struct {
		name      string
		rule      providers.SizeRule
		req       providers.Request
		w, h      int
		pixels    int64
		estimated bool
	}{
		{"request size", providers.SizeRule{Default: providers.Size{W: 512, H: 512}}, providers.Request{Width: 640, Height: 480}, 640, 480, 640 * 480, false},
		{"default size", providers.SizeRule{Default: providers.Size{W: 512, H: 512}}, providers.Request{}, 512, 512, 512 * 512, false},
		{"no default: largest listed size", providers.SizeRule{Sizes: listed}, providers.Request{}, 1024, 1024, 1024 * 1024, true},
		{"ratio: largest listed size of that ratio", providers.SizeRule{Sizes: append(listed, providers.Size{W: 672, H: 384}), Default: providers.Size{W: 1024, H: 1024}},
			providers.Request{AspectRatio: "7:4"}, 1344, 768, 1344 * 768, true},
		{"ratio in Ideogram's form", providers.SizeRule{Sizes: listed}, providers.Request{AspectRatio: "12x5"}, 1536, 640, 1536 * 640, true},
		{"ratio not listed: largest listed size", providers.SizeRule{Sizes: listed}, providers.Request{AspectRatio: "3:2"}, 1024, 1024, 1024 * 1024, true},
		{"ratio within bounds", providers.SizeRule{MaxSide: 2048, Multiple: 8, Default: providers.Size{W: 1024, H: 1024}},
			providers.Request{AspectRatio: "16:9"}, 2048, 1152, 2048 * 1152, true},
		{"ratio within pixel bounds", providers.SizeRule{MaxSide: 2048, MaxPixels: 2_359_296, Multiple: 8},
			providers.Request{AspectRatio: "1:1"}, 1536, 1536, 1536 * 1536, true},
		{"portrait ratio within bounds", providers.SizeRule{MaxSide: 2048, MaxPixels: 2_359_296, Multiple: 8},
			providers.Request{AspectRatio: "9:16"}, 1152, 2048, 1152 * 2048, true},
		{"ratio within pixel bounds, no side bound", providers.SizeRule{MaxPixels: 1_000_000, Multiple: 8},
			providers.Request{AspectRatio: "3:2"}, 1224, 816, 1224 * 816, true},
		{"ratio, no bounds: default's pixels", providers.SizeRule{AspectRatios: []string{"16:9"}, Default: providers.Size{W: 1024, H: 1024}},
			providers.Request{AspectRatio: "16:9"}, 1365, 767, 1024 * 1024, true},
		{"ratio, nothing known: 1 MP", providers.SizeRule{}, providers.Request{AspectRatio: "1:1"}, 1024, 1024, 1 << 20, true},
		{"nothing known: 1 MP", providers.SizeRule{}, providers.Request{}, 1024, 1024, 1 << 20, true},
		{"no default, bounds: largest square", providers.SizeRule{MaxSide: 1500, Multiple: 8}, providers.Request{}, 1496, 1496, 1496 * 1496, true},
		// An operation on an uploaded 800x600 image (estimates: what it makes, not a size sent): an
		// edit and a background replacement keep its size; an upscale doubles it (seed 002: "将参考图片分辨率提升至 2 倍"); others (remix)
		// make the model's default.
		{"edit keeps the source's size", providers.SizeRule{Default: providers.Size{W: 1024, H: 1024}},
			providers.Request{Operation: providers.OpEdit, Images: []providers.Image{{Width: 800, Height: 600}}}, 800, 600, 800 * 600, true},
		{"replace background keeps the source's size", providers.SizeRule{Sizes: listed},
			providers.Request{Operation: providers.OpReplaceBackground, Images: []providers.Image{{Width: 800, Height: 600}}}, 800, 600, 800 * 600, true},
		{"upscale doubles the source", providers.SizeRule{Sizes: listed},
			providers.Request{Operation: providers.OpUpscale, Images: []providers.Image{{Width: 800, Height: 600}}}, 1600, 1200, 1600 * 1200, true},
		{"remix: the default", providers.SizeRule{Default: providers.Size{W: 1024, H: 1024}},
			providers.Request{Operation: providers.OpRemix, Images: []providers.Image{{Width: 800, Height: 600}}}, 1024, 1024, 1024 * 1024, false},
		{"edit at an asked size", providers.SizeRule{Default: providers.Size{W: 1024, H: 1024}},
			providers.Request{Operation: providers.OpEdit, Width: 512, Height: 512, Images: []providers.Image{{Width: 800, Height: 600}}}, 512, 512, 512 * 512, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &providers.Model{Size: c.rule, Price: perMP}
			q, err := e.Quote(m, &c.req)
			if err != nil {
				t.Fatal(err)
			}
			if q.Width != c.w || q.Height != c.h || q.Pixels != c.pixels || q.SizeEstimated != c.estimated {
				t.Errorf("got %dx%d (%d px, estimated %v), want %dx%d (%d px, estimated %v)",
					q.Width, q.Height, q.Pixels, q.SizeEstimated, c.w, c.h, c.pixels, c.estimated)
			}
			if want, _ := roundHalfUp(bigRat(c.pixels*1_000_000, 1<<20)); q.Total != want {
				t.Errorf("total %s, want %s", q.Total, want)
			}
		})
	}
}

func bigRat(a, b int64) *big.Rat { return big.NewRat(a, b) }

func TestRounding(t *testing.T) {
	e := mustEngine(t, "USD", map[string]string{"CNY": "0.5"})
	// 1000×1000 at 4 steps and ¥0.0032: 3200 × 1,000,000 × 4 / 1,048,576 = 12207.03125 µ¥.
	m := &providers.Model{FixedSteps: 4, Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: amt("0.0032")}}
	cny := mustEngine(t, "CNY", nil)
	q, err := cny.Quote(m, &providers.Request{Width: 1000, Height: 1000, N: 32})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[int]money.Amount{0: 0, -1: 0, 1: 12207, 2: 24414, 16: 195313, 32: 390625} {
		if got := q.For(k); got != want {
			t.Errorf("For(%d) = %d µ, want %d", k, got, want)
		}
	}
	if q.PerImage != 12207 || q.Total != 390625 {
		t.Errorf("per image %d total %d, want 12207 and 390625", q.PerImage, q.Total)
	}
	if !strings.Contains(q.Rule(), "0.95367431640625 MP") || !strings.Contains(q.Rule(), "CNY 0.01220703125 per image") {
		t.Errorf("rule %q does not show the exact megapixels and per-image cost", q.Rule())
	}

	// Exactly half a micro-unit rounds up: 1 µ$ per MP at 0.5 MP.
	half := &providers.Model{Price: providers.Price{Unit: providers.PerMegapixel, Currency: "USD", Amount: 1}}
	q, err = e.Quote(half, &providers.Request{Width: 1024, Height: 512, N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if q.For(1) != 1 || q.For(2) != 1 || q.For(3) != 2 {
		t.Errorf("For(1..3) = %d %d %d µ, want 1 1 2", q.For(1), q.For(2), q.For(3))
	}
	// Conversion happens before rounding: ¥0.000001 at 0.5 is half a µ$, which rounds up.
	conv := &providers.Model{Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: 1}}
	q, err = e.Quote(conv, &providers.Request{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if q.Total != 1 || q.For(4) != 2 {
		t.Errorf("converted: total %d, For(4) %d, want 1 and 2", q.Total, q.For(4))
	}
}

// TestSettleNeverExceedsHold: over many sizes, steps, rates and counts, the cost of any number of
// delivered images (with any number of them free) never exceeds the hold.
func TestSettleNeverExceedsHold(t *testing.T) {
	e := mustEngine(t, "USD", map[string]string{"CNY": "0.138889", "JPY": "0.0066"})
	prices := []providers.Price{
		{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: amt("0.0032")},
		{Unit: providers.PerMegapixelStep, Currency: "JPY", Amount: amt("0.7")},
		{Unit: providers.PerMegapixel, Currency: "USD", Amount: amt("0.013")},
		{Unit: providers.PerImage, Currency: "CNY", Amount: amt("0.37")},
	}
	for _, p := range prices {
		for w := 64; w <= 2048; w += 328 {
			for h := 72; h <= 2048; h += 440 {
				for steps := 1; steps <= 50; steps += 7 {
					m := &providers.Model{DefaultSteps: 20, Price: p}
					for n := 1; n <= 10; n += 3 {
						q, err := e.Quote(m, &providers.Request{Width: w, Height: h, Steps: steps, N: n})
						if err != nil {
							t.Fatal(err)
						}
						prev := money.Amount(0)
						for k := 0; k <= n; k++ {
							c := q.For(k)
							if c < prev || c > q.Total {
								t.Fatalf("%v %dx%d %d steps n=%d: For(%d) = %s after %s, hold %s", p, w, h, steps, n, k, c, prev, q.Total)
							}
							prev = c
							for free := 0; free <= n; free++ {
								if s := q.Settle(k, free); s.Cost > q.Total || s.Charged+s.FreeUsed != k || s.FreeUsed+s.FreeReturned != free {
									t.Fatalf("Settle(%d, %d) = %+v with hold %s", k, free, s, q.Total)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestFreeQuota follows seed 004's quotas (FLUX.1-dev: 10 free images per key): free images are
// consumed before charging, the hold covers only the paid ones, and undelivered free images go
// back to the quota.
func TestFreeQuota(t *testing.T) {
	e := mustEngine(t, "CNY", nil)
	m := &providers.Model{ID: "black-forest-labs/FLUX.1-dev", Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: amt("0.18"), FreeImages: 10}}
	q, err := e.Quote(m, &providers.Request{N: 4})
	if err != nil {
		t.Fatal(err)
	}
	if q.FreeImages != 10 {
		t.Fatalf("free images %d, want 10", q.FreeImages)
	}
	cases := []struct {
		name            string
		free, delivered int
		hold            string
		want            Settlement
	}{
		{"quota untouched: all four free", 4, 4, "0", Settlement{FreeUsed: 4}},
		{"two left in the quota", 2, 4, "0.36", Settlement{Charged: 2, FreeUsed: 2, Cost: amt("0.36")}},
		{"one undelivered: a paid one", 2, 3, "0.36", Settlement{Charged: 1, FreeUsed: 2, Cost: amt("0.18")}},
		{"one delivered: one free image goes back", 2, 1, "0.36", Settlement{FreeUsed: 1, FreeReturned: 1}},
		{"failed: every free image goes back", 4, 0, "0", Settlement{FreeReturned: 4}},
		{"quota used up", 0, 4, "0.72", Settlement{Charged: 4, Cost: amt("0.72")}},
		{"quota used up, partial delivery", 0, 2, "0.72", Settlement{Charged: 2, Cost: amt("0.36")}},
		{"settle equals hold", 1, 4, "0.54", Settlement{Charged: 3, FreeUsed: 1, Cost: amt("0.54")}},
		{"nonsense counts cost nothing", -1, -1, "0.72", Settlement{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if hold := q.ForCharged(q.Images, c.free); hold != amt(c.hold) {
				t.Errorf("hold with %d free = %s, want %s", c.free, hold, c.hold)
			}
			got := q.Settle(c.delivered, c.free)
			if got != c.want {
				t.Errorf("Settle(%d delivered, %d free) = %+v, want %+v", c.delivered, c.free, got, c.want)
			}
			if got.Cost > q.ForCharged(q.Images, c.free) {
				t.Errorf("settlement %s exceeds hold %s", got.Cost, q.ForCharged(q.Images, c.free))
			}
		})
	}
}

func TestUnpricedAndErrors(t *testing.T) {
	e := mustEngine(t, "USD", nil)
	q, err := e.Quote(&providers.Model{ID: "x"}, &providers.Request{N: 2})
	if !errors.Is(err, ErrUnpriced) || q.Total != 0 || q.For(2) != 0 {
		t.Errorf("unpriced: %v, total %s", err, q.Total)
	}
	if _, err := e.Quote(&providers.Model{ID: "y", Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: 1}}, &providers.Request{}); err == nil || !strings.Contains(err.Error(), "no conversion rate from CNY") {
		t.Errorf("missing rate: %v", err)
	}
	if _, err := e.Quote(&providers.Model{ID: "z", Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "USD", Amount: 1}}, &providers.Request{}); err == nil || !strings.Contains(err.Error(), "steps is unknown") {
		t.Errorf("unknown steps: %v", err)
	}
	if _, err := e.Quote(&providers.Model{ID: "w", Price: providers.Price{Unit: "token", Currency: "USD", Amount: 1}}, &providers.Request{}); err == nil {
		t.Error("unknown unit: no error")
	}
	huge := &providers.Model{ID: "h", Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.Amount(1 << 62)}}
	if _, err := e.Quote(huge, &providers.Request{N: 4}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("overflow: %v", err)
	}
}

func TestNew(t *testing.T) {
	e, err := New("usd", map[string]string{"cny": "0.14", "USD": "1.000"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Currency() != "USD" || !e.HasRate("CNY") || !e.HasRate("usd") || e.HasRate("EUR") {
		t.Errorf("currency %s, rates CNY %v USD %v EUR %v", e.Currency(), e.HasRate("CNY"), e.HasRate("usd"), e.HasRate("EUR"))
	}
	for _, bad := range []struct {
		cur   string
		rates map[string]string
		want  string
	}{
		{"US", nil, "3-letter"},
		{"USD", map[string]string{"CNY": "0"}, "positive"},
		{"USD", map[string]string{"CNY": "-1"}, "positive"},
		{"USD", map[string]string{"CNY": "abc"}, "positive"},
		{"USD", map[string]string{"CNY": "1e-3"}, "positive"},
		{"USD", map[string]string{"YUAN": "0.14"}, "3-letter"},
		{"USD", map[string]string{"USD": "2"}, "must be 1"},
	} {
		if _, err := New(bad.cur, bad.rates); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("New(%q, %v) = %v, want an error containing %q", bad.cur, bad.rates, err, bad.want)
		}
	}
}

func TestValidate(t *testing.T) {
	e := mustEngine(t, "USD", map[string]string{"CNY": "0.14"})
	models := map[string]*providers.Model{
		"ok":        {Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: amt("0.37")}},
		"no-rate":   {Price: providers.Price{Unit: providers.PerImage, Currency: "EUR", Amount: amt("0.04")}},
		"no-steps":  {Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "USD", Amount: amt("0.001")}},
		"bad-tier":  {Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: 1, Tiers: []providers.PriceTier{{Size: "big", Amount: 1}, {Operation: "paint", Amount: 1}, {Amount: -1}}}},
		"bad-unit":  {Price: providers.Price{Unit: "token", Currency: "USD", Amount: 1}},
		"unpriced":  {},
		"unpriced2": nil,
	}
	unpriced, err := e.Validate(models)
	if strings.Join(unpriced, ",") != "unpriced,unpriced2" {
		t.Errorf("unpriced %v", unpriced)
	}
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`model "no-rate": price: no conversion rate from EUR to USD (set billing.rates.EUR)`,
		`model "no-steps": priced per megapixel-step but has no fixed, default or maximum steps`,
		`model "bad-tier": price: tiers[0]: size "big"`,
		`tiers[1]: unknown operation "paint"`,
		`tiers[2]: negative amount -0.000001`,
		`model "bad-unit": price: unit "token"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"ok"`) {
		t.Errorf("error names a good model: %v", err)
	}

	// Every committed catalog validates against the default configuration (USD, CNY at 0.14).
	all := map[string]*providers.Model{}
	for _, cat := range [][]providers.Model{siliconflow.Catalog(), ideogram.Catalog()} {
		for i := range cat {
			all[cat[i].ID] = &cat[i]
		}
	}
	if unpriced, err := e.Validate(all); err != nil || len(unpriced) > 0 {
		t.Errorf("catalogs: unpriced %v, err %v", unpriced, err)
	}
}

// TestForWithoutBigMatchesBig: the int64 path of For agrees with math/big everywhere, including
// exact halves and products that overflow 64 bits (which fall back to math/big).
func TestForWithoutBigMatchesBig(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nums := []int64{0, 1, 3, 6400, 1 << 20, 1<<62 + 1, math.MaxInt64}
	dens := []int64{1, 2, 3, 1 << 20, 1_000_000_007, math.MaxInt64}
	for i := range 100_000 {
		num, den := r.Int64N(1<<40), 1+r.Int64N(1<<30)
		if i%10 == 0 {
			num, den = nums[r.IntN(len(nums))], dens[r.IntN(len(dens))]
		}
		k := 1 + r.IntN(1000)
		if i%7 == 0 {
			k = math.MaxInt32
		}
		exact := big.NewRat(num, den)
		q := Quote{exact: frac{exact.Num().Int64(), exact.Denom().Int64()}, small: true, priced: true}
		slow := Quote{exactBig: exact, priced: true}
		got, gotOK := q.times(k)
		want, wantOK := slow.times(k)
		if got != want || gotOK != wantOK {
			t.Fatalf("%d/%d × %d: int64 path %d (%v), math/big %d (%v)", num, den, k, got, gotOK, want, wantOK)
		}
	}
}

// TestQuoteWithoutBigMatchesBig: a quote priced in int64 fractions charges what the words of a
// price say, computed here in math/big from the resolved size and steps: amount × (pixels /
// 2^20) × steps × rate per image, k images rounded half up, in both currencies, and its rule
// reads the same as with math/big. Amounts and sizes range up to where int64 gives out.
func TestQuoteWithoutBigMatchesBig(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rates := []string{"1", "0.14", "7.2", "0.000001", "123456.789", "3"}
	units := []providers.PriceUnit{providers.PerImage, providers.PerMegapixel, providers.PerMegapixelStep}
	amounts := []int64{0, 1, 3200, 370_000, 999_999_999_999, math.MaxInt64 / 3}
	for i := range 20_000 {
		rt := rates[r.IntN(len(rates))]
		e := mustEngine(t, "USD", map[string]string{"CNY": rt})
		amount := r.Int64N(10_000_000)
		if i%5 == 0 {
			amount = amounts[r.IntN(len(amounts))]
		}
		m := &providers.Model{ID: "m", Price: providers.Price{Currency: "CNY", Unit: units[r.IntN(len(units))], Amount: money.Amount(amount)}}
		req := &providers.Request{Width: 8 * (1 + r.IntN(1024)), Height: 8 * (1 + r.IntN(1024)), Steps: 1 + r.IntN(100), N: 1 + r.IntN(8)}
		q, err := e.Quote(m, req)
		if err != nil {
			continue // out of range either way: the big path reports the same (checked below)
		}
		if amount <= 10_000_000 && rt != "123456.789" && !q.small {
			t.Fatalf("CNY %s per %s at %s, %d px, %d steps took math/big", q.ListAmount, m.Price.Unit, rt, q.Pixels, q.Steps) // a real price: int64 must do
		}
		perImage := new(big.Rat).SetInt64(amount)
		switch m.Price.Unit {
		case providers.PerMegapixel:
			perImage.Mul(perImage, big.NewRat(q.Pixels, 1<<20))
		case providers.PerMegapixelStep:
			perImage.Mul(perImage, big.NewRat(q.Pixels*int64(q.Steps), 1<<20))
		}
		rate, _ := new(big.Rat).SetString(rt)
		exact := new(big.Rat).Mul(perImage, rate)
		ref := Quote{priced: true, exactBig: exact, listBig: perImage}
		for _, k := range []int{1, q.Images, 1 + r.IntN(1000)} {
			want, wantOK := ref.times(k)
			got, gotOK := q.times(k)
			if got != want || gotOK != wantOK {
				t.Fatalf("%s CNY %s/%s at %s, %dx%d, %d steps, %d images: %d (%v), math/big %d (%v)",
					q.ListAmount, m.Price.Unit, q.ListCurrency, rt, q.Width, q.Height, q.Steps, k, got, gotOK, want, wantOK)
			}
			if got, want := q.ListFor(k), ref.ListFor(k); got != want {
				t.Fatalf("ListFor(%d) = %d, math/big %d", k, got, want)
			}
		}
		big := q
		big.small, big.listBig, big.exactBig = false, perImage, exact
		if q.Rule() != big.Rule() {
			t.Fatalf("rule %q, with math/big %q", q.Rule(), big.Rule())
		}
	}
}
