package modelverse

import (
	"slices"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

func TestCatalog(t *testing.T) {
	a, err := New(providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ms := a.Models()
	if len(ms) != 16 {
		t.Fatalf("%d models", len(ms))
	}
	ids := map[string]providers.Model{}
	for _, m := range ms {
		if _, dup := ids[m.ID]; dup {
			t.Fatalf("duplicate %s", m.ID)
		}
		ids[m.ID] = m
		if m.URLTTL != URLTTL || m.Price.IsZero() || m.Price.Currency != "CNY" || len(m.Operations) != 1 || m.Description == "" {
			t.Errorf("%s: incomplete %+v", m.ID, m)
		}
		if !strings.Contains(m.ID, "/") {
			t.Errorf("%s: ids carry their organisation prefix", m.ID)
		}
		if m.SeedMin != -1 || m.SeedMax != 2147483647 || m.MinGuidance != 1 || m.MaxGuidance != 10 {
			t.Errorf("%s: seed or guidance range", m.ID)
		}
		wantFree := 5
		if strings.EqualFold(m.ID, "black-forest-labs/flux.1-dev") {
			wantFree = 10
		}
		if m.Price.FreeImages != wantFree {
			t.Errorf("%s: free images %d, want %d", m.ID, m.Price.FreeImages, wantFree)
		}
		if len(m.Extras) != 0 {
			t.Errorf("%s: extras %v", m.ID, m.Extras)
		}
	}
	// The seed ids and the renamed ids describe the same models.
	pairs := [][2]string{
		{"black-forest-labs/FLUX.1-dev", "black-forest-labs/flux.1-dev"},
		{"black-forest-labs/Flux-Kontext-Pro", "black-forest-labs/flux-kontext-pro"},
		{"black-forest-labs/Flux-Kontext-Pro-multi", "black-forest-labs/flux-kontext-pro/multi"},
		{"black-forest-labs/Flux-Kontext-Pro-text2image", "black-forest-labs/flux-kontext-pro/text-to-image"},
		{"black-forest-labs/Flux-Kontext-Max", "black-forest-labs/flux-kontext-max"},
		{"black-forest-labs/Flux-Kontext-Max-multi", "black-forest-labs/flux-kontext-max/multi"},
		{"black-forest-labs/Flux-Kontext-Max-text2image", "black-forest-labs/flux-kontext-max/text-to-image"},
		{"stepfun-ai/Step1X-Edit", "stepfun-ai/step1x-edit"},
	}
	for _, p := range pairs {
		a, ok1 := ids[p[0]]
		b, ok2 := ids[p[1]]
		if !ok1 || !ok2 {
			t.Fatalf("missing %v", p)
		}
		a.ID, b.ID, a.Description, b.Description = "", "", "", ""
		if a.MaxN != b.MaxN || a.Params != b.Params || a.Price.Amount != b.Price.Amount || !slices.Equal(a.Size.AspectRatios, b.Size.AspectRatios) ||
			a.Size.MaxSide != b.Size.MaxSide || a.MaxInputImages != b.MaxInputImages || !slices.Equal(a.Operations, b.Operations) {
			t.Errorf("%v differ", p)
		}
	}
	dev := ids["black-forest-labs/FLUX.1-dev"]
	if dev.MaxN != 4 || dev.Size.MinSide != 256 || dev.Size.MaxSide != 1536 || dev.MaxSteps != 50 || !dev.Params.Has(providers.ParamStrength|providers.ParamReferenceImage) {
		t.Errorf("FLUX.1-dev %+v", dev)
	}
	if m := ids["black-forest-labs/Flux-Kontext-Max-text2image"]; m.MaxN != 4 || len(m.Size.AspectRatios) != 9 || m.Size.FreeForm() {
		t.Errorf("text2image %+v", m)
	}
	if m := ids["stepfun-ai/Step1X-Edit"]; m.MaxN != 1 || !m.Params.Has(providers.ParamNegativePrompt|providers.ParamSteps) || !m.Supports(providers.OpEdit) {
		t.Errorf("step1x %+v", m)
	}
	ms[0].Operations[0] = "changed"
	if a.Models()[0].Operations[0] == "changed" {
		t.Fatal("Models exposes the built-in catalog")
	}
}
