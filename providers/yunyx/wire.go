package yunyx

import (
	"fmt"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// toWire translates a canonical request into yunyx's body, which carries only model, prompt,
// image_size, prompt_enhancement and seed. Everything else is refused with KindUnsupported naming
// it, for configured models too: the wire has no place for it. m is nil for a model added by
// configuration.
//
// image_size is required (PROVIDERS.md §4.2) and always sent: the requested size, else the
// model's Size.Default — the size billing prices — or, for a configured model, seed 003's
// default 1024x1024 (a configured yunyx model should declare default_size 1024x1024 so billing
// prices what is sent).
func toWire(m *providers.Model, req *providers.Request) (*sfwire.Request, error) {
	w := &sfwire.Request{Model: req.Model, Prompt: req.Prompt}
	switch {
	case w.Model == "":
		return nil, providers.ParamError("model", "a model is required")
	case w.Prompt == "":
		return nil, providers.ParamError("prompt", "a prompt is required")
	}
	if err := refuseUncarried(m, req); err != nil {
		return nil, err
	}
	switch {
	case req.Width != 0 || req.Height != 0:
		if !sfwire.SizeAllowed(providers.SizeRule{Sizes: imageSizes}, req.Width, req.Height) {
			return nil, providers.ParamError("size", "size must be one of 1024x1024, 512x1024, 768x512, 768x1024, 1024x576, 576x1024")
		}
		w.ImageSize = sfwire.SizeString(req.Width, req.Height)
	case req.AspectRatio != "":
		return nil, providers.UnsupportedParam("aspect_ratio", "yunyx models take a size (WIDTHxHEIGHT), not an aspect ratio")
	default:
		w.ImageSize = modelDefault(m).String()
	}
	if req.Seed != nil {
		if *req.Seed < 0 || *req.Seed > sfwire.MaxSeed {
			return nil, providers.ParamError("seed", "seed must be between 0 and %d", sfwire.MaxSeed)
		}
		s := *req.Seed
		w.Seed = &s
	}
	if req.PromptEnhancement != nil {
		b := *req.PromptEnhancement
		w.PromptEnhancement = &b
	}
	return w, nil
}

// refuseUncarried refuses every canonical field yunyx's wire has no place for.
func refuseUncarried(m *providers.Model, req *providers.Request) error {
	unsupported := func(param string) error {
		return providers.UnsupportedParam(param, "%s is not supported by yunyx models", param)
	}
	for k := range req.Extra {
		return unsupported(k)
	}
	switch {
	case req.Operation != "" && req.Operation != providers.OpGenerate:
		return providers.UnsupportedParam("model", "yunyx models only generate images")
	case req.N > 1:
		return providers.UnsupportedParam("n", "yunyx returns one image per call")
	case req.NegativePrompt != "":
		return unsupported("negative_prompt")
	case req.Steps != 0 && (m == nil || m.FixedSteps == 0):
		return unsupported("steps")
	case req.Steps != 0 && req.Steps != m.FixedSteps:
		return providers.UnsupportedParam("steps", "this model always runs %d steps", m.FixedSteps)
	case req.GuidanceScale != nil:
		return unsupported("guidance_scale")
	case req.Strength != nil:
		return unsupported("strength")
	case len(req.Images) > 0:
		return unsupported("image")
	case req.Mask != nil:
		return unsupported("mask")
	case req.Quality != "" && req.Quality != "auto":
		return unsupported("quality")
	case req.Style != "" && req.Style != "auto":
		return unsupported("style")
	case req.Background != "" && req.Background != "auto":
		return unsupported("background")
	case req.OutputFormat != "":
		return unsupported("output_format")
	case req.OutputCompression != nil:
		return unsupported("output_compression")
	case req.Moderation != "" && req.Moderation != "auto":
		return unsupported("moderation")
	case req.User != "":
		return unsupported("user")
	}
	return nil
}

// modelDefault is the size sent when a request names none: the model's Size.Default, else seed
// 003's default.
func modelDefault(m *providers.Model) providers.Size {
	if m != nil && !m.Size.Default.IsZero() {
		return m.Size.Default
	}
	return defaultSize
}

// fromWire turns a decoded answer into the canonical result: URLs valid for one hour, no created
// time, the call's seed on the image, and its size (the requested one, else the default sent).
func fromWire(provider string, m *providers.Model, req *providers.Request, r *sfwire.Response, now time.Time) (*providers.Result, error) {
	size := providers.Size{W: req.Width, H: req.Height}
	if size.W <= 0 || size.H <= 0 {
		size = modelDefault(m)
	}
	outs, err := r.Outputs(provider, now, sfwire.URLTTL, size.W, size.H)
	if err != nil {
		return nil, err
	}
	return &providers.Result{Images: outs}, nil
}

func encode(w *sfwire.Request) ([]byte, error) {
	b, err := sfwire.EncodeRequest(w)
	if err != nil {
		return nil, fmt.Errorf("yunyx: %w", err)
	}
	return b, nil
}
