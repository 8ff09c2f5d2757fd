package openai

import (
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// URLTTL is how long OpenAI's dall-e image URLs stay valid: 60 minutes (PROVIDERS.md §5.4).
const URLTTL = 60 * time.Minute

// The upstream model ids of OpenAI's own API (PROVIDERS.md §5.1).
const (
	ModelDallE2        = "dall-e-2"
	ModelDallE3        = "dall-e-3"
	ModelGPTImage1     = "gpt-image-1"
	ModelGPTImage1Mini = "gpt-image-1-mini"
)

// ExtraInputFidelity is the one extension field (Request.Extra key) the OpenAI adapter takes:
// gpt-image-1's input_fidelity ("high" or "low") on edits (PROVIDERS.md §5.2).
const ExtraInputFidelity = "input_fidelity"

// usd parses a USD list price for the catalogs below.
func usd(s string) money.Amount { return money.MustParse(s) }

// openAIModels is the built-in catalog of OpenAI's own API. It is built fresh on every call so
// callers may change what they get.
//
// Capabilities follow PROVIDERS.md §5.1–§5.3 ([CONF: S25, S27]).
//
// Prices: every price below is OpenAI's public list price per image in USD (its pricing page),
// supplied in the engineering brief. None of them comes from the seeds or PROVIDERS.md, which
// quote no OpenAI prices and cite no dated OpenAI pricing page, so every Source is
// providers.Assumed. gpt-image prices are per output image only: the input text and image tokens
// OpenAI also bills for (notably the source images of an edit) are not modelled.
func openAIModels() []providers.Model {
	return []providers.Model{
		{
			ID:          ModelDallE2,
			Description: "OpenAI DALL·E 2: generations, edits (one square PNG under 4 MB, optional mask) and variations",
			Operations:  []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation},
			Size: providers.SizeRule{
				Sizes:   providers.MustSizes("256x256", "512x512", "1024x1024"),
				Default: providers.Size{W: 1024, H: 1024}, // [UNCONF] in PROVIDERS.md §5.1
			},
			MaxN:           10,
			MaxInputImages: 1,
			Params:         providers.ParamUser,
			Qualities:      []string{"standard"},
			// OpenAI list price (not from a seed): $0.020 at 1024², $0.018 at 512², $0.016 at 256²,
			// the same for generations, edits and variations.
			Price: providers.Price{
				Unit:     providers.PerImage,
				Currency: "USD",
				Amount:   usd("0.02"),
				Source:   providers.Assumed,
				Tiers: []providers.PriceTier{
					{Size: "1024x1024", Amount: usd("0.02")},
					{Size: "512x512", Amount: usd("0.018")},
					{Size: "256x256", Amount: usd("0.016")},
				},
			},
			URLTTL: URLTTL,
		},
		{
			ID:          ModelDallE3,
			Description: "OpenAI DALL·E 3: generations only, one image per call, returns the revised prompt",
			Operations:  []providers.Operation{providers.OpGenerate},
			Size: providers.SizeRule{
				Sizes:   providers.MustSizes("1024x1024", "1792x1024", "1024x1792"),
				Default: providers.Size{W: 1024, H: 1024}, // [UNCONF] in PROVIDERS.md §5.1
			},
			MaxN:      1, // dall-e-3 takes only n=1; the front door fans out.
			Params:    providers.ParamUser,
			Qualities: []string{"standard", "hd"},
			Styles:    []string{"vivid", "natural"},
			// OpenAI list price (not from a seed): standard $0.04 at 1024², $0.08 at 1024×1792 and
			// 1792×1024; hd $0.08 at 1024², $0.12 wide. Tiers are ordered so that the first match is
			// right: hd first, then standard (or quality unset/auto, which is standard upstream).
			Price: providers.Price{
				Unit:     providers.PerImage,
				Currency: "USD",
				Amount:   usd("0.04"),
				Source:   providers.Assumed,
				Tiers: []providers.PriceTier{
					{Quality: "hd", Size: "1024x1024", Amount: usd("0.08")},
					{Quality: "hd", Size: "1792x1024", Amount: usd("0.12")},
					{Quality: "hd", Size: "1024x1792", Amount: usd("0.12")},
					{Quality: "hd", Amount: usd("0.08")}, // hd at the default size, 1024²
					{Size: "1024x1024", Amount: usd("0.04")},
					{Size: "1792x1024", Amount: usd("0.08")},
					{Size: "1024x1792", Amount: usd("0.08")},
				},
			},
			URLTTL: URLTTL,
		},
		gptImageModel(ModelGPTImage1,
			"OpenAI gpt-image-1: generations and edits (up to 16 images and a mask); always returns base64",
			[]string{ExtraInputFidelity},
			// OpenAI list price (not from a seed): low $0.011, medium $0.042, high $0.167 at 1024²;
			// low $0.016, medium $0.063, high $0.25 at 1536×1024 and 1024×1536.
			[3][2]string{{"0.011", "0.016"}, {"0.042", "0.063"}, {"0.167", "0.25"}}),
		gptImageModel(ModelGPTImage1Mini,
			"OpenAI gpt-image-1-mini: the cheaper gpt-image-1; generations and edits; always returns base64",
			nil,
			// NOT from any source in this repository nor from the brief: recalled from OpenAI's
			// public pricing page (late 2025): low $0.005, medium $0.011, high $0.036 at 1024²;
			// low $0.006, medium $0.015, high $0.052 at 1536×1024 and 1024×1536. Confirm before
			// relying on them.
			[3][2]string{{"0.005", "0.006"}, {"0.011", "0.015"}, {"0.036", "0.052"}}),
	}
}

// gptImageModel builds a gpt-image model. prices holds, for low, medium and high quality, the
// price at 1024x1024 and at the two 1536-pixel sizes.
//
// Quality "auto" (or unset) and size "auto" (zero) are priced at the worst case the model can
// pick: high quality and the 1536-pixel size. OpenAI echoes the quality and size it used, but
// the canonical Result has no place for them yet, so the quote stays the worst case.
func gptImageModel(id, desc string, extras []string, prices [3][2]string) providers.Model {
	var tiers []providers.PriceTier
	for i, q := range []string{"low", "medium", "high"} {
		sq, wide := usd(prices[i][0]), usd(prices[i][1])
		tiers = append(tiers,
			providers.PriceTier{Quality: q, Size: "1024x1024", Amount: sq},
			providers.PriceTier{Quality: q, Size: "1536x1024", Amount: wide},
			providers.PriceTier{Quality: q, Size: "1024x1536", Amount: wide},
			providers.PriceTier{Quality: q, Amount: wide}, // size auto: the worst case
		)
	}
	high, highWide := usd(prices[2][0]), usd(prices[2][1])
	tiers = append(tiers,
		providers.PriceTier{Size: "1024x1024", Amount: high},
		providers.PriceTier{Size: "1536x1024", Amount: highWide},
		providers.PriceTier{Size: "1024x1536", Amount: highWide},
	)
	return providers.Model{
		ID:          id,
		Description: desc,
		Operations:  []providers.Operation{providers.OpGenerate, providers.OpEdit},
		Size: providers.SizeRule{
			// Width and height zero mean "auto": the model picks one of these.
			Sizes: providers.MustSizes("1024x1024", "1536x1024", "1024x1536"),
		},
		MaxN:           10,
		MaxInputImages: 16,
		Params: providers.ParamBackground | providers.ParamOutputFormat | providers.ParamOutputCompression |
			providers.ParamModeration | providers.ParamUser,
		Qualities: []string{"low", "medium", "high"},
		Extras:    extras,
		Price: providers.Price{
			Unit:     providers.PerImage,
			Currency: "USD",
			Amount:   highWide,
			Tiers:    tiers,
			Source:   providers.Assumed,
		},
		// gpt-image answers with bytes, never URLs, and OpenAI's clients expect b64_json from it.
		DefaultResponseFormat: "b64_json",
	}
}

// Extension fields an OpenAI-compatible host may take on top of OpenAI's (seed 001's request
// table): the Options key "extensions" lists them by these wire names.
const (
	ExtNegativePrompt = "negative_prompt"
	ExtSeed           = "seed"
	ExtSteps          = "num_inference_steps"
	ExtGuidance       = "guidance_scale"
)

// extParams maps the wire names of the extension fields to the canonical parameters.
var extParams = []struct {
	wire  string
	param providers.Param
}{
	{ExtNegativePrompt, providers.ParamNegativePrompt},
	{ExtSeed, providers.ParamSeed},
	{ExtSteps, providers.ParamSteps},
	{ExtGuidance, providers.ParamGuidance},
}

// extParam returns the canonical parameter of an extension field's wire name.
func extParam(wire string) (providers.Param, bool) {
	for _, e := range extParams {
		if e.wire == wire {
			return e.param, true
		}
	}
	return 0, false
}

// allExtensions is every extension field of seed 001.
const allExtensions = providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps | providers.ParamGuidance

// compatibleModels is the built-in catalog of an OpenAI-compatible host, from seed 001 (a generic
// aggregator's text-to-image guide): its six model ids and maximum sizes, width and height in
// multiples of 8, and the extension fields negative_prompt, num_inference_steps, guidance_scale
// and seed. ext keeps only the extension fields the configured host takes; maxN and ttl come
// from the channel's options.
//
// What seed 001 does not say and is assumed here, generically: a 256-pixel minimum side; steps
// 1–100 and guidance 0–20 (SiliconFlow's ranges, PROVIDERS.md §1.2); seeds 0…2 147 483 647 (safe
// for int32 backends); midjourney-v6 ("various ratios") bounded like flux-1.1-pro at 2048; no
// extension fields for dall-e-3, which is OpenAI's model with its own fixed sizes.
//
// Prices: seed 001 quotes none, so the models carry no price (and so no price Source). A
// deployment must price them in config; until it does they are unpriced.
func compatibleModels(ext providers.Param, maxN int, ttl time.Duration) []providers.Model {
	free := func(id, desc string, maxSide int) providers.Model {
		m := providers.Model{
			ID:          id,
			Description: desc,
			Operations:  []providers.Operation{providers.OpGenerate},
			Size:        providers.SizeRule{MinSide: 256, MaxSide: maxSide, Multiple: 8},
			MaxN:        maxN,
			Params:      ext,
			URLTTL:      ttl,
		}
		if ext.Has(providers.ParamSteps) {
			m.MinSteps, m.MaxSteps = 1, 100
		}
		if ext.Has(providers.ParamGuidance) {
			m.MinGuidance, m.MaxGuidance = 0, 20
		}
		if ext.Has(providers.ParamSeed) {
			m.SeedMin, m.SeedMax = 0, 2147483647
		}
		return m
	}
	return []providers.Model{
		free("flux-1.1-pro", "FLUX 1.1 Pro via an OpenAI-compatible host (seed 001): up to 2048x2048", 2048),
		free("flux-dev", "FLUX Dev via an OpenAI-compatible host (seed 001): up to 1024x1024", 1024),
		free("flux-schnell", "FLUX Schnell via an OpenAI-compatible host (seed 001): up to 1024x1024", 1024),
		free("stable-diffusion-xl", "Stable Diffusion XL via an OpenAI-compatible host (seed 001): up to 1024x1024", 1024),
		{
			ID:          "dall-e-3",
			Description: "DALL·E 3 via an OpenAI-compatible host (seed 001): 1024x1024 or 1792x1024",
			Operations:  []providers.Operation{providers.OpGenerate},
			Size:        providers.SizeRule{Sizes: providers.MustSizes("1024x1024", "1792x1024")},
			MaxN:        1,
			URLTTL:      ttl,
		},
		free("midjourney-v6", "Midjourney v6 via an OpenAI-compatible host (seed 001): various ratios", 2048),
	}
}
