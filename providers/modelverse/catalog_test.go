package modelverse

import (
	"regexp"
	"slices"
	"strconv"
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

// seed004Quotas is seed 004's model table ("生图模型列表") as the seed prints it: model,
// description, free quota in images (免费额度（张图）).
const seed004Quotas = `| 模型 | 描述 | 免费额度（张图） |
| - | - | - |
| black-forest-labs/FLUX.1-dev | 英文模型 | 10 |
| black-forest-labs/Flux-Kontext-Max | 英文模型 | 5 |
| black-forest-labs/Flux-Kontext-Max-multi | | 5 |
| black-forest-labs/Flux-Kontext-Max-text2image | | 5 |
| black-forest-labs/Flux-Kontext-Pro | | 5 |
| black-forest-labs/Flux-Kontext-Pro-multi | | 5 |
| black-forest-labs/Flux-Kontext-Pro-text2image | | 5 |
| stepfun-ai/Step1X-Edit | | 5 |`

// TestFreeQuotasFromSeed reads seed 004's table and checks that every model it lists has that
// free quota, under both its spellings, and that the two spellings name one upstream model.
func TestFreeQuotasFromSeed(t *testing.T) {
	row := regexp.MustCompile(`^\| ([^ |]+) \|[^|]*\| ([0-9]+) \|$`)
	quota := map[string]int{}
	for _, line := range strings.Split(seed004Quotas, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[2])
			quota[m[1]] = n
		}
	}
	if len(quota) != 8 {
		t.Fatalf("read %d rows from the seed's table", len(quota))
	}
	ms := (&Adapter{}).Models()
	pools := map[string][]string{}
	for _, m := range ms {
		up := UpstreamModel(m.ID)
		pools[up] = append(pools[up], m.ID)
		want, ok := quota[up]
		if !ok {
			t.Errorf("%s: upstream model %s is not in seed 004's table", m.ID, up)
			continue
		}
		if m.Price.FreeImages != want {
			t.Errorf("%s: %d free images, seed 004 says %d for %s", m.ID, m.Price.FreeImages, want, up)
		}
	}
	for up, ids := range pools {
		if len(ids) != 2 || ids[0] != up || ids[1] == up {
			t.Errorf("upstream model %s is spelled %v, want its seed id and its renamed id", up, ids)
		}
	}
	if got := UpstreamModel("black-forest-labs/flux-kontext-pro/text-to-image"); got != "black-forest-labs/Flux-Kontext-Pro-text2image" {
		t.Errorf("UpstreamModel(renamed text2image) = %s", got)
	}
	if got := UpstreamModel("doubao-seedream-4.5"); got != "doubao-seedream-4.5" {
		t.Errorf("UpstreamModel of an id outside the catalog = %s", got)
	}
}

// TestPriceSources: neither seed 004 nor PROVIDERS.md gives a Modelverse price, so every price
// is assumed.
func TestPriceSources(t *testing.T) {
	for _, m := range (&Adapter{}).Models() {
		if m.Price.IsZero() || m.Price.Source != providers.Assumed {
			t.Errorf("%s: price %s %s with source %q, want an assumed price", m.ID, m.Price.Currency, m.Price.Amount, m.Price.Source)
		}
	}
}
