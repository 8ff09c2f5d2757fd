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
	if req.Width != 0 || req.Height != 0 {
		if !sfwire.SizeAllowed(providers.SizeRule{Sizes: imageSizes}, req.Width, req.Height) {
			return nil, providers.ParamError("size", "size must be one of 1024x1024, 512x1024, 768x512, 768x1024, 1024x576, 576x1024")
		}
		w.ImageSize = sfwire.SizeString(req.Width, req.Height)
	} else if req.AspectRatio != "" {
		return nil, providers.UnsupportedParam("aspect_ratio", "yunyx models take a size (WIDTHxHEIGHT), not an aspect ratio")
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

// fromWire turns a decoded answer into the canonical result: URLs valid for one hour, no created
// time, the call's seed on the image, and its size (the requested one or the 1024x1024 default).
func fromWire(provider string, req *providers.Request, r *sfwire.Response, now time.Time) (*providers.Result, error) {
	w, h := req.Width, req.Height
	if w == 0 || h == 0 {
		w, h = 1024, 1024
	}
	outs, err := r.Outputs(provider, now, sfwire.URLTTL, w, h)
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
