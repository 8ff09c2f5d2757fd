package siliconflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// toWire translates a canonical request for op into SiliconFlow's body. m is the model's catalog
// entry, or nil for a model added by configuration (then everything the wire can carry is passed
// on and the upstream judges it). Whatever the wire cannot carry, or the model does not take, is
// refused with KindUnsupported naming the parameter; values outside the model's documented ranges
// are KindInvalidRequest. The front door has validated the request already: this is defense in
// depth, and it keeps the adapter honest when used on its own.
func toWire(m *providers.Model, op providers.Operation, req *providers.Request) (*sfwire.Request, error) {
	w := &sfwire.Request{Model: req.Model, Prompt: req.Prompt}
	if w.Model == "" {
		return nil, providers.ParamError("model", "a model is required")
	}
	if w.Prompt == "" {
		return nil, providers.ParamError("prompt", "a prompt is required")
	}
	if m != nil && !m.Supports(op) {
		return nil, providers.UnsupportedParam("model", "model %s does not support the %s operation", m.ID, op)
	}
	if err := refuseUncarried(req); err != nil {
		return nil, err
	}
	has := func(p providers.Param) bool { return m == nil || m.Params.Has(p) }

	// Extension fields: only cfg exists on this wire.
	for k := range req.Extra {
		if k != ExtraCFG || (m != nil && !hasExtra(m, k)) {
			return nil, providers.UnsupportedParam(k, "%s is not supported by this model", k)
		}
	}
	if raw, ok := req.Extra[ExtraCFG]; ok {
		var cfg float64
		if err := json.Unmarshal(bytes.TrimSpace(raw), &cfg); err != nil {
			return nil, providers.ParamError(ExtraCFG, "cfg must be a number")
		}
		if cfg < minCFG || cfg > maxCFG {
			return nil, providers.ParamError(ExtraCFG, "cfg must be between %g and %g", minCFG, maxCFG)
		}
		w.CFG = &cfg
	}

	if req.NegativePrompt != "" {
		if !has(providers.ParamNegativePrompt) {
			return nil, providers.UnsupportedParam("negative_prompt", "negative_prompt is not supported by this model")
		}
		w.NegativePrompt = req.NegativePrompt
	}

	if err := sizeToWire(m, req, w); err != nil {
		return nil, err
	}

	if req.N > 1 {
		maxN := 4 // batch_size 1–4 (seed 000 §2)
		if m != nil {
			maxN = m.MaxN
		}
		if req.N > maxN {
			return nil, providers.UnsupportedParam("n", "this model returns at most %d image(s) per call", maxN)
		}
		w.BatchSize = req.N
	}

	if req.Seed != nil {
		if !has(providers.ParamSeed) {
			return nil, providers.UnsupportedParam("seed", "seed is not supported by this model")
		}
		if *req.Seed < 0 || *req.Seed > sfwire.MaxSeed {
			return nil, providers.ParamError("seed", "seed must be between 0 and %d", sfwire.MaxSeed)
		}
		s := *req.Seed
		w.Seed = &s
	}

	if err := stepsToWire(m, req, w); err != nil {
		return nil, err
	}

	if req.GuidanceScale != nil {
		g := *req.GuidanceScale
		if !has(providers.ParamGuidance) {
			return nil, providers.UnsupportedParam("guidance_scale", "guidance_scale is not supported by this model")
		}
		if m != nil && (g < m.MinGuidance || g > m.MaxGuidance) {
			return nil, providers.ParamError("guidance_scale", "guidance_scale must be between %g and %g", m.MinGuidance, m.MaxGuidance)
		}
		w.GuidanceScale = &g
	}

	if req.PromptEnhancement != nil {
		if !has(providers.ParamPromptEnhancement) {
			return nil, providers.UnsupportedParam("prompt_enhancement", "prompt_enhancement is not supported by this model")
		}
		b := *req.PromptEnhancement
		w.PromptEnhancement = &b
	}

	if err := imagesToWire(m, op, req, w); err != nil {
		return nil, err
	}
	return w, nil
}

// refuseUncarried refuses the canonical fields SiliconFlow's wire has no place for.
func refuseUncarried(req *providers.Request) error {
	switch {
	case req.Mask != nil:
		return providers.UnsupportedParam("mask", "SiliconFlow models take no mask; send the image and describe the change in the prompt")
	case req.Quality != "" && req.Quality != "auto":
		return providers.UnsupportedParam("quality", "quality is not supported by SiliconFlow models")
	case req.Style != "" && req.Style != "auto":
		return providers.UnsupportedParam("style", "style is not supported by SiliconFlow models")
	case req.Strength != nil:
		return providers.UnsupportedParam("strength", "strength is not supported by SiliconFlow models")
	case req.Background != "" && req.Background != "auto":
		return providers.UnsupportedParam("background", "background is not supported by SiliconFlow models")
	case req.OutputFormat != "":
		return providers.UnsupportedParam("output_format", "output_format is not supported by SiliconFlow models (they answer PNG URLs)")
	case req.OutputCompression != nil:
		return providers.UnsupportedParam("output_compression", "output_compression is not supported by SiliconFlow models")
	case req.Moderation != "" && req.Moderation != "auto":
		return providers.UnsupportedParam("moderation", "moderation is not supported by SiliconFlow models")
	case req.User != "":
		return providers.UnsupportedParam("user", "user is not supported by SiliconFlow models")
	}
	return nil
}

func hasExtra(m *providers.Model, k string) bool {
	for _, e := range m.Extras {
		if e == k {
			return true
		}
	}
	return false
}

// takesNoSize reports whether a model's rule leaves no size to choose: the edit models whose
// output follows the input image (an empty rule) and fixed-output models such as Janus-Pro.
func takesNoSize(r providers.SizeRule) bool {
	return len(r.Sizes) == 0 && !r.FreeForm() && len(r.AspectRatios) == 0
}

// sizeToWire sets image_size. Every size billing prices is sent, so the upstream makes exactly
// what is charged (billing.Engine.Quote resolves the size the same way): the requested size, the
// model's fixed size (Janus-Pro, which takes the field and ignores its value), or, when the
// request gives none, the model's Size.Default. Edit models take no image_size (their output
// follows the input image) and get none; their prices are per image, so no size is billed. A
// model added by configuration (m nil) gets only what the request gives: its defaults live in
// the configuration, which the adapter does not see.
func sizeToWire(m *providers.Model, req *providers.Request, w *sfwire.Request) error {
	if req.Width == 0 && req.Height == 0 {
		if req.AspectRatio != "" {
			return providers.UnsupportedParam("aspect_ratio", "SiliconFlow models take a size (WIDTHxHEIGHT), not an aspect ratio")
		}
		if m == nil {
			return nil
		}
		switch r := m.Size; {
		case !r.Fixed.IsZero():
			w.ImageSize = r.Fixed.String()
		case !takesNoSize(r) && !r.Default.IsZero():
			w.ImageSize = r.Default.String()
		}
		return nil
	}
	if req.Width <= 0 || req.Height <= 0 {
		return providers.ParamError("size", "size must have a positive width and height")
	}
	if m != nil {
		r := m.Size
		switch {
		case !r.Fixed.IsZero():
			if r.Fixed.W != req.Width || r.Fixed.H != req.Height {
				return providers.UnsupportedParam("size", "this model always produces %s", r.Fixed)
			}
		case takesNoSize(r):
			return providers.UnsupportedParam("size", "this model's output follows the input image; size cannot be set")
		case !sfwire.SizeAllowed(r, req.Width, req.Height):
			return providers.ParamError("size", "size %s is not accepted by this model", sfwire.SizeString(req.Width, req.Height))
		}
	}
	w.ImageSize = sfwire.SizeString(req.Width, req.Height)
	return nil
}

// stepsToWire sets num_inference_steps on the models that take it: the request's steps, else the
// model's DefaultSteps, else its MaxSteps — the steps billing.Engine.Quote prices — so the
// upstream never falls back to a default of its own. Fixed-step models (FLUX.1-schnell,
// Pro/FLUX.1-schnell, SD 3.5 large turbo) always run their steps and the field is left out
// (PROVIDERS.md §1.5: it is absent from the FLUX.1-schnell schema); a request may only name
// those steps. A model added by configuration (m nil) gets the request's steps, if any.
func stepsToWire(m *providers.Model, req *providers.Request, w *sfwire.Request) error {
	switch {
	case req.Steps < 0:
		return providers.ParamError("steps", "steps must be positive")
	case m == nil:
		w.NumInferenceSteps = req.Steps
		return nil
	case m.FixedSteps > 0:
		if req.Steps != 0 && req.Steps != m.FixedSteps {
			return providers.UnsupportedParam("steps", "this model always runs %d steps", m.FixedSteps)
		}
		return nil
	case !m.Params.Has(providers.ParamSteps):
		if req.Steps != 0 {
			return providers.UnsupportedParam("steps", "steps is not supported by this model")
		}
		return nil
	case req.Steps != 0:
		if req.Steps < m.MinSteps || req.Steps > m.MaxSteps {
			return providers.ParamError("steps", "steps must be between %d and %d", m.MinSteps, m.MaxSteps)
		}
		w.NumInferenceSteps = req.Steps
	case m.DefaultSteps > 0:
		w.NumInferenceSteps = m.DefaultSteps
	default:
		w.NumInferenceSteps = m.MaxSteps
	}
	return nil
}

func imagesToWire(m *providers.Model, op providers.Operation, req *providers.Request, w *sfwire.Request) error {
	n := len(req.Images)
	if op == providers.OpEdit && n == 0 {
		return providers.ParamError("image", "an image to edit is required")
	}
	if n == 0 {
		return nil
	}
	limit := 3 // image, image2, image3
	if m != nil {
		if op == providers.OpGenerate && !m.Params.Has(providers.ParamReferenceImage) {
			return providers.UnsupportedParam("image", "this model takes no reference image")
		}
		limit = m.MaxInputImages
	}
	if n > limit {
		return providers.UnsupportedParam("image", "this model takes at most %d input image(s)", limit)
	}
	slots := []*string{&w.Image, &w.Image2, &w.Image3}
	for i, im := range req.Images {
		if len(im.Data) == 0 {
			return providers.ParamError("image", "input image %d is empty", i+1)
		}
		*slots[i] = im.DataURI()
	}
	return nil
}

// outputSize is the size of the images a request produces, when known: the requested size, the
// model's fixed size, or the upstream's default when none was sent. Edit models answer at the
// input image's size, which the upstream does not report, so it is left unknown.
func outputSize(m *providers.Model, req *providers.Request) (int, int) {
	if m != nil && !m.Size.Fixed.IsZero() {
		return m.Size.Fixed.W, m.Size.Fixed.H
	}
	if req.Width > 0 && req.Height > 0 {
		return req.Width, req.Height
	}
	if m != nil && !m.Size.Default.IsZero() {
		return m.Size.Default.W, m.Size.Default.H
	}
	return 0, 0
}

// fromWire turns a decoded answer into the canonical result. SiliconFlow sends no created time
// (Created stays zero: "now") and one seed for the whole call.
func fromWire(provider string, m *providers.Model, req *providers.Request, r *sfwire.Response, trace string, now time.Time) (*providers.Result, error) {
	w, h := outputSize(m, req)
	ttl := sfwire.URLTTL
	if m != nil && m.URLTTL > 0 {
		ttl = m.URLTTL
	}
	outs, err := r.Outputs(provider, now, ttl, w, h)
	if err != nil {
		return nil, err
	}
	return &providers.Result{Images: outs, UpstreamRequestID: trace}, nil
}

// encode marshals the wire body.
func encode(w *sfwire.Request) ([]byte, error) {
	b, err := sfwire.EncodeRequest(w)
	if err != nil {
		return nil, fmt.Errorf("siliconflow: %w", err)
	}
	return b, nil
}
