package modelverse

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
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
	if op == "" {
		op = providers.OpGenerate
	}
	if req.Model == "" {
		return nil, providers.ParamError("model", "a model is required")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, providers.ParamError("prompt", "a prompt is required")
	}
	if m == nil {
		k = unknownKind
		m = &providers.Model{ID: req.Model, Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
			MaxN: 4, Params: wireParams, MaxInputImages: 16}
	}
	if !m.Supports(op) {
		return nil, providers.UnsupportedParam("model", "model %s does not support the %s operation", m.ID, op)
	}
	if req.N > m.MaxN {
		if m.MaxN == 1 {
			return nil, providers.UnsupportedParam("n", "model %s returns one image per call; ask for n=1 (the gateway fans larger n out)", m.ID)
		}
		return nil, providers.ParamError("n", "model %s returns at most %d images per call", m.ID, m.MaxN)
	}
	if req.Mask != nil {
		return nil, providers.UnsupportedParam("mask", "model %s has no mask input: it edits the whole image following the prompt", m.ID)
	}
	if err := checkParams(m, op, req); err != nil {
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
	if req.N > 1 {
		w.N = req.N
	}
	if k != unknownKind {
		if err := checkRanges(m, req); err != nil {
			return nil, err
		}
	}
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

// checkParams refuses optional parameters the model does not honour, naming them.
func checkParams(m *providers.Model, op providers.Operation, req *providers.Request) error {
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

// checkRanges checks numeric parameters against the catalog's bounds.
func checkRanges(m *providers.Model, req *providers.Request) error {
	if req.Seed != nil && (*req.Seed < m.SeedMin || *req.Seed > m.SeedMax) {
		return providers.ParamError("seed", "seed must be between %d and %d", m.SeedMin, m.SeedMax)
	}
	if g := req.GuidanceScale; g != nil && (*g < m.MinGuidance || *g > m.MaxGuidance) {
		return providers.ParamError("guidance_scale", "guidance_scale must be between %g and %g", m.MinGuidance, m.MaxGuidance)
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
func encodeRequest(w *wireRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("modelverse: encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wireResponse is the success body: {"created","data":[{"url"|"b64_json"}],"usage"}. Seedream
// answers relayed by Modelverse add data[].size and data[].error like Ark's.
type wireResponse struct {
	Created int64           `json:"created"`
	Data    []wireImage     `json:"data"`
	Usage   json.RawMessage `json:"usage"`
	Error   *wireErrorBody  `json:"error"`
}

// wireImage is one data item.
type wireImage struct {
	URL     string         `json:"url"`
	B64JSON b64Field       `json:"b64_json"`
	Size    string         `json:"size"`
	Error   *wireItemError `json:"error"`
}

// wireItemError is data[i].error for an image that failed.
type wireItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// b64Field decodes a b64_json string straight into bytes, stripping the
// "data:image/png;base64," prefix Modelverse puts in front (PROVIDERS.md §3.2).
type b64Field struct {
	Data        []byte
	ContentType string
}

// UnmarshalJSON decodes the base64 string.
func (f *b64Field) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		return nil
	}
	var s []byte
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		s = raw[1 : len(raw)-1]
	} else {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return fmt.Errorf("b64_json is not a string: %w", err)
		}
		s = []byte(str)
	}
	ct, payload, err := stripDataURI(s)
	if err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	data, err := decodeBase64(payload)
	if err != nil {
		return err
	}
	f.Data, f.ContentType = data, ct
	return nil
}

// stripDataURI splits "data:image/png;base64,<payload>" into its MIME type and payload; a plain
// base64 string comes back unchanged with an empty type.
func stripDataURI(s []byte) (string, []byte, error) {
	if len(s) < 5 || !strings.EqualFold(string(s[:5]), "data:") {
		return "", s, nil
	}
	meta, payload, ok := bytes.Cut(s[5:], []byte(","))
	if !ok || !bytes.HasSuffix(bytes.ToLower(meta), []byte(";base64")) {
		return "", nil, fmt.Errorf("b64_json has a data: prefix that is not base64")
	}
	return strings.ToLower(string(meta[:len(meta)-len(";base64")])), payload, nil
}

// decodeBase64 decodes standard base64, padded or not.
func decodeBase64(s []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(s)%4 != 0 && bytes.IndexByte(s, '=') < 0 {
		enc = base64.RawStdEncoding
	}
	dst := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(dst, s)
	if err != nil {
		return nil, fmt.Errorf("b64_json is not valid base64: %w", err)
	}
	return dst[:n], nil
}

// decodeResponse parses a success body.
func decodeResponse(body []byte) (*wireResponse, error) {
	var r wireResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("modelverse: decode response: %w", err)
	}
	return &r, nil
}

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

// translate decodes a success body and converts it; an unreadable body is a bad response.
func translate(provider string, body []byte, h hints, now time.Time) (*providers.Result, error) {
	wr, err := decodeResponse(body)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
			Message: "the provider's answer could not be read", Err: err}
	}
	return toResult(provider, wr, h, now)
}

// toResult converts a decoded success body; now counts URL lifetimes when created is absent.
func toResult(provider string, r *wireResponse, h hints, now time.Time) (*providers.Result, error) {
	res := &providers.Result{}
	born := now
	if r.Created > 0 && r.Created < 1<<40 {
		res.Created = time.Unix(r.Created, 0).UTC()
		born = res.Created
	}
	var failed *wireItemError
	for i, d := range r.Data {
		if d.Error != nil {
			if failed == nil {
				failed = d.Error
			}
			continue
		}
		out := providers.Output{Width: h.size.W, Height: h.size.H}
		if sz, err := providers.ParseSize(d.Size); err == nil {
			out.Width, out.Height = sz.W, sz.H
		}
		if h.seed != nil && *h.seed >= 0 && len(r.Data) == 1 {
			s := *h.seed
			out.Seed = &s
		}
		hasBytes := len(d.B64JSON.Data) > 0
		switch {
		case d.URL != "" && !(hasBytes && h.want == "b64_json"):
			u, err := url.Parse(d.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned an image URL that is not http(s)", Err: fmt.Errorf("modelverse: data[%d].url is not an absolute http(s) URL", i)}
			}
			out.URL = d.URL
			ttl := h.ttl
			if ttl <= 0 {
				ttl = unknownURLTTL
			}
			out.Expires = born.Add(ttl)
		case hasBytes:
			ct := http.DetectContentType(d.B64JSON.Data)
			if !strings.HasPrefix(ct, "image/") {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned image data that is not an image", Err: fmt.Errorf("modelverse: data[%d].b64_json sniffs as %s", i, ct)}
			}
			out.Data, out.ContentType = d.B64JSON.Data, ct
		default:
			continue
		}
		res.Images = append(res.Images, out)
	}
	if len(res.Images) > 0 {
		return res, nil
	}
	if failed != nil {
		e := codeError(provider, 0, failed.Code)
		if e.Kind != providers.KindContentPolicy {
			e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider failed to generate the image"
		}
		e.Err = fmt.Errorf("modelverse: every image failed, first with %s: %s", failed.Code, clip(failed.Message))
		return nil, e
	}
	if r.Error != nil && (r.Error.Code != "" || r.Error.Message != "") {
		e := codeError(provider, 0, r.Error.Code)
		e.Err = fmt.Errorf("modelverse: error in a 200 answer, %s (request id %q): %s", r.Error.Code, requestID(r.Error.Param, nil), clip(r.Error.Message))
		return nil, e
	}
	return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
		Message: "the provider's answer carried no image", Err: fmt.Errorf("modelverse: response has %d data items and no image", len(r.Data))}
}
