package siliconflow

import (
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// Model ids, exactly as sent on the wire (they contain '/'; the "Pro/" prefix is the paid tier).
const (
	FLUX1Schnell    = "black-forest-labs/FLUX.1-schnell"
	ProFLUX1Schnell = "Pro/black-forest-labs/FLUX.1-schnell"
	FLUX1Dev        = "black-forest-labs/FLUX.1-dev"
	FLUX1Pro        = "black-forest-labs/FLUX.1-pro"
	SD35Large       = "stabilityai/stable-diffusion-3-5-large"
	SD35LargeTurbo  = "stabilityai/stable-diffusion-3-5-large-turbo"
	SD3Medium       = "stabilityai/stable-diffusion-3-medium"
	SDXL            = "stabilityai/stable-diffusion-xl-base-1.0"
	SD21            = "stabilityai/stable-diffusion-2-1"
	JanusPro7B      = "deepseek-ai/Janus-Pro-7B"
	Kolors          = "Kwai-Kolors/Kolors"
	QwenImage       = "Qwen/Qwen-Image"
	QwenImageEdit   = "Qwen/Qwen-Image-Edit"
	QwenImageEdit25 = "Qwen/Qwen-Image-Edit-2509"
)

// ExtraCFG is the Request.Extra key carrying Qwen/Qwen-Image's "cfg" (a JSON number, 0.1–20).
const ExtraCFG = "cfg"

// Bounds the catalog states.
const (
	// maxFreePixels caps the "others" sizes: documented for Pro/FLUX.1-schnell and FLUX.1-dev
	// (PROVIDERS.md §1.2), assumed for the other models that take "others".
	maxFreePixels = 2_359_296
	minCFG        = 0.1
	maxCFG        = 20.0
)

// sizesQwen: Qwen/Qwen-Image's recommended sizes, taken as its list (PROVIDERS.md §1.2). Qwen-Image
// is not in seed 000, so its "customize various resolutions" does not cover it, and no source
// gives its limits.
var sizesQwen = providers.MustSizes("1328x1328", "1664x928", "928x1664", "1472x1140", "1140x1472", "1584x1056", "1056x1584")

// customSizes is the rule of the seed-000 models whose API reference lists six sizes (FLUX.1-schnell
// and SD 3.5 large / large turbo: 1024x1024, 512x1024, 768x512, 768x1024, 1024x576, 576x1024;
// SD 2.1 the same with 512x512 for 1024x1024). Seed 000 §2 says resolutions can be customised
// ("image_size: … You can customize various resolutions") and its worked example (§3) prices
// 1024x512 on SD 3.5 large turbo, which is not in the list, so the list is read as
// recommendations: any WxH within the list's envelope is accepted, sides 512–1024 and multiples
// of 64, as every listed size is. The envelope is an assumption (no source states the limits);
// it keeps every accepted size within what the lists show the models produce. def is the
// documented default (PROVIDERS.md §1.2).
func customSizes(def providers.Size) providers.SizeRule {
	return providers.SizeRule{MinSide: 512, MaxSide: 1024, Multiple: 64, Default: def}
}

// freeFormSizes is the rule of the models whose image_size lists 1024x1024, 960x1280, 768x1024,
// 720x1440, 720x1280 "or others": any WxH up to 2 359 296 pixels. The listed sizes all satisfy
// it. The side bounds 256–2048 and the multiple of 8 are assumptions (latent diffusion works in
// 8-pixel cells; every listed size is a multiple of 8), not from a source.
func freeFormSizes() providers.SizeRule {
	return providers.SizeRule{MinSide: 256, MaxSide: 2048, MaxPixels: maxFreePixels, Multiple: 8,
		Default: providers.Size{W: 1024, H: 1024}}
}

func cny(amount string) money.Amount { return money.MustParse(amount) }

// seed000 is the Source of a price seed 000 states for that very model.
const seed000 = "seed 000"

// perMPStep is a price in yuan per megapixel-step, from source (seed000 or providers.Assumed).
func perMPStep(amount, source string) providers.Price {
	return providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: cny(amount), Source: source}
}

// perImage is a price in yuan per image, from source (seed000 or providers.Assumed).
func perImage(amount, source string) providers.Price {
	return providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: cny(amount), Source: source}
}

// Catalog returns SiliconFlow's built-in models: every model id of PROVIDERS.md §1.2 and seed 000
// §4, with capabilities and list prices. Each call returns fresh slices.
//
// Every model whose size can be set has a Size.Default and every model that takes steps a
// DefaultSteps: the adapter sends them when a request leaves size or steps out, so the upstream
// runs exactly what billing prices. Two prices are stated by seed 000 §3 for their model (Source
// "seed 000"); every other is an assumption (Source providers.Assumed).
func Catalog() []providers.Model {
	gen := []providers.Operation{providers.OpGenerate}
	edit := []providers.Operation{providers.OpEdit}
	const seedish = providers.ParamSeed | providers.ParamPromptEnhancement
	// sd is the Stable Diffusion family's parameter set (2024 schema: negative_prompt,
	// batch_size 1–4, guidance_scale, seed; prompt_enhancement per seed 000 §2).
	const sd = providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamGuidance | providers.ParamPromptEnhancement

	base := func(m providers.Model) providers.Model {
		m.SeedMin, m.SeedMax = 0, sfwire.MaxSeed
		m.URLTTL = sfwire.URLTTL
		if m.MaxN == 0 {
			m.MaxN = 1
		}
		return m
	}
	return []providers.Model{
		base(providers.Model{
			ID: FLUX1Schnell, Description: "FLUX.1 [schnell]: fast 4-step text-to-image",
			Operations: gen, Size: customSizes(providers.Size{W: 1024, H: 1024}),
			Params: seedish, FixedSteps: 4,
			// Assumed: the amount seed 000 §3 gives for SD 3.5 large turbo, not for this model.
			Price: perMPStep("0.0032", providers.Assumed),
		}),
		base(providers.Model{
			ID: ProFLUX1Schnell, Description: "FLUX.1 [schnell], paid tier: 4 steps, free-form sizes",
			Operations: gen, Size: freeFormSizes(), Params: seedish, FixedSteps: 4,
			Price: perMPStep("0.0032", providers.Assumed),
		}),
		base(providers.Model{
			ID: FLUX1Dev, Description: "FLUX.1 [dev]: guidance-distilled text-to-image",
			Operations: gen, Size: freeFormSizes(), Params: seedish | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 30, // 2024 schema: 1–30, default 20
			Price: perMPStep("0.0075", providers.Assumed),
		}),
		base(providers.Model{
			ID: FLUX1Pro, Description: "FLUX.1 [pro]: Black Forest Labs' flagship text-to-image",
			// Sizes are not documented for FLUX.1-pro; assumed to be the "others" rule of its siblings.
			Operations: gen, Size: freeFormSizes(), Params: seedish,
			// Seed 000 §3: "you choose a model with a price of ¥0.37/Image (black-forest-labs/FLUX.1-pro)".
			Price: perImage("0.37", seed000),
		}),
		base(providers.Model{
			ID: SD35Large, Description: "Stable Diffusion 3.5 Large",
			Operations: gen, Size: customSizes(providers.Size{W: 1024, H: 1024}),
			MaxN: 4, Params: sd | providers.ParamSteps, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			Price: perMPStep("0.0075", providers.Assumed),
		}),
		base(providers.Model{
			ID: SD35LargeTurbo, Description: "Stable Diffusion 3.5 Large Turbo: 4 steps",
			Operations: gen, Size: customSizes(providers.Size{W: 1024, H: 1024}),
			MaxN: 4, Params: sd, FixedSteps: 4, MinGuidance: 0, MaxGuidance: 20,
			// Seed 000 §3: "you choose a model with a price of ¥0.0032/M px/Steps
			// (stabilityai/stable-diffusion-3-5-large-turbo)".
			Price: perMPStep("0.0032", seed000),
		}),
		base(providers.Model{
			ID: SD3Medium, Description: "Stable Diffusion 3 Medium",
			Operations: gen, Size: freeFormSizes(),
			MaxN: 4, Params: sd | providers.ParamSteps, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			Price: perMPStep("0.0032", providers.Assumed),
		}),
		base(providers.Model{
			ID: SDXL, Description: "Stable Diffusion XL 1.0: text-to-image and image-to-image",
			Operations: gen, Size: freeFormSizes(), MaxInputImages: 1,
			MaxN: 4, Params: sd | providers.ParamSteps | providers.ParamReferenceImage, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			Price: perMPStep("0.0032", providers.Assumed),
		}),
		base(providers.Model{
			ID: SD21, Description: "Stable Diffusion 2.1: text-to-image and image-to-image",
			Operations: gen, Size: customSizes(providers.Size{W: 512, H: 512}), MaxInputImages: 1,
			MaxN: 4, Params: sd | providers.ParamSteps | providers.ParamReferenceImage, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			Price: perMPStep("0.0016", providers.Assumed),
		}),
		base(providers.Model{
			ID: JanusPro7B, Description: "DeepSeek Janus-Pro-7B: always 384x384 (seed 000 §4)",
			Operations: gen,
			Size:       providers.SizeRule{Fixed: providers.Size{W: 384, H: 384}, Default: providers.Size{W: 384, H: 384}},
			Params:     providers.ParamSeed,
			Price:      perImage("0.02", providers.Assumed),
		}),
		base(providers.Model{
			ID: Kolors, Description: "Kwai Kolors: text-to-image and image-to-image, strong with Chinese prompts",
			Operations: gen, Size: freeFormSizes(), MaxInputImages: 1, MaxN: 4,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps | providers.ParamGuidance | providers.ParamReferenceImage,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100, MinGuidance: 0, MaxGuidance: 20,
			Price: perImage("0.10", providers.Assumed),
		}),
		base(providers.Model{
			ID: QwenImage, Description: "Qwen-Image: text-to-image with strong text rendering (takes cfg, not guidance_scale)",
			Operations: gen, Size: providers.SizeRule{Sizes: sizesQwen, Default: providers.Size{W: 1328, H: 1328}},
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100, Extras: []string{ExtraCFG},
			Price: perImage("0.30", providers.Assumed),
		}),
		base(providers.Model{
			ID: QwenImageEdit, Description: "Qwen-Image-Edit: edits one image by instruction; the output follows the input's size",
			Operations: edit, MaxInputImages: 1,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			Price: perImage("0.30", providers.Assumed),
		}),
		base(providers.Model{
			ID: QwenImageEdit25, Description: "Qwen-Image-Edit-2509: edits by instruction with up to 3 input images",
			Operations: edit, MaxInputImages: 3,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			Price: perImage("0.30", providers.Assumed),
		}),
	}
}
