package catalog

import (
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/config"
)

// TestRoutingFields: routes carry their channel's priority and weight, a model's override
// replaces them, an alias's fallback routes are a later group, and a strategy lands on the alias
// or, without a name, on the target; a model_routing id the channel does not offer is a problem.
func TestRoutingFields(t *testing.T) {
	chs := channels()
	one, two, three := 1, 2, 3
	chs[0].Priority, chs[0].Weight = 0, 3
	chs[1].Priority, chs[1].Weight = 1, 1
	chs[2].Weight = 1
	chs[2].Routing = map[string]Routing{"black-forest-labs/FLUX.1-dev": {Priority: &two, Weight: &one}}
	c, err := Build(chs, []config.ModelConfig{
		{Name: "flux", Target: "siliconflow/black-forest-labs/FLUX.1-schnell", Fallbacks: []string{"modelverse/black-forest-labs/FLUX.1-dev"}, Strategy: StrategyCheapest},
		{Target: "black-forest-labs/FLUX.1-dev", Strategy: StrategyFastest},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := c.Lookup("flux")
	if e.Strategy != StrategyCheapest || len(e.Routes) != 3 {
		t.Fatalf("flux: %+v", e)
	}
	for i, want := range []struct {
		channel                 string
		priority, weight, group int
	}{{"sf", 0, 3, 0}, {"sf-backup", 1, 1, 0}, {"modelverse", 2, 1, 1}} {
		r := e.Routes[i]
		if r.Channel != want.channel || r.Priority != want.priority || r.Weight != want.weight || r.Group != want.group {
			t.Errorf("route %d: %s priority %d weight %d group %d; want %+v", i, r.Channel, r.Priority, r.Weight, r.Group, want)
		}
	}
	if e, _ := c.Lookup("black-forest-labs/FLUX.1-dev"); e.Strategy != StrategyFastest || len(e.Routes) != 2 || e.Routes[1].Priority != 2 {
		t.Fatalf("bare id: %+v", e)
	}
	if len(c.Channels()) != 3 || len(c.Pinned()) != 5 {
		t.Fatalf("channels %d pinned %d", len(c.Channels()), len(c.Pinned()))
	}

	chs[0].Routing = map[string]Routing{"no/such-model": {Weight: &three}}
	if _, err := Build(chs, nil); err == nil || !strings.Contains(err.Error(), `channel sf: model_routing: the channel offers no model "no/such-model"`) {
		t.Fatalf("unknown model_routing id: %v", err)
	}
}
