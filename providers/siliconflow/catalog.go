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

var (
	// sizesSD35: FLUX.1-schnell and SD 3.5 large / large turbo (PROVIDERS.md §1.2).
	sizesSD35 = providers.MustSizes("1024x1024", "512x1024", "768x512", "768x1024", "1024x576", "576x1024")
	// sizesSD21: stable-diffusion-2-1, 512x512 first and default (PROVIDERS.md §1.2).
	sizesSD21 = providers.MustSizes("512x512", "512x1024", "768x512", "768x1024", "1024x576", "576x1024")
	// sizesQwen: Qwen/Qwen-Image's recommended sizes, taken as its list (PROVIDERS.md §1.2).
	sizesQwen = providers.MustSizes("1328x1328", "1664x928", "928x1664", "1472x1140", "1140x1472", "1584x1056", "1056x1584")
)

// freeFormSizes is the rule of the models whose image_size lists 1024x1024, 960x1280, 768x1024,
// 720x1440, 720x1280 "or others": any WxH up to 2 359 296 pixels. The listed sizes all satisfy
// it. The side bounds 256–2048 and the multiple of 8 are assumptions (latent diffusion works in
// 8-pixel cells; every listed size is a multiple of 8), not from a source.
func freeFormSizes() providers.SizeRule {
	return providers.SizeRule{MinSide: 256, MaxSide: 2048, MaxPixels: maxFreePixels, Multiple: 8,
		Default: providers.Size{W: 1024, H: 1024}}
}

func cny(amount string) money.Amount { return money.MustParse(amount) }

func perMPStep(amount string) providers.Price {
	return providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: cny(amount)}
}

func perImage(amount string) providers.Price {
	return providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: cny(amount)}
}

// Catalog returns SiliconFlow's built-in models: every model id of PROVIDERS.md §1.2 and seed 000
// §4, with capabilities and list prices. Each call returns fresh slices.
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
			Operations: gen, Size: providers.SizeRule{Sizes: sizesSD35, Default: providers.Size{W: 1024, H: 1024}},
			Params: seedish, FixedSteps: 4,
			// Assumed, not from a source: the 4-step rate seed 000 §3 gives for SD 3.5 large turbo.
			Price: perMPStep("0.0032"),
		}),
		base(providers.Model{
			ID: ProFLUX1Schnell, Description: "FLUX.1 [schnell], paid tier: 4 steps, free-form sizes",
			Operations: gen, Size: freeFormSizes(), Params: seedish, FixedSteps: 4,
			// Assumed, not from a source.
			Price: perMPStep("0.0032"),
		}),
		base(providers.Model{
			ID: FLUX1Dev, Description: "FLUX.1 [dev]: guidance-distilled text-to-image",
			Operations: gen, Size: freeFormSizes(), Params: seedish | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 30, // 2024 schema: 1–30, default 20
			// Assumed, not from a source.
			Price: perMPStep("0.0075"),
		}),
		base(providers.Model{
			ID: FLUX1Pro, Description: "FLUX.1 [pro]: Black Forest Labs' flagship text-to-image",
			// Sizes are not documented for FLUX.1-pro; assumed to be the "others" rule of its siblings.
			Operations: gen, Size: freeFormSizes(), Params: seedish,
			// Seed 000 §3: "¥0.37/Image (black-forest-labs/FLUX.1-pro)".
			Price: perImage("0.37"),
		}),
		base(providers.Model{
			ID: SD35Large, Description: "Stable Diffusion 3.5 Large",
			Operations: gen, Size: providers.SizeRule{Sizes: sizesSD35, Default: providers.Size{W: 1024, H: 1024}},
			MaxN: 4, Params: sd | providers.ParamSteps, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			// Assumed, not from a source.
			Price: perMPStep("0.0075"),
		}),
		base(providers.Model{
			ID: SD35LargeTurbo, Description: "Stable Diffusion 3.5 Large Turbo: 4 steps",
			Operations: gen, Size: providers.SizeRule{Sizes: sizesSD35, Default: providers.Size{W: 1024, H: 1024}},
			MaxN: 4, Params: sd, FixedSteps: 4, MinGuidance: 0, MaxGuidance: 20,
			// Seed 000 §3: "¥0.0032/M px/Steps (stabilityai/stable-diffusion-3-5-large-turbo)".
			Price: perMPStep("0.0032"),
		}),
		base(providers.Model{
			ID: SD3Medium, Description: "Stable Diffusion 3 Medium",
			Operations: gen, Size: freeFormSizes(),
			MaxN: 4, Params: sd | providers.ParamSteps, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			// Assumed, not from a source.
			Price: perMPStep("0.0032"),
		}),
		base(providers.Model{
			ID: SDXL, Description: "Stable Diffusion XL 1.0: text-to-image and image-to-image",
			Operations: gen, Size: freeFormSizes(), MaxInputImages: 1,
			MaxN: 4, Params: sd | providers.ParamSteps | providers.ParamReferenceImage, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			// Assumed, not from a source.
			Price: perMPStep("0.0032"),
		}),
		base(providers.Model{
			ID: SD21, Description: "Stable Diffusion 2.1: text-to-image and image-to-image",
			Operations: gen, Size: providers.SizeRule{Sizes: sizesSD21, Default: providers.Size{W: 512, H: 512}}, MaxInputImages: 1,
			MaxN: 4, Params: sd | providers.ParamSteps | providers.ParamReferenceImage, DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			MinGuidance: 0, MaxGuidance: 20,
			// Assumed, not from a source.
			Price: perMPStep("0.0016"),
		}),
		base(providers.Model{
			ID: JanusPro7B, Description: "DeepSeek Janus-Pro-7B: always 384x384 (seed 000 §4)",
			Operations: gen,
			Size:       providers.SizeRule{Fixed: providers.Size{W: 384, H: 384}, Default: providers.Size{W: 384, H: 384}},
			Params:     providers.ParamSeed,
			// Assumed, not from a source.
			Price: perImage("0.02"),
		}),
		base(providers.Model{
			ID: Kolors, Description: "Kwai Kolors: text-to-image and image-to-image, strong with Chinese prompts",
			Operations: gen, Size: freeFormSizes(), MaxInputImages: 1, MaxN: 4,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps | providers.ParamGuidance | providers.ParamReferenceImage,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100, MinGuidance: 0, MaxGuidance: 20,
			// Assumed, not from a source.
			Price: perImage("0.10"),
		}),
		base(providers.Model{
			ID: QwenImage, Description: "Qwen-Image: text-to-image with strong text rendering (takes cfg, not guidance_scale)",
			Operations: gen, Size: providers.SizeRule{Sizes: sizesQwen, Default: providers.Size{W: 1328, H: 1328}},
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100, Extras: []string{ExtraCFG},
			// Assumed, not from a source.
			Price: perImage("0.30"),
		}),
		base(providers.Model{
			ID: QwenImageEdit, Description: "Qwen-Image-Edit: edits one image by instruction; the output follows the input's size",
			Operations: edit, MaxInputImages: 1,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			// Assumed, not from a source.
			Price: perImage("0.30"),
		}),
		base(providers.Model{
			ID: QwenImageEdit25, Description: "Qwen-Image-Edit-2509: edits by instruction with up to 3 input images",
			Operations: edit, MaxInputImages: 3,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 100,
			// Assumed, not from a source.
			Price: perImage("0.30"),
		}),
	}
}
