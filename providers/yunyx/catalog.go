package yunyx

import (
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// Model ids, exactly as yunyx names them: no vendor prefix (SiliconFlow's are
// black-forest-labs/… and stabilityai/…).
const (
	FLUX1Schnell = "FLUX.1-schnell"
	SD35Large    = "stable-diffusion-3-5-large"
)

// imageSizes is yunyx's image_size enum (seed 003, PROVIDERS.md §4.2); 1024x1024 is the default.
var imageSizes = providers.MustSizes("1024x1024", "512x1024", "768x512", "768x1024", "1024x576", "576x1024")

// Catalog returns yunyx's built-in models (seed 003 "支持的模型"). Neither takes a count field
// (MaxN 1), a negative prompt, steps, guidance or images; both take prompt_enhancement and an
// int64 seed. Each call returns fresh slices.
func Catalog() []providers.Model {
	model := func(id, desc string, fixedSteps int, price string) providers.Model {
		return providers.Model{
			ID: id, Description: desc,
			Operations: []providers.Operation{providers.OpGenerate},
			Size:       providers.SizeRule{Sizes: append([]providers.Size(nil), imageSizes...), Default: providers.Size{W: 1024, H: 1024}},
			MaxN:       1,
			Params:     providers.ParamSeed | providers.ParamPromptEnhancement,
			FixedSteps: fixedSteps,
			SeedMin:    0, SeedMax: sfwire.MaxSeed,
			URLTTL: sfwire.URLTTL,
			Price:  providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: money.MustParse(price)},
		}
	}
	return []providers.Model{
		// FLUX.1 [schnell] always runs 4 steps (seed 000 §2, for the same model at SiliconFlow);
		// yunyx has no steps field at all [INFER]. Price assumed, not from a source (seed 003
		// gives none).
		model(FLUX1Schnell, "FLUX.1 [schnell]: fast 4-step text-to-image", 4, "0.02"),
		// Price assumed, not from a source (seed 003 gives none).
		model(SD35Large, "Stable Diffusion 3.5 Large", 0, "0.15"),
	}
}
