package modelverse

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire"
)

// wireRequest is the JSON body of POST /v1/images/generations (seed 004; PROVIDERS.md §3.2).
type wireRequest struct {
	Model          string   `json:"model"`
	Prompt         string   `json:"prompt"`
	N              int      `json:"n,omitempty"`
	Image          string   `json:"image,omitempty"`
	Images         []string `json:"images,omitempty"`
	ResponseFormat string   `json:"response_format,omitempty"`
	Size           string   `json:"size,omitempty"`
	Strength       *float64 `json:"strength,omitempty"`
	AspectRatio    string   `json:"aspect_ratio,omitempty"`
	Steps          int      `json:"steps,omitempty"`
	Seed           *int64   `json:"seed,omitempty"`
	GuidanceScale  *float64 `json:"guidance_scale,omitempty"`
	NegativePrompt string   `json:"negative_prompt,omitempty"`
}

// wireParams are the optional parameters the wire format can carry at all; for a model outside
// the built-in catalog they pass through unchecked.
const wireParams = providers.ParamSeed | providers.ParamGuidance | providers.ParamSteps | providers.ParamStrength |
	providers.ParamNegativePrompt | providers.ParamReferenceImage

// unknownKind marks a model outside the built-in catalog.
const unknownKind kind = -1

// toWire checks req against the model (defense in depth: the front door has validated it against
// the catalog already) and translates it. m is nil for a model outside the built-in catalog, which
// is passed through with only the checks the wire format itself imposes.
func toWire(m *providers.Model, k kind, op providers.Operation, req *providers.Request) (*wireRequest, error) {
	op, err := arkwire.Preflight(op, req)
	if err != nil {
		return nil, err
	}
	if m == nil {
		k = unknownKind
		m = &providers.Model{ID: req.Model, Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
			MaxN: 4, Params: wireParams, MaxInputImages: 16}
	}
	if err := arkwire.CheckOperation(m, op); err != nil {
		return nil, err
	}
	if req.N > m.MaxN {
		if m.MaxN == 1 {
			return nil, providers.UnsupportedParam("n", "model %s returns one image per call; ask for n=1 (the gateway fans larger n out)", m.ID)
		}
		return nil, providers.ParamError("n", "model %s returns at most %d images per call", m.ID, m.MaxN)
	}
	if err := arkwire.CheckOptions(m, op, req); err != nil {
		return nil, err
	}
	if len(req.Extra) > 0 {
		keys := make([]string, 0, len(req.Extra))
		for key := range req.Extra {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		return nil, providers.UnsupportedParam(keys[0], "model %s does not take the extension field %s", m.ID, keys[0])
	}
	w := &wireRequest{Model: req.Model, Prompt: req.Prompt, Seed: req.Seed, GuidanceScale: req.GuidanceScale,
		Steps: req.Steps, Strength: req.Strength, NegativePrompt: req.NegativePrompt}
	if k != unknownKind {
		if err := checkRanges(m, req); err != nil {
			return nil, err
		}
	}
	setBilled(w, m, k, req)
	// response_format is documented for every model in the seed but only for FLUX.1-dev in the
	// later revision; it is sent where both agree, and elsewhere the URL default is used.
	if k == fluxDev && (req.ResponseFormat == "url" || req.ResponseFormat == "b64_json") {
		w.ResponseFormat = req.ResponseFormat
	}
	if err := setSize(w, m, k, req); err != nil {
		return nil, err
	}
	if err := setImages(w, m, k, op, req); err != nil {
		return nil, err
	}
	return w, nil
}

// setBilled writes out, for a catalog model, the parameters billing prices a request by even
// when the request leaves them to the upstream: the count on the models that take n (billing
// prices max(n, 1) images) and the steps on the models that take steps (billing prices the
// catalog's DefaultSteps, the seed's 28, where the per-model pages say 20). Size and aspect ratio
// are written by setSize. A model outside the catalog sends only what the request has.
func setBilled(w *wireRequest, m *providers.Model, k kind, req *providers.Request) {
	if k == unknownKind {
		if req.N > 1 {
			w.N = req.N
		}
		return
	}
	if m.MaxN > 1 {
		w.N = max(req.N, 1)
	}
	if m.Params.Has(providers.ParamSteps) && w.Steps == 0 {
		w.Steps = m.DefaultSteps
	}
}

// checkRanges checks numeric parameters against the catalog's bounds.
func checkRanges(m *providers.Model, req *providers.Request) error {
	if err := arkwire.CheckRanges(m, req); err != nil {
		return err
	}
	if req.Steps != 0 && (req.Steps < m.MinSteps || req.Steps > m.MaxSteps) {
		return providers.ParamError("steps", "steps must be between %d and %d", m.MinSteps, m.MaxSteps)
	}
	if s := req.Strength; s != nil {
		if *s < 0 || *s > 1 {
			return providers.ParamError("strength", "strength must be between 0 and 1")
		}
		if len(req.Images) == 0 {
			return providers.ParamError("strength", "strength applies only to image-to-image: give a reference image")
		}
	}
	return nil
}

// setSize maps the output size or aspect ratio.
func setSize(w *wireRequest, m *providers.Model, k kind, req *providers.Request) error {
	hasSize := req.Width != 0 || req.Height != 0
	if req.AspectRatio != "" {
		switch {
		case k == unknownKind:
		case len(m.Size.AspectRatios) == 0:
			return providers.UnsupportedParam("aspect_ratio", "model %s does not take an aspect ratio", m.ID)
		case !slices.Contains(m.Size.AspectRatios, req.AspectRatio):
			return providers.ParamError("aspect_ratio", "model %s takes the aspect ratios %s", m.ID, strings.Join(m.Size.AspectRatios, ", "))
		}
		if hasSize {
			return providers.ParamError("size", "give a size or an aspect ratio, not both")
		}
		w.AspectRatio = req.AspectRatio
		return nil
	}
	if !hasSize {
		// The upstream's defaults, written out (seed 004: size 默认值 1024x1024 on FLUX.1-dev,
		// aspect_ratio 默认值 1:1 on the text2image models): the size billing resolves for
		// FLUX.1-dev (Size.Default) is then the size sent. The Kontext and Step1X edits take
		// no size (the output follows the input) and the multi models document no default
		// ratio: billing prices those at an estimated size (Quote.SizeEstimated).
		switch k {
		case fluxDev:
			w.Size = m.Size.Default.String()
		case kontextText2Im:
			w.AspectRatio = defaultAspectRatio
		}
		return nil
	}
	if req.Width <= 0 || req.Height <= 0 {
		return providers.ParamError("size", "size needs a positive width and height")
	}
	s := providers.Size{W: req.Width, H: req.Height}
	switch k {
	case unknownKind:
	case fluxDev:
		r := m.Size
		if s.W < r.MinSide || s.H < r.MinSide || s.W > r.MaxSide || s.H > r.MaxSide {
			return providers.ParamError("size", "model %s takes sizes between %dx%d and %dx%d", m.ID, r.MinSide, r.MinSide, r.MaxSide, r.MaxSide)
		}
	case kontextMulti, kontextText2Im:
		return providers.UnsupportedParam("size", "model %s takes an aspect ratio (%s), not a size", m.ID, strings.Join(m.Size.AspectRatios, ", "))
	default:
		return providers.UnsupportedParam("size", "model %s takes no size: the output follows the input image", m.ID)
	}
	w.Size = s.String()
	return nil
}

// setImages puts the input images inline as data URIs: "image" for the single-image models,
// "images" for the multi models.
func setImages(w *wireRequest, m *providers.Model, k kind, op providers.Operation, req *providers.Request) error {
	ims := req.Images
	if err := arkwire.CheckImages(m, op, ims); err != nil {
		return err
	}
	switch {
	case len(ims) == 0:
	case k == kontextMulti || (k == unknownKind && len(ims) > 1):
		for _, im := range ims {
			w.Images = append(w.Images, im.DataURI())
		}
	default:
		w.Image = ims[0].DataURI()
	}
	return nil
}

// encodeRequest marshals w without HTML escaping.
func encodeRequest(w *wireRequest) ([]byte, error) { return arkwire.Encode(Name, w) }

// hints is what the request tells the answer's translation.
type hints struct {
	// want is the client's response_format.
	want string
	// seed is the request's seed, echoed on each image when it is fixed and one image was asked for.
	seed *int64
	// size is the output size when the request fixes it (FLUX.1-dev).
	size providers.Size
	// ttl is the URL lifetime; zero means unknownURLTTL.
	ttl time.Duration
}

// unknownURLTTL is the lifetime assumed for URLs of models outside the catalog: Modelverse's
// shortest documented one (Seedream's 24 hours), so a URL is never used after it expired.
const unknownURLTTL = 24 * time.Hour

// translate decodes a success body, {"created","data":[{"url"|"b64_json"}],"usage"} (Seedream
// answers relayed by Modelverse add data[].size and data[].error like Ark's), and converts it;
// now counts URL lifetimes when created is absent. The seed is echoed only on a single image.
// When every image failed the call fails as the provider failing, unless the content filter
// withheld the first one.
func translate(provider string, body []byte, h hints, now time.Time) (*providers.Result, error) {
	var r arkwire.Response
	texts, err := arkwire.Decode(Name, provider, body, &r)
	if err != nil {
		return nil, err
	}
	r.Texts = texts
	ah := arkwire.Hints{Want: h.want, Seed: h.seed, Size: h.size, TTL: h.ttl}
	if len(r.Data) != 1 {
		ah.Seed = nil
	}
	if ah.TTL <= 0 {
		ah.TTL = unknownURLTTL
	}
	return arkwire.ToResult(Name, provider, &r, ah, now, arkwire.Failures{
		Item: func(code string) *providers.Error {
			e := codeError(provider, 0, code)
			if e.Kind != providers.KindContentPolicy {
				e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider failed to generate the image"
			}
			return e
		},
		Body: func(eb arkwire.ErrorBody) (*providers.Error, string) {
			return codeError(provider, 0, eb.Code), fmt.Sprintf(" (request id %q)", requestID(eb.Param, nil))
		},
	})
}
