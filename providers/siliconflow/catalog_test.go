package siliconflow

import (
	"testing"

	"github.com/imagegw/imagegw/providers"
)

// seed000Prices are the prices seed 000 states for a named model, typed here from the seed's own
// words (§3 "Image generation billing introduction"), not from the catalog.
var seed000Prices = []struct {
	model  string
	unit   providers.PriceUnit
	amount string // yuan
	quote  string
}{
	{SD35LargeTurbo, providers.PerMegapixelStep, "0.0032",
		"you choose a model with a price of ¥0.0032/M px/Steps (stabilityai/stable-diffusion-3-5-large-turbo)"},
	{FLUX1Pro, providers.PerImage, "0.37",
		"you choose a model with a price of ¥0.37/Image (black-forest-labs/FLUX.1-pro)"},
}

// TestPriceSources: every priced model says where its price comes from, "seed 000" only where
// seed 000 states that very amount for that very model, and "assumed" otherwise.
func TestPriceSources(t *testing.T) {
	stated := map[string]bool{}
	for _, sp := range seed000Prices {
		stated[sp.model] = true
		m := byID(t, sp.model)
		if p := m.Price; p.Source != "seed 000" || p.Unit != sp.unit || p.Currency != "CNY" || p.Amount.String() != sp.amount {
			t.Errorf("%s: price %s %s %s (source %q); seed 000 says %q", sp.model, p.Unit, p.Currency, p.Amount, p.Source, sp.quote)
		}
	}
	for _, m := range Catalog() {
		p := m.Price
		switch {
		case p.IsZero():
			continue
		case p.Source == "":
			t.Errorf("%s: price %s %s per %s has no source", m.ID, p.Currency, p.Amount, p.Unit)
		case p.Source == "seed 000" && !stated[m.ID]:
			t.Errorf("%s: price marked \"seed 000\", but seed 000 states no price for it", m.ID)
		case p.Source != "seed 000" && p.Source != providers.Assumed:
			t.Errorf("%s: source %q is neither \"seed 000\" nor %q", m.ID, p.Source, providers.Assumed)
		}
	}
}
