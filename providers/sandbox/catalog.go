package sandbox

import (
	"math"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// Model ids of the sandbox's catalog.
const (
	// ModelImage is priced per image and takes generate, edit and variation.
	ModelImage = "sandbox-image"
	// ModelSteps is priced per megapixel-step with settable steps (1..50, default 20).
	ModelSteps = "sandbox-steps"
	// ModelFixed is priced per megapixel-step and always runs exactly 4 steps.
	ModelFixed = "sandbox-fixed"
)

// Size bounds shared by every sandbox model.
const (
	minSide  = 64
	maxSide  = 2048
	multiple = 8
	// ratioLongSide is the longer side of an image asked for by aspect ratio.
	ratioLongSide = 1024
)

// maxN is how many images one sandbox call renders; the front door fans larger n out.
const maxN = 4

// standardSizes are OpenAI's fixed sizes (dall-e-2, dall-e-3, gpt-image-1). The free-form rule
// (64..2048 per side, multiples of 8) accepts all of them, so SDK clients that send them work;
// a test checks it.
var standardSizes = providers.MustSizes("256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536")

// aspectRatios are the ratios sandbox-image takes instead of a size (priced per image, so the
// size an aspect ratio becomes does not change the quote).
var aspectRatios = []string{"1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16"}

// freeForm is the size rule of every sandbox model: any size of 64..2048 per side in multiples of 8.
func freeForm() providers.SizeRule {
	return providers.SizeRule{MinSide: minSide, MaxSide: maxSide, Multiple: multiple, Default: providers.Size{W: 1024, H: 1024}}
}

// catalog builds the sandbox's models. It returns fresh slices on every call, so callers may
// change what they get.
//
// The prices exercise the gateway's billing rules and are not the price of anything real:
//   - sandbox-image, USD 0.01 per image: not from a source, a round number chosen for tests;
//   - sandbox-steps and sandbox-fixed, CNY 0.0032 per megapixel-step: the rate of seed 000's
//     worked example ("Billing" section: stabilityai/stable-diffusion-3-5-large-turbo at
//     ¥0.0032/M px/Steps, where 1024x512 at 4 steps costs (1024*512)/(1024*1024)*4*0.0032 =
//     ¥0.0064). sandbox-fixed reproduces that example exactly.
func catalog() []providers.Model {
	image := freeForm()
	image.AspectRatios = append([]string(nil), aspectRatios...)
	return []providers.Model{
		{
			ID:          ModelImage,
			Description: "Sandbox test images priced per image: generate (with reference images), edit with a mask, variation.",
			Operations:  []providers.Operation{providers.OpGenerate, providers.OpEdit, providers.OpVariation},
			Size:        image,
			MaxN:        maxN,
			// The source image plus three more (references on generate, tints on edit).
			MaxInputImages: 4,
			Params: providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps | providers.ParamGuidance |
				providers.ParamStrength | providers.ParamReferenceImage | providers.ParamPromptEnhancement | providers.ParamUser,
			Qualities:    []string{"standard", "hd", "low", "medium", "high"},
			Styles:       []string{"vivid", "natural"},
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 50,
			MinGuidance: 0, MaxGuidance: 20,
			SeedMin: 0, SeedMax: math.MaxInt64,
			// Not from a source: a round per-image price for billing tests.
			Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.01"), Source: "sandbox test price"},
		},
		{
			ID:           ModelSteps,
			Description:  "Sandbox test images priced per megapixel-step; steps 1..50 (default 20).",
			Operations:   []providers.Operation{providers.OpGenerate},
			Size:         freeForm(),
			MaxN:         maxN,
			Params:       providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamSteps | providers.ParamGuidance | providers.ParamPromptEnhancement | providers.ParamUser,
			DefaultSteps: 20, MinSteps: 1, MaxSteps: 50,
			MinGuidance: 0, MaxGuidance: 20,
			SeedMin: 0, SeedMax: math.MaxInt64,
			// Seed 000, "Billing": ¥0.0032 per million pixels per step (the SD 3.5 large turbo example).
			Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: money.MustParse("0.0032"), Source: "seed 000"},
		},
		{
			ID:          ModelFixed,
			Description: "Sandbox test images priced per megapixel-step at a fixed 4 steps, like FLUX.1-schnell (1024x512 costs ¥0.0064).",
			Operations:  []providers.Operation{providers.OpGenerate},
			Size:        freeForm(),
			MaxN:        maxN,
			// Like the fixed-step models of seed 000: no steps and no guidance.
			Params:     providers.ParamNegativePrompt | providers.ParamSeed | providers.ParamPromptEnhancement | providers.ParamUser,
			FixedSteps: 4, DefaultSteps: 4,
			SeedMin: 0, SeedMax: math.MaxInt64,
			// Seed 000, "Billing": ¥0.0032 per million pixels per step; 1024x512 at 4 steps = ¥0.0064.
			Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: money.MustParse("0.0032"), Source: "seed 000"},
		},
	}
}
