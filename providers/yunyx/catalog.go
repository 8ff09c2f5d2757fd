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

// imageSizes is yunyx's image_size enum (seed 003 "image_size 可选值", PROVIDERS.md §4.2). Seed 003
// lists these six values and says nothing of custom sizes, so they are the only ones accepted.
var imageSizes = providers.MustSizes("1024x1024", "512x1024", "768x512", "768x1024", "1024x576", "576x1024")

// defaultSize is image_size's documented default (seed 003: "image_size string 1024x1024"). The
// field is required (PROVIDERS.md §4.2), so the adapter sends this when a request names no size.
var defaultSize = providers.Size{W: 1024, H: 1024}

// Catalog returns yunyx's built-in models (seed 003 "支持的模型"). Neither takes a count field
// (MaxN 1), a negative prompt, steps, guidance or images; both take prompt_enhancement and an
// int64 seed. Each call returns fresh slices.
//
// Seed 003 states no price, so both prices are assumptions (Source providers.Assumed). They are
// per image: yunyx has no steps field and documents no steps, so a price per megapixel-step
// could not be checked against what runs.
func Catalog() []providers.Model {
	model := func(id, desc string, fixedSteps int, price string) providers.Model {
		return providers.Model{
			ID: id, Description: desc,
			Operations: []providers.Operation{providers.OpGenerate},
			Size:       providers.SizeRule{Sizes: append([]providers.Size(nil), imageSizes...), Default: defaultSize},
			MaxN:       1,
			Params:     providers.ParamSeed | providers.ParamPromptEnhancement,
			FixedSteps: fixedSteps,
			SeedMin:    0, SeedMax: sfwire.MaxSeed,
			URLTTL: sfwire.URLTTL,
			Price: providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: money.MustParse(price),
				Source: providers.Assumed},
		}
	}
	return []providers.Model{
		// FLUX.1 [schnell] always runs 4 steps (seed 000 §2, for the same model at SiliconFlow);
		// yunyx has no steps field at all [INFER]. Price assumed (seed 003 gives none).
		model(FLUX1Schnell, "FLUX.1 [schnell]: fast 4-step text-to-image", 4, "0.02"),
		// Price assumed (seed 003 gives none).
		model(SD35Large, "Stable Diffusion 3.5 Large", 0, "0.15"),
	}
}
