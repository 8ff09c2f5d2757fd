package modelverse

import (
	"slices"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// URLTTL is how long Modelverse's image URLs for the FLUX/Kontext/Step1X family stay valid:
// 7 days (seed 004 "链接将在生成后7天内失效"; PROVIDERS.md §3.2).
const URLTTL = 7 * 24 * time.Hour

// Bounds from seed 004 (PROVIDERS.md §3.2 table).
const (
	// seedMin and seedMax: [-1, 2147483647] in the seed revision; a later revision allows up to
	// 9 999 999 999, but the seed's narrower range is what both revisions accept.
	seedMin     = -1
	seedMax     = 2147483647
	guidanceMin = 1
	guidanceMax = 10
	stepsMin    = 1
	stepsMax    = 50
	// stepsDefault is the seed's 28 (per-model pages also say 20; do not rely on either).
	stepsDefault = 28
	// fluxDevMinSide and fluxDevMaxSide: size within [256x256, 1536x1536].
	fluxDevMinSide = 256
	fluxDevMaxSide = 1536
	// maxMultiImages is how many images the -multi models take. Neither the seed nor
	// PROVIDERS.md gives a limit: 4 is an assumption.
	maxMultiImages = 4
)

// aspectRatios are the aspect_ratio values of the Kontext text2image and multi models.
var aspectRatios = []string{"21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"}

// defaultAspectRatio is the text2image models' aspect_ratio when none is sent (seed 004:
// "aspect_ratio string 默认值 1:1").
const defaultAspectRatio = "1:1"

// kind is a model family: the fields a model takes on the wire.
type kind int

const (
	fluxDev        kind = iota // n, image (optional), size, strength, steps
	kontextSingle              // image (required)
	kontextMulti               // images[] (required), aspect_ratio
	kontextText2Im             // n, aspect_ratio
	step1xEdit                 // image (required), steps, negative_prompt
)

// upstream is one Modelverse model: the id seed 004 lists it under, the lower-case id Modelverse
// renamed it to three days later (PROVIDERS.md §3.2 model row; api_doc/image-generation.md
// @ 5137512), its family, its free quota and its assumed price. Both ids are in the catalog and
// both name this one upstream model: requests under either spelling draw on one free quota.
type upstream struct {
	seedID    string
	renamedID string
	kind      kind
	// free is the model's free quota (seed 004's table "生图模型列表", column "免费额度（张图）"):
	// trial images of the Modelverse account that holds the channel's API key, not of a gateway
	// key. They lower what the operator pays Modelverse (cost), not what a key is charged
	// (price). This table is the one place the catalog states them; Price.FreeImages carries the
	// same number on both spellings of the model.
	free  int
	price string
	desc  string
}

// Prices: neither seed 004 nor PROVIDERS.md gives a Modelverse price, so every price's Source is
// providers.Assumed. The amounts are assumptions in CNY per image: Black Forest Labs' USD list
// prices (FLUX.1 [dev] $0.025, Kontext [pro] $0.04, Kontext [max] $0.08) at about 7.2 CNY/USD,
// and Step1X-Edit like FLUX.1-dev. Operators must re-price them in config before billing real
// money.
//
// Ids contain '/'; they are never split.
var upstreams = []upstream{
	// seed 004: "| black-forest-labs/FLUX.1-dev | 英文模型 | 10 |"
	{"black-forest-labs/FLUX.1-dev", "black-forest-labs/flux.1-dev", fluxDev, 10, "0.18",
		"FLUX.1 [dev]: text-to-image or image-to-image with strength"},
	// seed 004: "| black-forest-labs/Flux-Kontext-Max | 英文模型 | 5 |"
	{"black-forest-labs/Flux-Kontext-Max", "black-forest-labs/flux-kontext-max", kontextSingle, 5, "0.58",
		"FLUX.1 Kontext [max]: edits one image following the prompt"},
	// seed 004: "| black-forest-labs/Flux-Kontext-Max-multi | | 5 |"
	{"black-forest-labs/Flux-Kontext-Max-multi", "black-forest-labs/flux-kontext-max/multi", kontextMulti, 5, "0.58",
		"FLUX.1 Kontext [max] multi: combines several images following the prompt"},
	// seed 004: "| black-forest-labs/Flux-Kontext-Max-text2image | | 5 |"
	{"black-forest-labs/Flux-Kontext-Max-text2image", "black-forest-labs/flux-kontext-max/text-to-image", kontextText2Im, 5, "0.58",
		"FLUX.1 Kontext [max] text-to-image by aspect ratio"},
	// seed 004: "| black-forest-labs/Flux-Kontext-Pro | | 5 |"
	{"black-forest-labs/Flux-Kontext-Pro", "black-forest-labs/flux-kontext-pro", kontextSingle, 5, "0.29",
		"FLUX.1 Kontext [pro]: edits one image following the prompt"},
	// seed 004: "| black-forest-labs/Flux-Kontext-Pro-multi | | 5 |"
	{"black-forest-labs/Flux-Kontext-Pro-multi", "black-forest-labs/flux-kontext-pro/multi", kontextMulti, 5, "0.29",
		"FLUX.1 Kontext [pro] multi: combines several images following the prompt"},
	// seed 004: "| black-forest-labs/Flux-Kontext-Pro-text2image | | 5 |"
	{"black-forest-labs/Flux-Kontext-Pro-text2image", "black-forest-labs/flux-kontext-pro/text-to-image", kontextText2Im, 5, "0.29",
		"FLUX.1 Kontext [pro] text-to-image by aspect ratio"},
	// seed 004: "| stepfun-ai/Step1X-Edit | | 5 |"
	{"stepfun-ai/Step1X-Edit", "stepfun-ai/step1x-edit", step1xEdit, 5, "0.18",
		"Step1X-Edit: edits one image following the prompt, with negative prompt and steps"},
}

// entry is one catalog id: a spelling of an upstream model.
type entry struct {
	id string
	*upstream
}

// entries lists every catalog id, each model's seed spelling first and its renamed one second.
var entries = func() []entry {
	out := make([]entry, 0, 2*len(upstreams))
	for i := range upstreams {
		u := &upstreams[i]
		out = append(out, entry{u.seedID, u}, entry{u.renamedID, u})
	}
	return out
}()

// UpstreamModel returns the id seed 004 lists a catalog model under, for either of its two
// spellings ("black-forest-labs/flux.1-dev" → "black-forest-labs/FLUX.1-dev"), and id itself
// for an id outside the catalog. Two ids with the same UpstreamModel are one model upstream and
// share its free quota on a channel (an upstream account): count a free pool by channel and
// UpstreamModel, never by the id a request names.
func UpstreamModel(id string) string {
	for _, e := range entries {
		if e.id == id {
			return e.seedID
		}
	}
	return id
}

// modelOf builds the catalog entry of e. The fields are seed 004's per-model lists exactly:
// n 1–4 only for FLUX.1-dev and the text2image models; image optional on FLUX.1-dev and
// required on Kontext and Step1X (modelled as edits without mask); images[] required on the
// multi models; size only on FLUX.1-dev; strength only on FLUX.1-dev; aspect_ratio on the
// text2image models and, per PROVIDERS.md §3.2, the multi models; steps on FLUX.1-dev and
// Step1X; negative_prompt on Step1X; seed and guidance_scale on all.
func modelOf(e entry) providers.Model {
	desc := e.desc
	if e.id != e.seedID {
		desc += " (Modelverse's renamed id of " + e.seedID + ", the same upstream model)"
	}
	m := providers.Model{
		ID:          e.id,
		Upstream:    e.seedID,
		Description: desc,
		MaxN:        1,
		Params:      providers.ParamSeed | providers.ParamGuidance,
		MinGuidance: guidanceMin, MaxGuidance: guidanceMax,
		SeedMin: seedMin, SeedMax: seedMax,
		Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: money.MustParse(e.price),
			FreeImages: e.free, Source: providers.Assumed},
		URLTTL: URLTTL,
	}
	switch e.kind {
	case fluxDev:
		m.Operations = []providers.Operation{providers.OpGenerate}
		m.Size = providers.SizeRule{MinSide: fluxDevMinSide, MaxSide: fluxDevMaxSide, Default: providers.Size{W: 1024, H: 1024}}
		m.MaxN = 4
		m.MaxInputImages = 1
		m.Params |= providers.ParamReferenceImage | providers.ParamStrength | providers.ParamSteps
		m.MinSteps, m.MaxSteps, m.DefaultSteps = stepsMin, stepsMax, stepsDefault
	case kontextSingle:
		m.Operations = []providers.Operation{providers.OpEdit}
		m.MaxInputImages = 1
	case kontextMulti:
		m.Operations = []providers.Operation{providers.OpEdit}
		m.Size = providers.SizeRule{AspectRatios: slices.Clone(aspectRatios)}
		m.MaxInputImages = maxMultiImages
	case kontextText2Im:
		m.Operations = []providers.Operation{providers.OpGenerate}
		m.Size = providers.SizeRule{AspectRatios: slices.Clone(aspectRatios)}
		m.MaxN = 4
	case step1xEdit:
		m.Operations = []providers.Operation{providers.OpEdit}
		m.MaxInputImages = 1
		m.Params |= providers.ParamSteps | providers.ParamNegativePrompt
		m.MinSteps, m.MaxSteps, m.DefaultSteps = stepsMin, stepsMax, stepsDefault
	}
	return m
}

// catalog is the built-in model list, in the order of entries.
var catalog = func() []providers.Model {
	out := make([]providers.Model, len(entries))
	for i, e := range entries {
		out[i] = modelOf(e)
	}
	return out
}()

// lookup returns the built-in model with id and its family, or nil.
func lookup(id string) (*providers.Model, kind) {
	for i := range catalog {
		if catalog[i].ID == id {
			return &catalog[i], entries[i].kind
		}
	}
	return nil, 0
}
