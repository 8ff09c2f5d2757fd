package ark

import (
	"testing"

	"github.com/imagegw/imagegw/providers"
)

func TestCatalog(t *testing.T) {
	a, err := New(providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ms := a.Models()
	if len(ms) != 5 {
		t.Fatalf("%d models", len(ms))
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.ID] {
			t.Fatalf("duplicate %s", m.ID)
		}
		seen[m.ID] = true
		if m.MaxN != 1 || m.URLTTL != URLTTL || m.Price.IsZero() || m.Price.Currency != "CNY" || len(m.Operations) == 0 || m.Description == "" {
			t.Errorf("%s: incomplete entry %+v", m.ID, m)
		}
		if m.Params.Has(providers.ParamSeed) && (m.SeedMin != -1 || m.SeedMax != 2147483647) {
			t.Errorf("%s: seed range %d..%d", m.ID, m.SeedMin, m.SeedMax)
		}
		if m.Params.Has(providers.ParamGuidance) && (m.MinGuidance != 1 || m.MaxGuidance != 10) {
			t.Errorf("%s: guidance range", m.ID)
		}
		if m.Supports(providers.OpEdit) && m.MaxInputImages == 0 {
			t.Errorf("%s: edit without input images", m.ID)
		}
		if len(m.Extras) != 1 || m.Extras[0] != ExtraWatermark {
			t.Errorf("%s: extras %v", m.ID, m.Extras)
		}
	}
	// Models returns a copy.
	ms[0].Extras[0] = "changed"
	ms[0].ID = "changed"
	if again := a.Models(); again[0].ID == "changed" || again[0].Extras[0] == "changed" {
		t.Fatal("Models exposes the built-in catalog")
	}
	if m := lookup(ModelSeedream45); m.Size.MinPixels != 3686400 || m.Size.MaxPixels != 16777216 {
		t.Fatalf("4.5 size rule %+v", m.Size)
	}
}

// TestPriceSources: neither the seeds nor PROVIDERS.md give an Ark price, so every price is
// assumed; and Ark has no free quota (seed 004's free images are Modelverse's).
func TestPriceSources(t *testing.T) {
	for _, m := range (&Adapter{}).Models() {
		if m.Price.IsZero() {
			t.Errorf("%s: unpriced", m.ID)
		}
		if m.Price.Source != providers.Assumed {
			t.Errorf("%s: price source %q, want %q", m.ID, m.Price.Source, providers.Assumed)
		}
		if m.Price.FreeImages != 0 {
			t.Errorf("%s: %d free images, but no document gives Ark a free quota", m.ID, m.Price.FreeImages)
		}
	}
}
