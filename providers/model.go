package providers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/money"
)

// Size is an image size in pixels.
type Size struct{ W, H int }

// String prints "WxH".
func (s Size) String() string { return strconv.Itoa(s.W) + "x" + strconv.Itoa(s.H) }

// Pixels is W×H.
func (s Size) Pixels() int { return s.W * s.H }

// IsZero reports whether the size is unset.
func (s Size) IsZero() bool { return s.W == 0 && s.H == 0 }

// ParseSize reads "WxH" (also "W*H" and upper-case "X") with positive integers.
func ParseSize(v string) (Size, error) {
	w, h, ok := strings.Cut(strings.ToLower(strings.TrimSpace(v)), "x")
	if !ok {
		w, h, ok = strings.Cut(v, "*")
	}
	if !ok {
		return Size{}, fmt.Errorf("size %q is not of the form WIDTHxHEIGHT", v)
	}
	wi, err1 := strconv.Atoi(strings.TrimSpace(w))
	hi, err2 := strconv.Atoi(strings.TrimSpace(h))
	if err1 != nil || err2 != nil || wi <= 0 || hi <= 0 || wi > 100000 || hi > 100000 {
		return Size{}, fmt.Errorf("size %q is not of the form WIDTHxHEIGHT with positive integers", v)
	}
	return Size{wi, hi}, nil
}

// MustSizes parses a list of "WxH" strings for built-in catalogs; it panics on a bad entry.
func MustSizes(vs ...string) []Size {
	out := make([]Size, len(vs))
	for i, v := range vs {
		s, err := ParseSize(v)
		if err != nil {
			panic(err)
		}
		out[i] = s
	}
	return out
}

// SizeRule says which output sizes a model accepts. A rule with no sizes, no bounds, no aspect
// ratios and no fixed size means the size cannot be set (the output follows the input image, as
// for instruction-based edit models).
type SizeRule struct {
	// Sizes lists the exact sizes accepted. When empty, any size within the bounds below is.
	Sizes []Size
	// Bounds for free-form sizes (used when Sizes is empty); zero means unbounded.
	MinSide, MaxSide     int
	MinPixels, MaxPixels int
	// Multiple, when set, is what width and height must both be multiples of (for example 8).
	Multiple int
	// AspectRatios lists "W:H" ratios the model takes instead of a size. A model with ratios but
	// no sizes and no bounds accepts only ratios.
	AspectRatios []string
	// Default is the size used (and billed) when a request names none: adapters send it. Zero
	// when the upstream chooses (gpt-image "auto"), then billed at the worst case and settled at
	// what the upstream reports making.
	Default Size
	// Fixed is set for models that ignore the size and always produce this one (Janus-Pro 384x384).
	Fixed Size
}

// FreeForm reports whether the rule accepts sizes by bounds rather than from a list.
func (r SizeRule) FreeForm() bool {
	return len(r.Sizes) == 0 && (r.MaxSide > 0 || r.MaxPixels > 0 || r.MinSide > 0 || r.Multiple > 0)
}

// Param is a set of optional request parameters a model honours.
type Param uint32

// Optional parameters. A request that sets one the model does not honour is refused with a 400
// naming it (or, for the few with a safe nearest value, mapped on opt-in).
const (
	ParamNegativePrompt Param = 1 << iota
	ParamSeed
	ParamSteps
	ParamGuidance
	ParamStrength
	// ParamReferenceImage: generate takes reference images (image-to-image).
	ParamReferenceImage
	ParamPromptEnhancement
	ParamBackground
	ParamOutputFormat
	ParamOutputCompression
	ParamModeration
	ParamUser
)

// Has reports whether all of q are in p.
func (p Param) Has(q Param) bool { return p&q == q }

// paramNames maps each Param to the request field that sets it.
var paramNames = []struct {
	p    Param
	name string
}{
	{ParamNegativePrompt, "negative_prompt"}, {ParamSeed, "seed"}, {ParamSteps, "steps"},
	{ParamGuidance, "guidance_scale"}, {ParamStrength, "strength"}, {ParamReferenceImage, "image"},
	{ParamPromptEnhancement, "prompt_enhancement"}, {ParamBackground, "background"},
	{ParamOutputFormat, "output_format"}, {ParamOutputCompression, "output_compression"},
	{ParamModeration, "moderation"}, {ParamUser, "user"},
}

// ParseParams turns request field names ("seed", "negative_prompt", …) into a Param set.
func ParseParams(names []string) (Param, error) {
	var p Param
	for _, n := range names {
		found := false
		for _, pn := range paramNames {
			if pn.name == n {
				p |= pn.p
				found = true
			}
		}
		if !found {
			var known []string
			for _, pn := range paramNames {
				known = append(known, pn.name)
			}
			return 0, fmt.Errorf("unknown parameter %q (known: %s)", n, strings.Join(known, ", "))
		}
	}
	return p, nil
}

// Names lists the request field names in p.
func (p Param) Names() []string {
	var out []string
	for _, pn := range paramNames {
		if p.Has(pn.p) {
			out = append(out, pn.name)
		}
	}
	return out
}

// Model is one upstream model with what it can do and what it costs at list price.
type Model struct {
	// ID is the upstream model id, sent on the wire. It may contain '/'.
	ID          string
	Description string
	// Operations this model takes (each must also be implemented by the adapter).
	Operations []Operation
	Size       SizeRule
	// MaxN is the most images one upstream call can return; 1 for upstreams without a count
	// field. The front door fans larger requests out into several calls.
	MaxN int
	// Upstream names the upstream model when several ids spell one (Modelverse's renamed ids):
	// they share its free quota. Empty means ID.
	Upstream string
	// Defined marks a model defined in config (models[].define): its adapter does not know its
	// defaults, so the front door sends the size and steps billing prices.
	Defined bool
	// SeedRepeats: one seed makes every image of a call the same picture (seed 002: "do not use
	// seed when generating several images at once"). With a seed, the front door makes calls of
	// one image each, seeds seed, seed+1, ….
	SeedRepeats bool
	// MaxInputImages is how many source/reference images one call accepts (0: none on generate).
	MaxInputImages int
	Params         Param
	// Qualities and Styles list the accepted values of quality and style; empty means the field
	// is not honoured ("auto" is always accepted as "let the model decide").
	Qualities []string
	Styles    []string
	// FixedSteps > 0: the model always runs exactly this many steps and steps cannot be set.
	FixedSteps   int
	DefaultSteps int
	MinSteps     int
	MaxSteps     int
	MinGuidance  float64
	MaxGuidance  float64
	// SeedMin and SeedMax bound seed when ParamSeed is set.
	SeedMin, SeedMax int64
	// Extras lists extension fields (Request.Extra keys) this model takes, such as
	// "rendering_speed" or "style_type". Others are refused with a 400 naming them.
	Extras []string
	// DefaultResponseFormat is the response_format a client gets when it sends none: "url" when
	// empty; "b64_json" for models whose own API answers only with base64 (gpt-image-1).
	DefaultResponseFormat string
	Price                 Price
	// URLTTL is how long the upstream's image URLs stay valid.
	URLTTL time.Duration
}

// CloneModels returns a deep copy of ms (slices included), so a caller can change the copy
// without touching an adapter's built-in catalog.
func CloneModels(ms []Model) []Model {
	out := slices.Clone(ms)
	for i := range out {
		m := &out[i]
		m.Operations = slices.Clone(m.Operations)
		m.Size.Sizes = slices.Clone(m.Size.Sizes)
		m.Size.AspectRatios = slices.Clone(m.Size.AspectRatios)
		m.Qualities = slices.Clone(m.Qualities)
		m.Styles = slices.Clone(m.Styles)
		m.Extras = slices.Clone(m.Extras)
		m.Price.Tiers = slices.Clone(m.Price.Tiers)
	}
	return out
}

// Supports reports whether the model takes op.
func (m *Model) Supports(op Operation) bool {
	for _, o := range m.Operations {
		if o == op {
			return true
		}
	}
	return false
}

// PriceUnit says what a price is per.
type PriceUnit string

// Pricing rules.
const (
	// PerImage: a flat amount per delivered image (optionally tiered).
	PerImage PriceUnit = "image"
	// PerMegapixelStep: amount × (width × height / 1,048,576) × steps per image.
	PerMegapixelStep PriceUnit = "megapixel_step"
	// PerMegapixel: amount × (width × height / 1,048,576) per image.
	PerMegapixel PriceUnit = "megapixel"
)

// Price is a model's pricing rule, in the currency the vendor quotes it in.
type Price struct {
	Unit     PriceUnit
	Currency string // ISO 4217: "CNY", "USD"
	Amount   money.Amount
	// Tiers override Amount for matching requests; the first match wins. Empty fields match any.
	Tiers []PriceTier
	// FreeImages is the upstream account's free quota for the model (seed 004): that many
	// images cost the operator nothing, once per channel across replicas. Keys pay for them
	// unless the operator gives keys free images too (billing.key_free_images).
	FreeImages int
	// Source says where the amount comes from: a seed ("seed 000"), a vendor page and the date
	// it was read ("https://… (2026-11-20)"), "config" for an operator's price, or "assumed"
	// when no source gives one. /v1/models shows it; startup lists the assumed ones.
	Source string
}

// Assumed is the Source of a price no document gives.
const Assumed = "assumed"

// PriceTier is a more specific price: by operation, quality tier (quality, or Ideogram's
// rendering_speed) and size.
type PriceTier struct {
	Operation Operation
	Quality   string
	Size      string
	Amount    money.Amount
	// Source, when set, is where this tier's amount comes from if not from the price's Source
	// (Ideogram's describe tier is assumed while its other tiers are seed 002's).
	Source string
}

// IsZero reports whether no price is set.
func (p Price) IsZero() bool { return p.Unit == "" }

// Equal reports whether p and q are the same pricing rule.
func (p *Price) Equal(q *Price) bool {
	return p.Unit == q.Unit && p.Currency == q.Currency && p.Amount == q.Amount && p.FreeImages == q.FreeImages &&
		slices.EqualFunc(p.Tiers, q.Tiers, func(a, b PriceTier) bool { // sources are not part of the rule
			return a.Operation == b.Operation && a.Quality == b.Quality && a.Size == b.Size && a.Amount == b.Amount
		})
}
