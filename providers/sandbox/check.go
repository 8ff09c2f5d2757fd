package sandbox

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// check refuses what model m cannot do with req for operation op. The front door validates
// against the same catalog first; this is defence in depth, so that a caller that skips the front
// door (a test, a future code path) still gets the error the front door would give.
func check(m *providers.Model, op providers.Operation, req *providers.Request) error {
	if !m.Supports(op) {
		return &providers.Error{Kind: providers.KindUnsupported, Param: "model",
			Message: "model " + strconv.Quote(m.ID) + " does not support the " + string(op) + " operation"}
	}
	if op != providers.OpVariation && strings.TrimSpace(req.Prompt) == "" {
		return providers.ParamError("prompt", "a prompt is required")
	}
	if req.N < 0 || req.N > m.MaxN {
		return providers.ParamError("n", "n must be between 1 and %d for model %q", m.MaxN, m.ID)
	}
	if err := checkSize(m, req); err != nil {
		return err
	}
	if err := checkParams(m, req); err != nil {
		return err
	}
	if err := checkImages(m, op, req); err != nil {
		return err
	}
	if len(req.Extra) > 0 {
		keys := make([]string, 0, len(req.Extra))
		for k := range req.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return providers.UnsupportedParam(keys[0], "the sandbox takes no extension field %q", keys[0])
	}
	return nil
}

// checkSize checks the requested size or aspect ratio against the model's size rule.
func checkSize(m *providers.Model, req *providers.Request) error {
	r := m.Size
	if req.AspectRatio != "" {
		if req.Width != 0 || req.Height != 0 {
			return providers.ParamError("aspect_ratio", "give either a size or an aspect ratio, not both")
		}
		if len(r.AspectRatios) == 0 {
			return providers.UnsupportedParam("aspect_ratio", "model %q takes a size, not an aspect ratio", m.ID)
		}
		if !slices.Contains(r.AspectRatios, req.AspectRatio) {
			return providers.ParamError("aspect_ratio", "aspect ratio %q is not supported by model %q (supported: %s)",
				req.AspectRatio, m.ID, strings.Join(r.AspectRatios, ", "))
		}
		return nil
	}
	if req.Width == 0 && req.Height == 0 {
		return nil
	}
	s := providers.Size{W: req.Width, H: req.Height}
	if s.W <= 0 || s.H <= 0 || s.W < r.MinSide || s.H < r.MinSide || (r.MaxSide > 0 && (s.W > r.MaxSide || s.H > r.MaxSide)) {
		return providers.ParamError("size", "size %s is out of range: width and height must be between %d and %d", s, r.MinSide, r.MaxSide)
	}
	if r.Multiple > 0 && (s.W%r.Multiple != 0 || s.H%r.Multiple != 0) {
		return providers.ParamError("size", "size %s is not supported: width and height must be multiples of %d", s, r.Multiple)
	}
	return nil
}

// checkParams checks the optional parameters against what the model honours and their ranges.
func checkParams(m *providers.Model, req *providers.Request) error {
	unsupported := func(p providers.Param, set bool) error {
		if set && !m.Params.Has(p) {
			name := p.Names()[0]
			return providers.UnsupportedParam(name, "model %q does not take %s", m.ID, name)
		}
		return nil
	}
	for _, c := range []struct {
		p   providers.Param
		set bool
	}{
		{providers.ParamNegativePrompt, req.NegativePrompt != ""},
		{providers.ParamSeed, req.Seed != nil},
		{providers.ParamGuidance, req.GuidanceScale != nil},
		{providers.ParamStrength, req.Strength != nil},
		{providers.ParamPromptEnhancement, req.PromptEnhancement != nil},
		{providers.ParamBackground, req.Background != ""},
		{providers.ParamOutputFormat, req.OutputFormat != ""},
		{providers.ParamOutputCompression, req.OutputCompression != nil},
		{providers.ParamModeration, req.Moderation != ""},
		{providers.ParamUser, req.User != ""},
	} {
		if err := unsupported(c.p, c.set); err != nil {
			return err
		}
	}
	if req.Seed != nil && (*req.Seed < m.SeedMin || *req.Seed > m.SeedMax) {
		return providers.ParamError("seed", "seed must be between %d and %d", m.SeedMin, m.SeedMax)
	}
	if req.Steps != 0 {
		switch {
		case m.FixedSteps > 0:
			if req.Steps != m.FixedSteps {
				return providers.UnsupportedParam("steps", "model %q always runs %d steps; steps cannot be set", m.ID, m.FixedSteps)
			}
		case !m.Params.Has(providers.ParamSteps):
			return providers.UnsupportedParam("steps", "model %q does not take steps", m.ID)
		case req.Steps < m.MinSteps || req.Steps > m.MaxSteps:
			return providers.ParamError("steps", "steps must be between %d and %d", m.MinSteps, m.MaxSteps)
		}
	}
	if g := req.GuidanceScale; g != nil && !(*g >= m.MinGuidance && *g <= m.MaxGuidance) {
		return providers.ParamError("guidance_scale", "guidance_scale must be between %g and %g", m.MinGuidance, m.MaxGuidance)
	}
	if s := req.Strength; s != nil && !(*s >= 0 && *s <= 1) {
		return providers.ParamError("strength", "strength must be between 0 and 1")
	}
	if err := checkEnum("quality", req.Quality, m.Qualities, m.ID); err != nil {
		return err
	}
	return checkEnum("style", req.Style, m.Styles, m.ID)
}

// checkEnum accepts "", "auto" and the listed values of a field.
func checkEnum(field, v string, allowed []string, model string) error {
	if v == "" || v == "auto" || slices.Contains(allowed, v) {
		return nil
	}
	if len(allowed) == 0 {
		return providers.UnsupportedParam(field, "model %q does not take %s", model, field)
	}
	return providers.ParamError(field, "%s %q is not supported by model %q (supported: auto, %s)", field, v, model, strings.Join(allowed, ", "))
}

// checkImages checks the input images and mask for the operation.
func checkImages(m *providers.Model, op providers.Operation, req *providers.Request) error {
	if req.Mask != nil && op != providers.OpEdit {
		return providers.UnsupportedParam("mask", "a mask is only taken by the edit operation")
	}
	switch op {
	case providers.OpGenerate:
		if len(req.Images) > 0 && !m.Params.Has(providers.ParamReferenceImage) {
			return providers.UnsupportedParam("image", "model %q does not take reference images", m.ID)
		}
	case providers.OpEdit:
		if len(req.Images) == 0 {
			return providers.ParamError("image", "an image to edit is required")
		}
	case providers.OpVariation:
		if len(req.Images) != 1 {
			return providers.ParamError("image", "a variation takes exactly one image")
		}
	}
	if len(req.Images) > m.MaxInputImages {
		return providers.ParamError("image", "model %q takes at most %d images", m.ID, m.MaxInputImages)
	}
	return nil
}
