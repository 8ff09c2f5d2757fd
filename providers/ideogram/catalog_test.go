package ideogram

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// price finds the amount a request pays: the first matching tier, else Amount (the rule
// PriceTier documents).
func price(p providers.Price, op providers.Operation, quality string) money.Amount {
	for _, t := range p.Tiers {
		if (t.Operation == "" || t.Operation == op) && (t.Quality == "" || strings.EqualFold(t.Quality, quality)) && t.Size == "" {
			return t.Amount
		}
	}
	return p.Amount
}

func TestCatalogPrices(t *testing.T) {
	models := Catalog()
	want := []struct {
		model, quality string
		op             providers.Operation
		usd            string
	}{
		// Seed 002 "V3 计价".
		{ModelV3, SpeedTurbo, providers.OpGenerate, "0.03"},
		{ModelV3, SpeedDefault, providers.OpGenerate, "0.06"},
		{ModelV3, SpeedQuality, providers.OpGenerate, "0.09"},
		{ModelV3, "", providers.OpGenerate, "0.06"},
		{ModelV3, "turbo", providers.OpGenerate, "0.03"},
		// The same tiers under the OpenAI quality names the front door passes in Request.Quality.
		{ModelV3, "low", providers.OpGenerate, "0.03"},
		{ModelV3, "medium", providers.OpRemix, "0.06"},
		{ModelV3, "high", providers.OpGenerate, "0.09"},
		{ModelV3, "high", providers.OpReplaceBackground, "0.09"},
		{ModelV3, "low", providers.OpEdit, "0.06"},
		{ModelV3, SpeedTurbo, providers.OpRemix, "0.03"},
		{ModelV3, SpeedTurbo, providers.OpVariation, "0.03"},
		{ModelV3, SpeedTurbo, providers.OpEdit, "0.06"},
		{ModelV3, SpeedQuality, providers.OpEdit, "0.09"},
		{ModelV3, SpeedTurbo, providers.OpReframe, "0.06"},
		{ModelV3, SpeedDefault, providers.OpReplaceBackground, "0.06"},
		{ModelV3, SpeedQuality, providers.OpReplaceBackground, "0.09"},
		{ModelV3, "", providers.OpUpscale, "0.06"},
		{ModelV3, "", providers.OpDescribe, "0.01"},
		// Seed 002 "V2 & V1 计价".
		{ModelV2A, "", providers.OpGenerate, "0.04"},
		{ModelV2ATurbo, "", providers.OpRemix, "0.025"},
		{ModelV2, "", providers.OpGenerate, "0.08"},
		{ModelV2, "", providers.OpEdit, "0.08"},
		{ModelV2Turbo, "", providers.OpGenerate, "0.05"},
		{ModelV2Turbo, "", providers.OpEdit, "0.05"},
		{ModelV1, "", providers.OpGenerate, "0.06"},
		{ModelV1Turbo, "", providers.OpVariation, "0.02"},
		{ModelV1, "", providers.OpUpscale, "0.06"},
		{ModelV2A, "", providers.OpDescribe, "0.01"},
		{ModelV2A, "", providers.OpReframe, "0.04"}, // not from a source: the generate price
	}
	for _, w := range want {
		m, ok := lookupModel(models, w.model)
		if !ok {
			t.Fatalf("no model %s", w.model)
		}
		if got := price(m.Price, w.op, w.quality); got != money.MustParse(w.usd) {
			t.Errorf("%s %s %q = %s, want %s", w.model, w.op, w.quality, got, w.usd)
		}
	}
}

func TestCatalogShape(t *testing.T) {
	models := Catalog()
	if len(models) != 7 {
		t.Fatalf("%d models", len(models))
	}
	if len(legacyResolutions) != 78 || len(v3Resolutions) != 69 || len(v3StylePresets) != 62 ||
		len(legacyAspectRatios) != 11 || len(v3AspectRatios) != 15 {
		t.Fatalf("enumeration sizes %d %d %d %d %d", len(legacyResolutions), len(v3Resolutions), len(v3StylePresets),
			len(legacyAspectRatios), len(v3AspectRatios))
	}
	for _, s := range []string{"640x1024", "720x1280", "768x1024", "768x1152", "768x1232", "1024x640", "1024x768", "1152x768", "1232x768", "1280x720"} {
		if !slices.Contains(legacyResolutions, s) || slices.Contains(v3Resolutions, s) {
			t.Errorf("%s must be legacy-only", s)
		}
	}
	if slices.Contains(legacyResolutions, "800x1280") || !slices.Contains(v3Resolutions, "800x1280") {
		t.Error("800x1280 must be 3.0-only")
	}
	for _, m := range models {
		if m.MaxN != 8 || m.SeedMax != 2147483647 || m.SeedMin != 0 || m.URLTTL != URLLifetime || m.Price.Currency != "USD" {
			t.Errorf("%s: MaxN %d seed %d..%d TTL %v currency %s", m.ID, m.MaxN, m.SeedMin, m.SeedMax, m.URLTTL, m.Price.Currency)
		}
		if !m.Size.Default.IsZero() && m.Size.Default != (providers.Size{W: 1024, H: 1024}) {
			t.Errorf("%s: default size %v", m.ID, m.Size.Default)
		}
		gen := apiOf(m.ID)
		// Every extension field the model lists is carried by at least one of its operations, and
		// every operation has a price.
		for _, x := range m.Extras {
			found := false
			for _, op := range m.Operations {
				found = found || slices.Contains(opExtras[gen][op], x)
			}
			if !found {
				t.Errorf("%s lists %s, which none of its operations carries", m.ID, x)
			}
		}
		for _, op := range m.Operations {
			if _, ok := opExtras[gen][op]; !ok {
				t.Errorf("%s: operation %s has no wire mapping", m.ID, op)
			}
			found := false
			for _, tier := range m.Price.Tiers {
				found = found || tier.Operation == op
			}
			if !found {
				t.Errorf("%s: operation %s has no price tier", m.ID, op)
			}
		}
		for _, r := range m.Size.AspectRatios {
			if !slices.Contains(ratiosFor(gen), r) {
				t.Errorf("%s: ratio %s not in its API's list", m.ID, r)
			}
		}
	}
	v1, _ := lookupModel(models, ModelV1)
	if len(v1.Size.Sizes) != 0 || len(v1.Size.AspectRatios) != 11 || v1.Supports(providers.OpEdit) || v1.Supports(providers.OpReframe) {
		t.Errorf("V_1: %+v", v1)
	}
	v2a, _ := lookupModel(models, ModelV2A)
	if v2a.Supports(providers.OpEdit) || v2a.Params.Has(providers.ParamNegativePrompt) || slices.Contains(v2a.Extras, ExtraColorPalette) {
		t.Errorf("V_2A: %+v", v2a)
	}
	v3, _ := lookupModel(models, ModelV3)
	if len(v3.Size.Sizes) != 69 || !v3.Supports(providers.OpReplaceBackground) || !v3.Params.Has(providers.ParamReferenceImage) {
		t.Errorf("V_3: %+v", v3)
	}
	// Catalog returns fresh copies.
	models[0].Extras[0] = "x"
	models[0].Size.Sizes = nil
	if Catalog()[0].Extras[0] == "x" {
		t.Error("Catalog shares slices between calls")
	}
}

// Seed 002's price tables, verbatim: "💰 V3 计价" and the three tables of "💰 V2 & V1 计价"
// (图像生成 generation, 图像编辑 editing, 图像增强 enhancement).
const (
	seed002V3Prices      = "Ideogram 模型 Generate Remix Edit Reframe Replace BG 3.0 Turbo US $0.03 US $0.03 US $0.06 US $0.06 US $0.06 3.0 Default US $0.06 US $0.06 US $0.06 US $0.06 US $0.06 3.0 Quality US $0.09 US $0.09 US $0.09 US $0.09 US $0.09"
	seed002LegacyPrices  = "型号 功能 每张图片费用 2a 文字生图,或文字 + 参考图生图 US $0.04 2a Turbo 文字生图,或文字 + 参考图生图(更快速但质量略低) US $0.025 2.0 文字生图,或文字 + 参考图生图 US $0.08 2.0 Turbo 文字生图,或文字 + 参考图生图(更快速但质量略低) US $0.05 1.0 文字生图,或文字 + 参考图生图 US $0.06 1.0 Turbo 文字生图,或文字 + 参考图生图(更快速但质量略低) US $0.02"
	seed002EditPrices    = "型号 功能 每张图片费用 2.0 Edit 通过文字提示、参考图片和二进制蒙版重新生成图像 US $0.08 2.0 Turbo Edit 通过文字提示、参考图片和二进制蒙版重新生成图像(更快速但质量略低) US $0.05"
	seed002UpscalePrices = "型号 功能 每张图片费用 Upscale 将参考图片分辨率提升至 2 倍,并可能增强图片效果 US $0.06"
)

// TestPriceSources checks every price tier of every model against the amounts seed 002's tables
// state, read from the seed's own lines above: each tier is either what the seed says (and the
// price's Source is "seed 002") or one of the tiers the catalog declares assumed (describe,
// legacy reframe), which no source prices.
func TestPriceSources(t *testing.T) {
	usdOf := func(s string) money.Amount { return money.MustParse(s) }
	// want[model][op][speed] is the seed's amount; speed "" for legacy models.
	want := map[string]map[providers.Operation]map[string]money.Amount{}
	set := func(model string, op providers.Operation, speed string, amount string) {
		if want[model] == nil {
			want[model] = map[providers.Operation]map[string]money.Amount{}
		}
		if want[model][op] == nil {
			want[model][op] = map[string]money.Amount{}
		}
		want[model][op][speed] = usdOf(amount)
	}
	// "3.0 Turbo US $0.03 US $0.03 US $0.06 US $0.06 US $0.06": Generate Remix Edit Reframe Replace BG.
	v3Row := regexp.MustCompile(`3\.0 (Turbo|Default|Quality)((?: US \$[0-9.]+){5})`)
	amount := regexp.MustCompile(`US \$([0-9.]+)`)
	rows := v3Row.FindAllStringSubmatch(seed002V3Prices, -1)
	if len(rows) != 3 {
		t.Fatalf("read %d rows of the V3 table", len(rows))
	}
	for _, r := range rows {
		speed := strings.ToUpper(r[1])
		a := amount.FindAllStringSubmatch(r[2], -1)
		for i, op := range []providers.Operation{providers.OpGenerate, providers.OpRemix, providers.OpEdit, providers.OpReframe, providers.OpReplaceBackground} {
			set(ModelV3, op, speed, a[i][1])
		}
		set(ModelV3, providers.OpVariation, speed, a[1][1]) // a variation is a remix on the wire
	}
	// "2a 文字生图,或文字 + 参考图生图 US $0.04 2a Turbo …": generate and text + reference image (remix).
	names := map[string]string{"2a": ModelV2A, "2a Turbo": ModelV2ATurbo, "2.0": ModelV2, "2.0 Turbo": ModelV2Turbo, "1.0": ModelV1, "1.0 Turbo": ModelV1Turbo}
	legacyRow := regexp.MustCompile(`(2a Turbo|2a|2\.0 Turbo|2\.0|1\.0 Turbo|1\.0) 文字生图[^$]*US \$([0-9.]+)`)
	rows = legacyRow.FindAllStringSubmatch(seed002LegacyPrices, -1)
	if len(rows) != 6 {
		t.Fatalf("read %d rows of the V2 & V1 generation table", len(rows))
	}
	for _, r := range rows {
		for _, op := range []providers.Operation{providers.OpGenerate, providers.OpRemix, providers.OpVariation} {
			set(names[r[1]], op, "", r[2])
		}
	}
	editRow := regexp.MustCompile(`(2\.0 Turbo|2\.0) Edit [^$]*US \$([0-9.]+)`)
	rows = editRow.FindAllStringSubmatch(seed002EditPrices, -1)
	if len(rows) != 2 {
		t.Fatalf("read %d rows of the editing table", len(rows))
	}
	for _, r := range rows {
		set(names[r[1]], providers.OpEdit, "", r[2])
	}
	up := regexp.MustCompile(`Upscale [^$]*US \$([0-9.]+)`).FindStringSubmatch(seed002UpscalePrices)
	if up == nil {
		t.Fatal("no upscale price in the enhancement table")
	}
	for _, id := range []string{ModelV1, ModelV1Turbo, ModelV2, ModelV2Turbo, ModelV2A, ModelV2ATurbo} {
		set(id, providers.OpUpscale, "", up[1])
	}
	set(ModelV3, providers.OpUpscale, "", up[1]) // the same /upscale endpoint, at no rendering speed

	speedOf := map[string]string{"low": SpeedTurbo, "medium": SpeedDefault, "high": SpeedQuality, "": SpeedDefault}
	for _, m := range Catalog() {
		if m.Price.IsZero() || m.Price.Source != priceSource || priceSource != "seed 002" {
			t.Errorf("%s: price source %q", m.ID, m.Price.Source)
		}
		if !m.SeedRepeats {
			t.Errorf("%s: seed 002 says one seed repeats across a call's images, but SeedRepeats is false", m.ID)
		}
		gen := apiOf(m.ID)
		for _, tier := range m.Price.Tiers {
			if slices.Contains(assumedTiers[gen], tier.Operation) {
				if tier.Source != providers.Assumed {
					t.Errorf("%s: the %s tier is assumed but its source says %q", m.ID, tier.Operation, tier.Source)
				}
				continue
			}
			if tier.Source != "" {
				t.Errorf("%s: the %s tier's source is %q, want the price's (seed 002)", m.ID, tier.Operation, tier.Source)
			}
			speed := ""
			if gen == apiV3 && tier.Operation != providers.OpUpscale {
				speed = strings.ToUpper(tier.Quality)
				if s, ok := speedOf[tier.Quality]; ok {
					speed = s
				}
			}
			w, ok := want[m.ID][tier.Operation][speed]
			if !ok {
				t.Errorf("%s: tier %+v is neither in seed 002 nor declared assumed", m.ID, tier)
				continue
			}
			if tier.Amount != w {
				t.Errorf("%s: tier %+v costs %s, seed 002 says %s", m.ID, tier, tier.Amount, w)
			}
		}
		// The base amount is what a request without a tier pays: generate (at DEFAULT on 3.0).
		if w := want[m.ID][providers.OpGenerate][map[api]string{apiV3: SpeedDefault}[gen]]; m.Price.Amount != w {
			t.Errorf("%s: base amount %s, seed 002 says %s", m.ID, m.Price.Amount, w)
		}
	}
}
