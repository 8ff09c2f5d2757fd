package arkwire

import (
	"slices"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// Preflight checks what every request needs, a model and a prompt, and returns the operation
// (OpGenerate when op is empty).
func Preflight(op providers.Operation, req *providers.Request) (providers.Operation, error) {
	if op == "" {
		op = providers.OpGenerate
	}
	if req.Model == "" {
		return op, providers.ParamError("model", "a model is required")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return op, providers.ParamError("prompt", "a prompt is required")
	}
	return op, nil
}

// CheckOperation refuses an operation the model does not serve.
func CheckOperation(m *providers.Model, op providers.Operation) error {
	if !m.Supports(op) {
		return providers.UnsupportedParam("model", "model %s does not support the %s operation", m.ID, op)
	}
	return nil
}

// CheckOptions refuses a mask (neither upstream has a mask input) and every optional parameter
// the model does not honour, naming it.
func CheckOptions(m *providers.Model, op providers.Operation, req *providers.Request) error {
	if req.Mask != nil {
		return providers.UnsupportedParam("mask", "model %s has no mask input: it edits the whole image following the prompt", m.ID)
	}
	set := []struct {
		p    providers.Param
		name string
		on   bool
	}{
		{providers.ParamNegativePrompt, "negative_prompt", req.NegativePrompt != ""},
		{providers.ParamSeed, "seed", req.Seed != nil},
		{providers.ParamSteps, "steps", req.Steps != 0},
		{providers.ParamGuidance, "guidance_scale", req.GuidanceScale != nil},
		{providers.ParamStrength, "strength", req.Strength != nil},
		{providers.ParamReferenceImage, "image", op == providers.OpGenerate && len(req.Images) > 0},
		{providers.ParamPromptEnhancement, "prompt_enhancement", req.PromptEnhancement != nil},
		{providers.ParamBackground, "background", req.Background != "" && req.Background != "auto"},
		{providers.ParamOutputFormat, "output_format", req.OutputFormat != ""},
		{providers.ParamOutputCompression, "output_compression", req.OutputCompression != nil},
		{providers.ParamModeration, "moderation", req.Moderation != "" && req.Moderation != "auto"},
		{providers.ParamUser, "user", req.User != ""},
	}
	for _, s := range set {
		if s.on && !m.Params.Has(s.p) {
			return providers.UnsupportedParam(s.name, "model %s does not support %s", m.ID, s.name)
		}
	}
	if req.Quality != "" && req.Quality != "auto" && !slices.Contains(m.Qualities, req.Quality) {
		return providers.UnsupportedParam("quality", "model %s does not support quality", m.ID)
	}
	if req.Style != "" && req.Style != "auto" && !slices.Contains(m.Styles, req.Style) {
		return providers.UnsupportedParam("style", "model %s does not support style", m.ID)
	}
	return nil
}

// CheckRanges checks seed and guidance_scale against the catalog's bounds.
func CheckRanges(m *providers.Model, req *providers.Request) error {
	if req.Seed != nil && (*req.Seed < m.SeedMin || *req.Seed > m.SeedMax) {
		return providers.ParamError("seed", "seed must be between %d and %d", m.SeedMin, m.SeedMax)
	}
	if g := req.GuidanceScale; g != nil && (*g < m.MinGuidance || *g > m.MaxGuidance) {
		return providers.ParamError("guidance_scale", "guidance_scale must be between %g and %g", m.MinGuidance, m.MaxGuidance)
	}
	return nil
}

// CheckImages checks the input images both upstreams take the same way: an edit needs one, the
// model caps their number, and none may be empty.
func CheckImages(m *providers.Model, op providers.Operation, ims []providers.Image) error {
	if op == providers.OpEdit && len(ims) == 0 {
		return providers.ParamError("image", "model %s edits an image: one is required", m.ID)
	}
	if len(ims) > m.MaxInputImages {
		return providers.ParamError("image", "model %s takes at most %d input images", m.ID, m.MaxInputImages)
	}
	for _, im := range ims {
		if len(im.Data) == 0 {
			return providers.ParamError("image", "an input image is empty")
		}
	}
	return nil
}
