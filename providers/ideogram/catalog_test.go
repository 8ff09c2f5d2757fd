package ideogram

import (
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
