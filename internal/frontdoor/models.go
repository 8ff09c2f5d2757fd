package frontdoor

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// modelObject is an OpenAI model object with the gateway's image capabilities and price.
type modelObject struct {
	ID           string       `json:"id"`
	Object       string       `json:"object"`
	Created      int64        `json:"created"`
	OwnedBy      string       `json:"owned_by"`
	Operations   []string     `json:"operations"`
	Sizes        []string     `json:"sizes,omitempty"`
	SizeRange    *sizeRange   `json:"size_range,omitempty"`
	AspectRatios []string     `json:"aspect_ratios,omitempty"`
	DefaultSize  string       `json:"default_size,omitempty"`
	MaxN         int          `json:"max_n"`
	MaxNPerCall  int          `json:"max_n_per_call"`
	Parameters   []string     `json:"parameters"`
	Qualities    []string     `json:"qualities,omitempty"`
	Styles       []string     `json:"styles,omitempty"`
	Extensions   []string     `json:"extensions,omitempty"`
	Steps        *stepsInfo   `json:"steps,omitempty"`
	Seed         *seedRange   `json:"seed_range,omitempty"`
	Pricing      *pricingInfo `json:"pricing,omitempty"`
	Description  string       `json:"description,omitempty"`
}

type sizeRange struct {
	MinSide   int `json:"min_side,omitempty"`
	MaxSide   int `json:"max_side,omitempty"`
	MinPixels int `json:"min_pixels,omitempty"`
	MaxPixels int `json:"max_pixels,omitempty"`
	Multiple  int `json:"multiple,omitempty"`
}

type stepsInfo struct {
	Fixed   int `json:"fixed,omitempty"`
	Default int `json:"default,omitempty"`
	Min     int `json:"min,omitempty"`
	Max     int `json:"max,omitempty"`
}

type seedRange struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

type pricingInfo struct {
	Unit       string        `json:"unit"`
	Currency   string        `json:"currency"`
	Amount     string        `json:"amount"`
	Tiers      []pricingTier `json:"tiers,omitempty"`
	FreeImages int           `json:"free_images,omitempty"`
	// Source: where the amount comes from ("seed 000", a vendor page and date, "config", or
	// "assumed" when no document gives it).
	Source string `json:"source"`
}

type pricingTier struct {
	Operation string `json:"operation,omitempty"`
	Quality   string `json:"quality,omitempty"`
	Size      string `json:"size,omitempty"`
	Amount    string `json:"amount"`
	// Source is set when the tier's amount has another source than the price's.
	Source string `json:"source,omitempty"`
}

// modelObject describes e as key k sees it: at the prices it pays (its own markup, if any).
func (h *Handler) modelObject(e *catalog.Entry, k *store.Key) modelObject {
	if k != nil && k.Markup != nil {
		e = e.WithMarkup(*k.Markup)
	}
	m := &e.Model
	o := modelObject{
		ID: e.Name, Object: "model", OwnedBy: e.OwnedBy, MaxN: h.o.MaxN, MaxNPerCall: max(m.MaxN, 1),
		Parameters: m.Params.Names(), Qualities: m.Qualities, Styles: m.Styles, Extensions: m.Extras,
		AspectRatios: m.Size.AspectRatios, Description: m.Description,
	}
	if o.Parameters == nil {
		o.Parameters = []string{}
	}
	for _, op := range e.Operations {
		o.Operations = append(o.Operations, string(op))
	}
	switch {
	case !m.Size.Fixed.IsZero():
		o.Sizes = []string{m.Size.Fixed.String()}
	case len(m.Size.Sizes) > 0:
		for _, s := range m.Size.Sizes {
			o.Sizes = append(o.Sizes, s.String())
		}
	case m.Size.FreeForm():
		o.SizeRange = &sizeRange{MinSide: m.Size.MinSide, MaxSide: m.Size.MaxSide, MinPixels: m.Size.MinPixels, MaxPixels: m.Size.MaxPixels, Multiple: m.Size.Multiple}
	}
	if !m.Size.Default.IsZero() {
		o.DefaultSize = m.Size.Default.String()
	}
	if m.FixedSteps > 0 || m.Params.Has(providers.ParamSteps) {
		o.Steps = &stepsInfo{Fixed: m.FixedSteps, Default: m.DefaultSteps, Min: m.MinSteps, Max: m.MaxSteps}
	}
	if m.Params.Has(providers.ParamSeed) && (m.SeedMin != 0 || m.SeedMax != 0) {
		o.Seed = &seedRange{Min: m.SeedMin, Max: m.SeedMax}
	}
	if p := m.Price; !p.IsZero() {
		src := p.Source
		if src == "" {
			src = providers.Assumed
		}
		pi := &pricingInfo{Unit: string(p.Unit), Currency: p.Currency, Amount: p.Amount.String(), FreeImages: p.FreeImages, Source: src}
		for _, t := range p.Tiers {
			pi.Tiers = append(pi.Tiers, pricingTier{Operation: string(t.Operation), Quality: t.Quality, Size: t.Size, Amount: t.Amount.String(), Source: t.Source})
		}
		o.Pricing = pi
	}
	return o
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) {
	k := KeyFrom(r.Context())
	data := []modelObject{}
	for _, e := range h.currentCatalog().List() {
		if keyAllows(k, e.Name) {
			data = append(data, h.modelObject(e, k))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (h *Handler) getModel(w http.ResponseWriter, r *http.Request) {
	// The SDKs percent-encode the id ("siliconflow%2Fblack-forest-labs%2FFLUX.1-dev"), and chi
	// routes on the raw path when there is one.
	id := strings.TrimPrefix(chi.URLParam(r, "*"), "/")
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	e, err := h.currentCatalog().Lookup(id)
	k := KeyFrom(r.Context())
	if err != nil || !keyAllows(k, e.Name) {
		h.fail(w, r, &providers.Error{Kind: providers.KindModelNotFound, Param: "model",
			Message: "The model '" + id + "' does not exist or you do not have access to it."})
		return
	}
	writeJSON(w, http.StatusOK, h.modelObject(e, k))
}

// Quoter is implemented by a Meter that can price a request without running it.
type Quoter interface {
	Quote(r *http.Request, a Admission) (any, error)
}

// quote answers POST /v1/images/quote: the generation body, priced, nothing generated.
func (h *Handler) quote(w http.ResponseWriter, r *http.Request) {
	q, ok := h.o.Meter.(Quoter)
	if !ok {
		h.fail(w, r, unsupported("", "Quotes are not available: billing is not configured."))
		return
	}
	c, err := h.prepare(r, providers.OpGenerate, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := q.Quote(r, c.admission())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
