package ideogram

import (
	"slices"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// Upstream model ids. The legacy ids are sent as image_request.model (or the model form field); the
// 3.0 endpoints take no model field, so ModelV3 only selects the /v1/ideogram-v3/... endpoints.
const (
	ModelV1       = "V_1"
	ModelV1Turbo  = "V_1_TURBO"
	ModelV2       = "V_2"
	ModelV2Turbo  = "V_2_TURBO"
	ModelV2A      = "V_2A"
	ModelV2ATurbo = "V_2A_TURBO"
	ModelV3       = "V_3"
)

// Rendering speeds of Ideogram 3.0; they are also the Quality of the 3.0 price tiers.
const (
	SpeedTurbo   = "TURBO"
	SpeedDefault = "DEFAULT"
	SpeedQuality = "QUALITY"
)

// URLLifetime is how long the gateway assumes an Ideogram image URL stays valid when the URL carries
// no exp parameter. Ideogram documents the links only as available "for a limited period of time"
// (PROVIDERS.md §2.4); third parties report 10 to 24 hours, unconfirmed. One hour is a deliberately
// conservative assumption, not a documented figure.
const URLLifetime = time.Hour

// Extension fields (Request.Extra keys) this adapter reads. Which of them a model takes is in its
// catalog entry; which of them an operation takes is checked per call.
const (
	ExtraRenderingSpeed       = "rendering_speed"
	ExtraMagicPrompt          = "magic_prompt"
	ExtraStyleType            = "style_type"
	ExtraAspectRatio          = "aspect_ratio"
	ExtraResolution           = "resolution"
	ExtraColorPalette         = "color_palette"
	ExtraImageWeight          = "image_weight"
	ExtraResemblance          = "resemblance"
	ExtraDetail               = "detail"
	ExtraStyleCodes           = "style_codes"
	ExtraStylePreset          = "style_preset"
	ExtraDescribeModelVersion = "describe_model_version"
	ExtraMaskFormat           = "mask_format"
	// ExtraStyleReferenceImages is how many of the request's trailing images are style reference
	// images (Ideogram 3.0). The front door sets it from the style_reference_images file parts.
	ExtraStyleReferenceImages = "style_reference_images"
)

// MaxImages is the most images one Ideogram call returns (num_images 1-8, PROVIDERS.md §2.2/§2.3).
const MaxImages = 8

// MaxSeed is the largest seed Ideogram takes (0…2147483647, seed 002 and PROVIDERS.md §2.2).
const MaxSeed = 2147483647

// maxV3InputImages is how many images one 3.0 call takes: the source image plus up to three style
// reference images. Ideogram caps style references only by total size (10 MB); three is the
// gateway's own limit, matching what Ideogram's web app offers.
const maxV3InputImages = 4

func usd(s string) money.Amount { return money.MustParse(s) }

// priceSource is the Source of every Ideogram price: seed 002 (AiHubMix's Ideogram page, its
// "V3 计价" and "V2 & V1 计价" tables) states the amounts of generate, remix (and so variation,
// which is a remix on the wire), edit, upscale, 3.0 reframe and 3.0 replace-background.
//
// Two tiers are NOT from seed 002 or any other source and are assumed: describe (every model,
// describePrice) and legacy reframe (V_2, V_2 Turbo, V_2A, V_2A Turbo, at the model's generate
// price). they are listed in assumedTiers (which the catalog test checks) and
// carry providers.Assumed as their tier's Source.
const priceSource = "seed 002"

// assumedTiers are the operations whose price tier is assumed rather than stated by seed 002, per
// API generation (see priceSource).
var assumedTiers = map[api][]providers.Operation{
	apiLegacy: {providers.OpDescribe, providers.OpReframe},
	apiV3:     {providers.OpDescribe},
}

// tierSource is providers.Assumed for a tier in assumedTiers, else "" (the price's source).
func tierSource(a api, op providers.Operation) string {
	if slices.Contains(assumedTiers[a], op) {
		return providers.Assumed
	}
	return ""
}

// legacyPrices are the V1/V2 list prices of seed 002 ("V2 & V1 计价", per image, USD): generate and
// "text + reference image" (remix) per model, edit for 2.0 and 2.0 Turbo. The table's lines:
//
//	2a 文字生图,或文字 + 参考图生图 US $0.04
//	2a Turbo 文字生图,或文字 + 参考图生图(更快速但质量略低) US $0.025
//	2.0 文字生图,或文字 + 参考图生图 US $0.08
//	2.0 Turbo 文字生图,或文字 + 参考图生图(更快速但质量略低) US $0.05
//	1.0 文字生图,或文字 + 参考图生图 US $0.06
//	1.0 Turbo 文字生图,或文字 + 参考图生图(更快速但质量略低) US $0.02
//	2.0 Edit 通过文字提示、参考图片和二进制蒙版重新生成图像 US $0.08
//	2.0 Turbo Edit 通过文字提示、参考图片和二进制蒙版重新生成图像(更快速但质量略低) US $0.05
var legacyPrices = map[string]struct{ generate, edit string }{
	ModelV2A:      {generate: "0.04"},
	ModelV2ATurbo: {generate: "0.025"},
	ModelV2:       {generate: "0.08", edit: "0.08"},
	ModelV2Turbo:  {generate: "0.05", edit: "0.05"},
	ModelV1:       {generate: "0.06"},
	ModelV1Turbo:  {generate: "0.02"},
}

const (
	// upscalePrice is seed 002's "Upscale 将参考图片分辨率提升至 2 倍,并可能增强图片效果 US $0.06"
	// per image, for every model (the endpoint is the same). Ideogram's own pricing page bills
	// upscale per input image rather than per output image.
	upscalePrice = "0.06"
	// describePrice is NOT from a seed: seed 002 and PROVIDERS.md give no describe price. $0.01 is
	// inferred from a reseller's credit table (openai-hk.com: describe 400 credits against upscale
	// 2400 credits, upscale being $0.06), so treat it as an assumption to confirm.
	describePrice = "0.01"
)

// v3Prices are the Ideogram 3.0 list prices of seed 002 ("V3 计价", per image, USD) by operation and
// rendering speed. Variation is a remix without a prompt and costs what remix costs. The table:
//
//	Ideogram 模型 Generate Remix Edit Reframe Replace BG
//	3.0 Turbo US $0.03 US $0.03 US $0.06 US $0.06 US $0.06
//	3.0 Default US $0.06 US $0.06 US $0.06 US $0.06 US $0.06
//	3.0 Quality US $0.09 US $0.09 US $0.09 US $0.09 US $0.09
var v3Prices = map[providers.Operation][3]string{ // TURBO, DEFAULT, QUALITY
	providers.OpGenerate:          {"0.03", "0.06", "0.09"},
	providers.OpRemix:             {"0.03", "0.06", "0.09"},
	providers.OpVariation:         {"0.03", "0.06", "0.09"},
	providers.OpEdit:              {"0.06", "0.06", "0.09"},
	providers.OpReframe:           {"0.06", "0.06", "0.09"},
	providers.OpReplaceBackground: {"0.06", "0.06", "0.09"},
}

// legacyPrice builds the price of a legacy model: generate, remix and variation at the model's
// generate price (seed 002: "文字生图,或文字 + 参考图生图", text-to-image or text + reference
// image), edit where the model has it, upscale, describe, and reframe. Seed 002 has no legacy
// reframe price: the model's generate price is used, which is NOT from a source (assumedTiers).
func legacyPrice(id string, ops []providers.Operation) providers.Price {
	lp := legacyPrices[id]
	p := providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: usd(lp.generate), Source: priceSource}
	for _, op := range ops {
		amount := lp.generate
		switch op {
		case providers.OpEdit:
			amount = lp.edit
		case providers.OpUpscale:
			amount = upscalePrice
		case providers.OpDescribe:
			amount = describePrice
		}
		p.Tiers = append(p.Tiers, providers.PriceTier{Operation: op, Amount: usd(amount), Source: tierSource(apiLegacy, op)})
	}
	return p
}

// qualitySpeeds are the OpenAI quality names that map onto the rendering speeds, in the order of
// renderingSpeeds.
var qualitySpeeds = []string{"low", "medium", "high"}

// v3Price builds the price of Ideogram 3.0: per operation and rendering speed (PriceTier.Quality
// holds the speed: TURBO, DEFAULT, QUALITY), upscale and describe flat. Each speed tier is repeated
// under its OpenAI quality name (low, medium, high), because a request may name its tier either
// way and a price matcher keyed on Request.Quality must not fall through to the DEFAULT price.
// Amount is the DEFAULT generate price, which is what a request naming no speed pays.
func v3Price() providers.Price {
	p := providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: usd("0.06"), Source: priceSource}
	for _, op := range []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation,
		providers.OpRemix, providers.OpReframe, providers.OpReplaceBackground} {
		for i, speed := range renderingSpeeds {
			p.Tiers = append(p.Tiers, providers.PriceTier{Operation: op, Quality: speed, Amount: usd(v3Prices[op][i])})
		}
		for i, q := range qualitySpeeds {
			p.Tiers = append(p.Tiers, providers.PriceTier{Operation: op, Quality: q, Amount: usd(v3Prices[op][i])})
		}
		// A request without a speed runs at DEFAULT.
		p.Tiers = append(p.Tiers, providers.PriceTier{Operation: op, Amount: usd(v3Prices[op][1])})
	}
	p.Tiers = append(p.Tiers,
		providers.PriceTier{Operation: providers.OpUpscale, Amount: usd(upscalePrice)},
		providers.PriceTier{Operation: providers.OpDescribe, Amount: usd(describePrice), Source: tierSource(apiV3, providers.OpDescribe)})
	return p
}

// Operation sets. Upscale and describe do not depend on a model upstream (the endpoints take no
// model), so every model offers them; variation is remix without a prompt.
var (
	v1Ops  = []providers.Operation{providers.OpGenerate, providers.OpVariation, providers.OpRemix, providers.OpUpscale, providers.OpDescribe}
	v2Ops  = []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation, providers.OpRemix, providers.OpUpscale, providers.OpDescribe, providers.OpReframe}
	v2AOps = []providers.Operation{providers.OpGenerate, providers.OpVariation, providers.OpRemix, providers.OpUpscale, providers.OpDescribe, providers.OpReframe}
	v3Ops  = []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation, providers.OpRemix, providers.OpUpscale, providers.OpDescribe, providers.OpReframe, providers.OpReplaceBackground}
)

var defaultSize = providers.Size{W: 1024, H: 1024}

// Catalog returns Ideogram's models with their capabilities and list prices. Each call returns a
// fresh copy the caller may modify.
//
// Every model has SeedRepeats: Ideogram gives every image of a call the one seed it was sent, so
// a seeded call of several images returns the same picture several times (seed 002: "单次生成多张
// 图时不要使用 seed,否则会生成相同图像", do not use seed when generating several images in one
// call, or the images will be identical). The front door then makes one-image calls with seed,
// seed+1, ….
//
// Sizes: Size.Default (1024x1024) is what billing prices a request without a size at; the
// adapter then sends Ideogram's default aspect ratio 1:1, which renders 1024x1024 (writeDefaults).
// Edit and replace-background keep the source image's size and upscale doubles it: no size is
// sent for them, and the upstream decides.
func Catalog() []providers.Model {
	legacySizes := providers.MustSizes(legacyResolutions...)
	v1Extras := []string{ExtraMagicPrompt, ExtraAspectRatio, ExtraImageWeight, ExtraResemblance, ExtraDetail, ExtraDescribeModelVersion}
	v2AExtras := append(append([]string(nil), v1Extras...), ExtraStyleType, ExtraResolution)
	v2Extras := append(append([]string(nil), v2AExtras...), ExtraColorPalette, ExtraMaskFormat)
	v3Extras := []string{ExtraRenderingSpeed, ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution,
		ExtraColorPalette, ExtraImageWeight, ExtraResemblance, ExtraDetail, ExtraStyleCodes, ExtraStylePreset,
		ExtraDescribeModelVersion, ExtraMaskFormat, ExtraStyleReferenceImages}

	legacy := func(id, desc string, ops []providers.Operation, sizes providers.SizeRule, params providers.Param, extras []string) providers.Model {
		return providers.Model{
			ID: id, Description: desc, Operations: ops, Size: sizes, MaxN: MaxImages, SeedRepeats: true, MaxInputImages: 1,
			Params: params, SeedMin: 0, SeedMax: MaxSeed, Extras: extras, Price: legacyPrice(id, ops), URLTTL: URLLifetime,
		}
	}
	// V_1 takes aspect ratios only: resolution is a 2.0-and-newer field.
	v1Size := providers.SizeRule{AspectRatios: append([]string(nil), legacyAspectRatios...), Default: defaultSize}
	v2Size := providers.SizeRule{Sizes: legacySizes, AspectRatios: append([]string(nil), legacyAspectRatios...), Default: defaultSize}
	withNeg := providers.ParamSeed | providers.ParamPromptEnhancement | providers.ParamNegativePrompt
	noNeg := providers.ParamSeed | providers.ParamPromptEnhancement

	return []providers.Model{
		legacy(ModelV1, "Ideogram 1.0 (legacy API; aspect ratios only)", v1Ops, v1Size, withNeg, v1Extras),
		legacy(ModelV1Turbo, "Ideogram 1.0 Turbo (legacy API; aspect ratios only)", v1Ops, v1Size, withNeg, v1Extras),
		legacy(ModelV2, "Ideogram 2.0 (legacy API)", v2Ops, v2Size, withNeg, v2Extras),
		legacy(ModelV2Turbo, "Ideogram 2.0 Turbo (legacy API)", v2Ops, v2Size, withNeg, v2Extras),
		legacy(ModelV2A, "Ideogram 2a (legacy API)", v2AOps, v2Size, noNeg, v2AExtras),
		legacy(ModelV2ATurbo, "Ideogram 2a Turbo (legacy API)", v2AOps, v2Size, noNeg, v2AExtras),
		{
			ID:          ModelV3,
			Description: "Ideogram 3.0 (rendering speeds TURBO, DEFAULT, QUALITY; quality low/medium/high maps to them)",
			Operations:  v3Ops,
			Size: providers.SizeRule{Sizes: providers.MustSizes(v3Resolutions...),
				AspectRatios: append([]string(nil), v3AspectRatios...), Default: defaultSize},
			MaxN:           MaxImages,
			SeedRepeats:    true,
			MaxInputImages: maxV3InputImages,
			Params:         providers.ParamSeed | providers.ParamPromptEnhancement | providers.ParamNegativePrompt | providers.ParamReferenceImage,
			Qualities:      []string{"low", "medium", "high"},
			SeedMin:        0,
			SeedMax:        MaxSeed,
			Extras:         v3Extras,
			Price:          v3Price(),
			URLTTL:         URLLifetime,
		},
	}
}

// lookupModel finds a catalog model by id.
func lookupModel(models []providers.Model, id string) (*providers.Model, bool) {
	for i := range models {
		if models[i].ID == id {
			return &models[i], true
		}
	}
	return nil, false
}
