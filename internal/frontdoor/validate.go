package frontdoor

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/providers"
)

// maxPromptChars bounds a prompt whatever the model (OpenAI's largest limit).
const maxPromptChars = 32000

// Adjustment records a value the gateway changed: to the nearest one the model takes, or dropped
// because the model has no such knob (on the client's opt-in, map_nearest), or a `user` the
// provider does not take. It is reported in the X-Imagegw-Adjusted header.
type Adjustment struct {
	Param    string
	From, To string
}

func (a Adjustment) String() string { return a.Param + "=" + a.From + "->" + a.To }

// promptRequired lists operations that need a prompt.
var promptRequired = map[providers.Operation]bool{
	providers.OpGenerate: true, providers.OpEdit: true, providers.OpRemix: true, providers.OpReplaceBackground: true,
}

// The values background, output_format and moderation take.
var (
	backgroundValues   = []string{"transparent", "opaque", "auto"}
	outputFormatValues = []string{"png", "jpeg", "webp"}
	moderationValues   = []string{"low", "auto"}
)

// validate checks the request against the model and builds the canonical request (without
// input images, which the caller resolves). n is the total number of images asked for.
//
// src is the size of the first uploaded source image (zero when none): for operations on an
// image, asking for the source's own size is always accepted (the output keeps it), whatever the
// model's list of generation sizes says.
func validate(ar *apiRequest, e *catalog.Entry, maxN int, nearest bool, src providers.Size) (*providers.Request, []Adjustment, error) {
	m := &e.Model
	req := &providers.Request{Operation: ar.Op, Model: m.ID}
	var adj []Adjustment

	if !e.Supports(ar.Op) {
		var ops []string
		for _, op := range e.Operations {
			ops = append(ops, string(op))
		}
		return nil, nil, unsupported("model", "The model '%s' does not support the %s operation (it supports: %s).", e.Name, ar.Op, strings.Join(ops, ", "))
	}
	// Prompt.
	if ar.Prompt != nil {
		req.Prompt = *ar.Prompt
	}
	if promptRequired[ar.Op] && strings.TrimSpace(req.Prompt) == "" {
		if ar.Prompt == nil {
			return nil, nil, badParam("prompt", "Missing required parameter: 'prompt'.")
		}
		return nil, nil, badParam("prompt", "The prompt must not be empty.")
	}
	if n := utf8.RuneCountInString(req.Prompt); n > maxPromptChars {
		return nil, nil, badParam("prompt", "The prompt is %d characters long; the maximum is %d.", n, maxPromptChars)
	}

	// Count.
	req.N = 1
	if ar.N != nil {
		req.N = *ar.N
		if req.N < 1 || req.N > maxN {
			return nil, nil, badParam("n", "Invalid value for 'n': %d. It must be between 1 and %d.", req.N, maxN)
		}
	}
	if ar.Op == providers.OpDescribe {
		req.N = 1
	}

	// Response format.
	switch ar.ResponseFormat {
	case "", "url", "b64_json":
		req.ResponseFormat = ar.ResponseFormat
		if req.ResponseFormat == "" {
			req.ResponseFormat = cmp.Or(m.DefaultResponseFormat, "url")
		}
	default:
		return nil, nil, badParam("response_format", "Invalid value for 'response_format': '%s'. Supported values are: 'url' and 'b64_json'.", ar.ResponseFormat)
	}

	// Size: size, or width+height, or aspect_ratio.
	var a []Adjustment
	var err error
	if req.Width, req.Height, req.AspectRatio, a, err = resolveSize(ar, e, nearest, src); err != nil {
		return nil, nil, err
	}
	adj = append(adj, a...)
	if adj, err = validateOptions(ar, e, nearest, req, adj); err != nil {
		return nil, nil, err
	}
	return req, adj, nil
}

// validateOptions is validate's second half: the optional parameters. It is out of line, as
// resolveSize is, so that the frames on a request's stack stay small (see Handler.images).
//
//go:noinline
func validateOptions(ar *apiRequest, e *catalog.Entry, nearest bool, req *providers.Request, adj []Adjustment) ([]Adjustment, error) {
	m := &e.Model
	// Quality and style.
	if q := ar.Quality; q != "" && q != "auto" {
		if !slices.Contains(m.Qualities, q) {
			return nil, unsupportedValue("quality", q, e.Name, m.Qualities)
		}
		req.Quality = q
	}
	if s := ar.Style; s != "" {
		if !slices.Contains(m.Styles, s) {
			return nil, unsupportedValue("style", s, e.Name, m.Styles)
		}
		req.Style = s
	}

	// Optional parameters the model must honour.
	need := func(p providers.Param, name string) error {
		if !m.Params.Has(p) {
			return unsupported(name, "The model '%s' does not take '%s'%s.", e.Name, name, honoured(m))
		}
		return nil
	}
	if ar.NegativePrompt != "" {
		if err := need(providers.ParamNegativePrompt, "negative_prompt"); err != nil {
			return nil, err
		}
		req.NegativePrompt = ar.NegativePrompt
	}
	if ar.Seed != nil {
		if err := need(providers.ParamSeed, "seed"); err != nil {
			return nil, err
		}
		if s := *ar.Seed; (m.SeedMin != 0 || m.SeedMax != 0) && (s < m.SeedMin || s > m.SeedMax) {
			return nil, badParam("seed", "Invalid value for 'seed': %d. The model '%s' takes %d to %d.", s, e.Name, m.SeedMin, m.SeedMax)
		}
		req.Seed = ar.Seed
	}
	if ar.Steps != nil {
		s := *ar.Steps
		switch {
		case m.FixedSteps > 0 && s != m.FixedSteps:
			if !nearest {
				return nil, unsupported("steps", "The model '%s' always runs %d steps; omit 'steps' or send %d (or opt in to map_nearest).", e.Name, m.FixedSteps, m.FixedSteps)
			}
			adj = append(adj, Adjustment{"steps", strconv.Itoa(s), strconv.Itoa(m.FixedSteps)})
		case m.FixedSteps > 0:
		default:
			if err := need(providers.ParamSteps, "steps"); err != nil {
				return nil, err
			}
			if (m.MinSteps > 0 && s < m.MinSteps) || (m.MaxSteps > 0 && s > m.MaxSteps) || s < 1 {
				lo, hi := max(m.MinSteps, 1), m.MaxSteps
				if !nearest || hi == 0 {
					return nil, badParam("steps", "Invalid value for 'steps': %d. The model '%s' takes %d to %d.", s, e.Name, lo, hi)
				}
				c := min(max(s, lo), hi)
				adj = append(adj, Adjustment{"steps", strconv.Itoa(s), strconv.Itoa(c)})
				s = c
			}
			req.Steps = s
		}
	}
	if ar.GuidanceScale != nil {
		if err := need(providers.ParamGuidance, "guidance_scale"); err != nil {
			return nil, err
		}
		g := *ar.GuidanceScale
		if math.IsNaN(g) || (m.MaxGuidance > 0 && (g < m.MinGuidance || g > m.MaxGuidance)) {
			return nil, badParam("guidance_scale", "Invalid value for 'guidance_scale': %g. The model '%s' takes %g to %g.", g, e.Name, m.MinGuidance, m.MaxGuidance)
		}
		req.GuidanceScale = ar.GuidanceScale
	}
	if ar.Strength != nil {
		if err := need(providers.ParamStrength, "strength"); err != nil {
			return nil, err
		}
		if s := *ar.Strength; math.IsNaN(s) || s < 0 || s > 1 {
			return nil, badParam("strength", "Invalid value for 'strength': %g. It must be between 0 and 1.", s)
		}
		req.Strength = ar.Strength
	}
	if ar.PromptEnhancement != nil {
		if err := need(providers.ParamPromptEnhancement, "prompt_enhancement"); err != nil {
			return nil, err
		}
		req.PromptEnhancement = ar.PromptEnhancement
	}
	for _, f := range []struct {
		v    string
		p    providers.Param
		name string
		ok   []string
		dst  *string
	}{
		{ar.Background, providers.ParamBackground, "background", backgroundValues, &req.Background},
		{ar.OutputFormat, providers.ParamOutputFormat, "output_format", outputFormatValues, &req.OutputFormat},
		{ar.Moderation, providers.ParamModeration, "moderation", moderationValues, &req.Moderation},
	} {
		if f.v == "" {
			continue
		}
		if !slices.Contains(f.ok, f.v) {
			return nil, badParam(f.name, "Invalid value for '%s': '%s'. Supported values are: %s.", f.name, f.v, quoteList(f.ok))
		}
		if !m.Params.Has(f.p) {
			switch {
			case f.v == "auto":
				// "auto" (an SDK default) asks for nothing: a model without the knob does it.
				continue
			case nearest:
				adj = append(adj, Adjustment{f.name, f.v, "model default"})
				continue
			}
			return nil, unsupported(f.name, "The model '%s' does not take '%s'%s; omit it, send \"auto\" where allowed, or opt in to map_nearest to have it dropped.", e.Name, f.name, honoured(m))
		}
		*f.dst = f.v
	}
	if ar.OutputCompression != nil {
		if c := *ar.OutputCompression; c < 0 || c > 100 {
			return nil, badParam("output_compression", "Invalid value for 'output_compression': %d. It must be between 0 and 100.", c)
		}
		if err := need(providers.ParamOutputCompression, "output_compression"); err != nil {
			return nil, err
		}
		req.OutputCompression = ar.OutputCompression
	}
	// user is an end-user id for the provider's abuse monitoring, not a generation parameter: it
	// is forwarded to the providers that take it and dropped for the others.
	switch {
	case m.Params.Has(providers.ParamUser):
		req.User = ar.User
	case ar.User != "":
		adj = append(adj, Adjustment{"user", "set", "not forwarded"})
	}

	// Extension fields.
	if len(ar.Extra) > 0 {
		keys := make([]string, 0, len(ar.Extra))
		for k := range ar.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !slices.Contains(m.Extras, k) {
				extra := "it takes none"
				if len(m.Extras) > 0 {
					extra = "it takes: " + strings.Join(m.Extras, ", ")
				}
				return nil, unsupported(k, "The model '%s' does not take the extension field '%s' (%s).", e.Name, k, extra)
			}
		}
		req.Extra = ar.Extra
	}

	// Reference images on generate.
	if ar.Op == providers.OpGenerate && len(ar.ImageRefs)+len(ar.Files) > 0 {
		if err := need(providers.ParamReferenceImage, "image"); err != nil {
			return nil, err
		}
	}
	if n := len(ar.ImageRefs) + len(ar.Files); m.MaxInputImages > 0 && n > m.MaxInputImages {
		return nil, badParam("image", "The model '%s' takes at most %d input images; got %d.", e.Name, m.MaxInputImages, n)
	}
	if err := checkStream(ar, req); err != nil { // stream.go
		return nil, err
	}
	if m.Defined {
		// A model defined in config: its adapter does not know its defaults, so what billing
		// prices (internal/billing: the default size, the default or else the most steps) is sent.
		if req.Width == 0 && req.AspectRatio == "" && !m.Size.Default.IsZero() {
			req.Width, req.Height = m.Size.Default.W, m.Size.Default.H
		}
		if req.Steps == 0 && m.FixedSteps == 0 && m.Params.Has(providers.ParamSteps) {
			req.Steps = cmp.Or(m.DefaultSteps, m.MaxSteps)
		}
	}
	return adj, nil
}

func honoured(m *providers.Model) string {
	names := m.Params.Names()
	if len(names) == 0 {
		return "; it takes none of the optional parameters"
	}
	return "; it takes: " + strings.Join(names, ", ")
}

func unsupportedValue(param, v, model string, ok []string) error {
	if len(ok) == 0 {
		return unsupported(param, "The model '%s' does not take '%s'.", model, param)
	}
	return unsupported(param, "Invalid value for '%s': '%s'. The model '%s' takes: %s.", param, v, model, quoteList(ok))
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = "'" + v + "'"
	}
	return strings.Join(q, ", ")
}

// resolveSize turns size / width+height / aspect_ratio into what the model takes.
func resolveSize(ar *apiRequest, e *catalog.Entry, nearest bool, src providers.Size) (w, h int, ratio string, adj []Adjustment, err error) {
	rule := e.Model.Size
	var want providers.Size
	param := "size"
	switch {
	case ar.Width != nil || ar.Height != nil:
		if ar.Size != "" && ar.Size != "auto" {
			return 0, 0, "", nil, badParam("size", "Send either 'size' or 'width' and 'height', not both.")
		}
		if ar.Width == nil || ar.Height == nil {
			missing := "height"
			if ar.Width == nil {
				missing = "width"
			}
			return 0, 0, "", nil, badParam(missing, "'width' and 'height' go together; '%s' is missing.", missing)
		}
		want, param = providers.Size{W: *ar.Width, H: *ar.Height}, "width"
		if want.W <= 0 || want.H <= 0 {
			return 0, 0, "", nil, badParam("width", "'width' and 'height' must be positive; got %dx%d.", want.W, want.H)
		}
	case ar.Size != "" && ar.Size != "auto":
		s, perr := providers.ParseSize(ar.Size)
		if perr != nil {
			return 0, 0, "", nil, badParam("size", "Invalid value for 'size': '%s'. Use WIDTHxHEIGHT, for example '1024x1024'.", ar.Size)
		}
		want = s
	}
	if ar.AspectRatio != "" {
		if !want.IsZero() {
			return 0, 0, "", nil, badParam("aspect_ratio", "Send either 'aspect_ratio' or a size, not both.")
		}
		r := strings.ReplaceAll(ar.AspectRatio, "x", ":")
		if ar.Op == providers.OpReframe && len(rule.Sizes) > 0 {
			// Reframing needs a target resolution: the model's resolution of that aspect ratio
			// (or the nearest ratio) closest in area to the source image.
			got, ok := sizeForRatio(rule.Sizes, r, src)
			if !ok {
				return 0, 0, "", nil, badParam("aspect_ratio", "Invalid value for 'aspect_ratio': '%s'. Use W:H, for example '16:9'.", ar.AspectRatio)
			}
			return got.W, got.H, "", []Adjustment{{"aspect_ratio", r, got.String()}}, nil
		}
		if !slices.Contains(rule.AspectRatios, r) {
			if len(rule.AspectRatios) == 0 {
				return 0, 0, "", nil, unsupported("aspect_ratio", "The model '%s' takes a size, not an aspect ratio%s.", e.Name, sizesHint(rule))
			}
			return 0, 0, "", nil, unsupported("aspect_ratio", "Invalid value for 'aspect_ratio': '%s'. The model '%s' takes: %s.", ar.AspectRatio, e.Name, quoteList(rule.AspectRatios))
		}
		return 0, 0, r, nil, nil
	}
	if want.IsZero() {
		return 0, 0, "", nil, nil
	}
	if ar.Op != providers.OpGenerate && !src.IsZero() && want == src {
		return want.W, want.H, "", nil, nil
	}
	got, ok, why := checkSize(rule, want)
	if ok {
		return want.W, want.H, "", nil, nil
	}
	if got.IsZero() && len(rule.AspectRatios) == 0 {
		return 0, 0, "", nil, unsupported(param, "The model '%s' %s; omit the size.", e.Name, why)
	}
	if !nearest {
		return 0, 0, "", nil, unsupported(param, "The size %s is not supported by the model '%s': %s. Set map_nearest to use the nearest supported size.", want, e.Name, why)
	}
	if got.IsZero() {
		// Only aspect ratios: map the size to the nearest ratio.
		r := nearestRatio(rule.AspectRatios, want)
		return 0, 0, r, []Adjustment{{"size", want.String(), r}}, nil
	}
	return got.W, got.H, "", []Adjustment{{"size", want.String(), got.String()}}, nil
}

func sizesHint(rule providers.SizeRule) string {
	if len(rule.Sizes) > 0 {
		return " (" + sizeList(rule.Sizes) + ")"
	}
	return ""
}

func sizeList(ss []providers.Size) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = s.String()
	}
	return strings.Join(q, ", ")
}

// checkSize reports whether s fits the rule; if not, the nearest size that does (zero when the
// model takes only aspect ratios) and why s does not.
func checkSize(rule providers.SizeRule, s providers.Size) (providers.Size, bool, string) {
	if !rule.Fixed.IsZero() {
		return rule.Fixed, s == rule.Fixed, "it always produces " + rule.Fixed.String()
	}
	if len(rule.Sizes) > 0 {
		if slices.Contains(rule.Sizes, s) {
			return s, true, ""
		}
		return nearestSize(rule.Sizes, s), false, "supported sizes are " + sizeList(rule.Sizes)
	}
	if !rule.FreeForm() {
		if len(rule.AspectRatios) > 0 {
			return providers.Size{}, false, "it takes only an aspect ratio, one of " + strings.Join(rule.AspectRatios, ", ")
		}
		return providers.Size{}, false, "it takes no size (the output follows the input image)"
	}
	var why []string
	m := max(rule.Multiple, 1)
	if s.W%m != 0 || s.H%m != 0 {
		why = append(why, fmt.Sprintf("width and height must be multiples of %d", m))
	}
	if rule.MinSide > 0 && (s.W < rule.MinSide || s.H < rule.MinSide) {
		why = append(why, fmt.Sprintf("each side must be at least %d", rule.MinSide))
	}
	if rule.MaxSide > 0 && (s.W > rule.MaxSide || s.H > rule.MaxSide) {
		why = append(why, fmt.Sprintf("each side must be at most %d", rule.MaxSide))
	}
	if rule.MinPixels > 0 && s.Pixels() < rule.MinPixels {
		why = append(why, fmt.Sprintf("width×height must be at least %d pixels", rule.MinPixels))
	}
	if rule.MaxPixels > 0 && s.Pixels() > rule.MaxPixels {
		why = append(why, fmt.Sprintf("width×height must be at most %d pixels", rule.MaxPixels))
	}
	if len(why) == 0 {
		return s, true, ""
	}
	return snapFree(rule, s), false, strings.Join(why, "; ")
}

// snapFree scales s into the rule's bounds keeping its aspect ratio, then rounds to the multiple.
func snapFree(rule providers.SizeRule, s providers.Size) providers.Size {
	w, h := float64(s.W), float64(s.H)
	scale := 1.0
	if rule.MaxSide > 0 {
		scale = math.Min(scale, float64(rule.MaxSide)/math.Max(w, h))
	}
	if rule.MaxPixels > 0 && w*h*scale*scale > float64(rule.MaxPixels) {
		scale = math.Sqrt(float64(rule.MaxPixels) / (w * h))
	}
	if rule.MinSide > 0 && math.Min(w, h)*scale < float64(rule.MinSide) {
		scale = float64(rule.MinSide) / math.Min(w, h)
	}
	if rule.MinPixels > 0 && w*h*scale*scale < float64(rule.MinPixels) {
		scale = math.Sqrt(float64(rule.MinPixels) / (w * h))
	}
	m := max(rule.Multiple, 1)
	round := func(v float64, up bool) int {
		n := int(v) / m * m
		if up && n < int(math.Ceil(v)) {
			n += m
		}
		return max(n, m)
	}
	grow := rule.MinSide > 0 && math.Min(w, h)*scale <= float64(rule.MinSide) || rule.MinPixels > 0 && w*h*scale*scale <= float64(rule.MinPixels)
	out := providers.Size{W: round(w*scale, grow), H: round(h*scale, grow)}
	if rule.MaxSide > 0 {
		out.W, out.H = min(out.W, rule.MaxSide/m*m), min(out.H, rule.MaxSide/m*m)
	}
	return out
}

// nearestSize picks the listed size closest in aspect ratio, then in area.
func nearestSize(list []providers.Size, s providers.Size) providers.Size {
	best, bestScore := list[0], math.Inf(1)
	for _, c := range list {
		ra := math.Abs(math.Log(float64(c.W)/float64(c.H)) - math.Log(float64(s.W)/float64(s.H)))
		ar := math.Abs(math.Log(float64(c.Pixels()) / float64(s.Pixels())))
		if score := ra*10 + ar; score < bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// sizeForRatio picks among sizes the one whose aspect ratio is nearest ratio ("W:H"), and among
// those the one closest in area to src (to a megapixel without a source). ok is false for a
// malformed ratio.
func sizeForRatio(sizes []providers.Size, ratio string, src providers.Size) (providers.Size, bool) {
	a, b, _ := strings.Cut(ratio, ":")
	x, errX := strconv.ParseFloat(a, 64)
	y, errY := strconv.ParseFloat(b, 64)
	if errX != nil || errY != nil || x <= 0 || y <= 0 || math.IsInf(x/y, 0) {
		return providers.Size{}, false
	}
	area := float64(1 << 20)
	if !src.IsZero() {
		area = float64(src.W) * float64(src.H)
	}
	var best providers.Size
	bestRatio, bestArea := math.Inf(1), math.Inf(1)
	for _, s := range sizes {
		dr := math.Abs(math.Log(x/y) - math.Log(float64(s.W)/float64(s.H)))
		da := math.Abs(math.Log(float64(s.W) * float64(s.H) / area))
		if dr < bestRatio-1e-9 || math.Abs(dr-bestRatio) <= 1e-9 && da < bestArea {
			best, bestRatio, bestArea = s, dr, da
		}
	}
	return best, true
}

func nearestRatio(ratios []string, s providers.Size) string {
	best, bestD := ratios[0], math.Inf(1)
	for _, r := range ratios {
		a, b, _ := strings.Cut(r, ":")
		x, _ := strconv.ParseFloat(a, 64)
		y, _ := strconv.ParseFloat(b, 64)
		if x <= 0 || y <= 0 {
			continue
		}
		if d := math.Abs(math.Log(x/y) - math.Log(float64(s.W)/float64(s.H))); d < bestD {
			best, bestD = r, d
		}
	}
	return best
}
