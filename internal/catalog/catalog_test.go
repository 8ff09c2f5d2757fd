package catalog

import (
	"context"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

type fakeProvider struct {
	name   string
	models []providers.Model
}

func (p *fakeProvider) Name() string              { return p.name }
func (p *fakeProvider) Models() []providers.Model { return p.models }
func (p *fakeProvider) Generate(context.Context, *providers.Request) (*providers.Result, error) {
	return &providers.Result{}, nil
}

type editingProvider struct{ fakeProvider }

func (p *editingProvider) Edit(context.Context, *providers.Request) (*providers.Result, error) {
	return &providers.Result{}, nil
}

func model(id string, ops ...providers.Operation) providers.Model {
	return providers.Model{ID: id, Operations: ops, Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.01")}}
}

func channels() []Channel {
	sf := &fakeProvider{name: "sf", models: []providers.Model{
		model("black-forest-labs/FLUX.1-dev", providers.OpGenerate),
		model("black-forest-labs/FLUX.1-schnell", providers.OpGenerate, providers.OpEdit),
	}}
	sf2 := &fakeProvider{name: "sf-backup", models: sf.models}
	mv := &editingProvider{fakeProvider{name: "modelverse", models: []providers.Model{
		model("black-forest-labs/FLUX.1-dev", providers.OpGenerate, providers.OpEdit),
		model("stepfun-ai/Step1X-Edit", providers.OpGenerate, providers.OpEdit),
	}}}
	return []Channel{
		{Name: "sf", Type: "siliconflow", Provider: sf},
		{Name: "sf-backup", Type: "siliconflow", Provider: sf2, Models: []string{"black-forest-labs/FLUX.1-schnell"}},
		{Name: "modelverse", Type: "modelverse", Provider: mv},
	}
}

func TestNamesNeverSplitOnSlash(t *testing.T) {
	c, err := Build(channels(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Bare id offered by one provider type, on two channels: both routes, in order.
	e, err := c.Lookup("black-forest-labs/FLUX.1-schnell")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Routes) != 2 || e.Routes[0].Channel != "sf" || e.Routes[1].Channel != "sf-backup" || e.OwnedBy != "siliconflow" {
		t.Fatalf("routes = %+v", e.Routes)
	}
	// The adapter lacks Edit, so the model's edit operation is not offered.
	if e.Supports(providers.OpEdit) {
		t.Fatal("edit offered by an adapter that does not implement Editor")
	}
	// A bare id offered by several provider types is one model over all their channels, in
	// channel order.
	e, err = c.Lookup("black-forest-labs/FLUX.1-dev")
	if err != nil {
		t.Fatal(err)
	}
	var chans []string
	for _, r := range e.Routes {
		chans = append(chans, r.Channel)
	}
	if strings.Join(chans, ",") != "sf,modelverse" || e.OwnedBy != "siliconflow" {
		t.Fatalf("FLUX.1-dev routes over %v (owned by %s), want sf,modelverse", chans, e.OwnedBy)
	}
	for _, name := range []string{"siliconflow/black-forest-labs/FLUX.1-dev", "modelverse/black-forest-labs/FLUX.1-dev", "sf-backup/black-forest-labs/FLUX.1-schnell", "stepfun-ai/Step1X-Edit"} {
		if _, err := c.Lookup(name); err != nil {
			t.Errorf("Lookup(%q): %v", name, err)
		}
	}
	if _, err := c.Lookup("sf-backup/black-forest-labs/FLUX.1-dev"); err == nil {
		t.Error("a channel's model restriction was ignored")
	}
	var listed []string
	for _, e := range c.List() {
		listed = append(listed, e.Name)
	}
	want := []string{"black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-schnell", "stepfun-ai/Step1X-Edit"}
	if len(listed) != len(want) {
		t.Fatalf("listed %v, want %v", listed, want)
	}
	for i := range want {
		if listed[i] != want[i] {
			t.Fatalf("listed %v, want %v", listed, want)
		}
	}
}

func TestAliasesHideAndReprice(t *testing.T) {
	c, err := Build(channels(), []config.ModelConfig{
		{Name: "flux-dev", Target: "siliconflow/black-forest-labs/FLUX.1-dev", Fallbacks: []string{"modelverse/black-forest-labs/FLUX.1-dev"},
			Price: &config.Price{Unit: "image", Currency: "CNY", Amount: "0.2"}},
		{Target: "stepfun-ai/Step1X-Edit", Hidden: true},
		{Target: "black-forest-labs/FLUX.1-schnell", Price: &config.Price{Unit: "megapixel_step", Currency: "CNY", Amount: "0.0032"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Lookup("flux-dev")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Routes) != 2 || e.Routes[1].Channel != "modelverse" || e.Model.Price.Amount != money.MustParse("0.2") || e.Model.Price.Currency != "CNY" {
		t.Fatalf("alias = %+v", e)
	}
	for _, x := range c.List() {
		if x.Name == "stepfun-ai/Step1X-Edit" {
			t.Fatal("hidden model listed")
		}
	}
	if _, err := c.Lookup("stepfun-ai/Step1X-Edit"); err != nil {
		t.Fatal("hidden models stay routable by name:", err)
	}
	for _, n := range []string{"black-forest-labs/FLUX.1-schnell", "siliconflow/black-forest-labs/FLUX.1-schnell", "sf/black-forest-labs/FLUX.1-schnell"} {
		x, _ := c.Lookup(n)
		if x.Model.Price.Unit != providers.PerMegapixelStep {
			t.Errorf("%s not re-priced: %+v", n, x.Model.Price)
		}
	}
	if _, err := Build(channels(), []config.ModelConfig{{Name: "x", Target: "nope/nothing"}}); err == nil {
		t.Fatal("an alias to a missing target was accepted")
	}
}

func TestDefineModelsInConfig(t *testing.T) {
	c, err := Build(channels(), []config.ModelConfig{
		{Name: "qwen-next", Target: "siliconflow/Qwen/Qwen-Image-2",
			Define: &config.ModelDef{Sizes: []string{"1328x1328"}, MaxN: 1, Params: []string{"seed", "negative_prompt"}},
			Price:  &config.Price{Unit: "image", Currency: "CNY", Amount: "0.3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"qwen-next", "Qwen/Qwen-Image-2", "siliconflow/Qwen/Qwen-Image-2", "sf/Qwen/Qwen-Image-2", "sf-backup/Qwen/Qwen-Image-2"} {
		e, err := c.Lookup(name)
		if name == "sf-backup/Qwen/Qwen-Image-2" {
			if err == nil {
				t.Fatal("a channel restricted to other models took the defined one")
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Model.ID != "Qwen/Qwen-Image-2" || !e.Model.Params.Has(providers.ParamSeed|providers.ParamNegativePrompt) ||
			e.Model.Price.Amount != money.MustParse("0.3") || len(e.Model.Size.Sizes) != 1 || !e.Supports(providers.OpGenerate) {
			t.Fatalf("%s: %+v", name, e.Model)
		}
	}
	_, err = Build(channels(), []config.ModelConfig{{Target: "nowhere/x", Define: &config.ModelDef{}, Price: &config.Price{Unit: "image", Currency: "USD", Amount: "1"}}})
	if err == nil || !strings.Contains(err.Error(), `no channel or provider "nowhere"`) {
		t.Fatalf("want an error for a target with no channel, got %v", err)
	}
}
