package ark

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

// wireRequest is the JSON body of POST /images/generations (PROVIDERS.md §3.1; field names as
// the official Go SDK's GenerateImagesRequest [S21]).
type wireRequest struct {
	Model          string     `json:"model"`
	Prompt         string     `json:"prompt"`
	Image          imageField `json:"image,omitempty"`
	ResponseFormat string     `json:"response_format,omitempty"`
	Size           string     `json:"size,omitempty"`
	Seed           *int64     `json:"seed,omitempty"`
	GuidanceScale  *float64   `json:"guidance_scale,omitempty"`
	// Watermark is always sent: the upstream default is true (§3.1.4).
	Watermark    bool   `json:"watermark"`
	OutputFormat string `json:"output_format,omitempty"`
}

// imageField is Ark's image: one string for a single image, an array for several.
type imageField []string

// MarshalJSON writes one image as a string and several as an array.
func (f imageField) MarshalJSON() ([]byte, error) {
	if len(f) == 1 {
		return json.Marshal(f[0])
	}
	return json.Marshal([]string(f))
}

// sizeAdaptive is the only size SeedEdit 3.0 takes: the output follows the input image.
const sizeAdaptive = "adaptive"

// wireParams are the optional parameters Ark's wire format can carry at all; for a model that
// is not in the built-in catalog (an endpoint id or a model added in config) these pass through.
const wireParams = providers.ParamSeed | providers.ParamGuidance | providers.ParamReferenceImage | providers.ParamOutputFormat

// toWire checks req against the model (defense in depth: the front door has validated it against
// the catalog already) and translates it. m is nil for a model outside the built-in catalog,
// which is then passed through with only the checks the wire format itself imposes.
func toWire(m *providers.Model, op providers.Operation, req *providers.Request) (*wireRequest, error) {
	if op == "" {
		op = providers.OpGenerate
	}
	if req.Model == "" {
		return nil, providers.ParamError("model", "a model is required")
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, providers.ParamError("prompt", "a prompt is required")
	}
	known := m != nil
	if !known {
		m = &providers.Model{ID: req.Model, Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
			MaxN: 1, Params: wireParams, MaxInputImages: 14, Extras: []string{ExtraWatermark}}
	}
	if !m.Supports(op) {
		return nil, providers.UnsupportedParam("model", "model %s does not support the %s operation", m.ID, op)
	}
	if req.N > 1 {
		return nil, providers.UnsupportedParam("n", "Ark returns one image per call; ask for n=1 (the gateway fans larger n out)")
	}
	if req.Mask != nil {
		return nil, providers.UnsupportedParam("mask", "model %s has no mask input: it edits the whole image following the prompt", m.ID)
	}
	if err := checkParams(m, op, req); err != nil {
		return nil, err
	}
	w := &wireRequest{Model: req.Model, Prompt: req.Prompt, Seed: req.Seed, GuidanceScale: req.GuidanceScale}
	if known {
		if err := checkRanges(m, req); err != nil {
			return nil, err
		}
	}
	switch req.ResponseFormat {
	case "url", "b64_json":
		w.ResponseFormat = req.ResponseFormat
	}
	if req.AspectRatio != "" {
		return nil, providers.UnsupportedParam("aspect_ratio", "model %s takes a size (WIDTHxHEIGHT), not an aspect ratio", m.ID)
	}
	size, err := wireSize(m, known, req.Width, req.Height)
	if err != nil {
		return nil, err
	}
	w.Size = size
	if err := checkImages(m, op, known, req.Images); err != nil {
		return nil, err
	}
	for _, im := range req.Images {
		w.Image = append(w.Image, im.DataURI())
	}
	if req.OutputFormat != "" {
		f := strings.ToLower(req.OutputFormat)
		if f == "jpg" {
			f = "jpeg"
		}
		if !slices.Contains(outputFormats, f) {
			return nil, providers.UnsupportedParam("output_format", "model %s produces only jpeg or png", m.ID)
		}
		w.OutputFormat = f
	}
	wm, err := watermark(m, req.Extra)
	if err != nil {
		return nil, err
	}
	w.Watermark = wm
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

// checkRanges checks seed and guidance against the catalog's bounds.
func checkRanges(m *providers.Model, req *providers.Request) error {
	if req.Seed != nil && (*req.Seed < m.SeedMin || *req.Seed > m.SeedMax) {
		return providers.ParamError("seed", "seed must be between %d and %d", m.SeedMin, m.SeedMax)
	}
	if g := req.GuidanceScale; g != nil && (*g < m.MinGuidance || *g > m.MaxGuidance) {
		return providers.ParamError("guidance_scale", "guidance_scale must be between %g and %g", m.MinGuidance, m.MaxGuidance)
	}
	return nil
}

// wireSize returns the size field for the requested output size.
func wireSize(m *providers.Model, known bool, w, h int) (string, error) {
	if known && m.ID == ModelSeedEdit30I2I {
		if w != 0 || h != 0 {
			return "", providers.UnsupportedParam("size", "model %s takes no size: the output keeps the input image's aspect ratio", m.ID)
		}
		return sizeAdaptive, nil
	}
	if w == 0 && h == 0 {
		return "", nil
	}
	if w <= 0 || h <= 0 {
		return "", providers.ParamError("size", "size needs a positive width and height")
	}
	s := providers.Size{W: w, H: h}
	if !known {
		return s.String(), nil
	}
	r := m.Size
	switch {
	case r.MinSide > 0 && (w < r.MinSide || h < r.MinSide), r.MaxSide > 0 && (w > r.MaxSide || h > r.MaxSide):
		return "", providers.ParamError("size", "model %s takes widths and heights between %d and %d pixels", m.ID, r.MinSide, r.MaxSide)
	case r.MinPixels > 0 && s.Pixels() < r.MinPixels:
		return "", providers.ParamError("size", "model %s needs at least %d pixels (for example 2560x1440); %s has %d", m.ID, r.MinPixels, s, s.Pixels())
	case r.MaxPixels > 0 && s.Pixels() > r.MaxPixels:
		return "", providers.ParamError("size", "model %s takes at most %d pixels; %s has %d", m.ID, r.MaxPixels, s, s.Pixels())
	case r.MinPixels > 0 && (w > seedreamMaxAspect*h || h > seedreamMaxAspect*w):
		return "", providers.ParamError("size", "model %s takes aspect ratios between 1:16 and 16:1", m.ID)
	}
	return s.String(), nil
}

// seedEditMaxBytes is SeedEdit's input image limit (§3.1 image row: ≤ 10 MB [S36]).
const seedEditMaxBytes = 10 << 20

// checkImages checks the input images against the model.
func checkImages(m *providers.Model, op providers.Operation, known bool, ims []providers.Image) error {
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
	if !known || m.ID != ModelSeedEdit30I2I {
		return nil
	}
	im := ims[0]
	switch strings.ToLower(im.ContentType) {
	case "image/png", "image/jpeg", "image/jpg", "":
	default:
		return providers.UnsupportedParam("image", "model %s takes only JPEG or PNG images", m.ID)
	}
	if len(im.Data) > seedEditMaxBytes {
		return &providers.Error{Kind: providers.KindTooLarge, Param: "image", Message: fmt.Sprintf("model %s takes images of at most 10 MB", m.ID)}
	}
	if im.Width > 0 && im.Height > 0 {
		if im.Width <= 14 || im.Height <= 14 {
			return providers.ParamError("image", "model %s needs images wider and taller than 14 pixels", m.ID)
		}
		if im.Width >= 3*im.Height || im.Height >= 3*im.Width {
			return providers.ParamError("image", "model %s needs an image aspect ratio between 1:3 and 3:1 (exclusive)", m.ID)
		}
	}
	return nil
}

// watermark reads the "watermark" extension field and refuses every other one.
func watermark(m *providers.Model, extra map[string]json.RawMessage) (bool, error) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var on bool
	for _, k := range keys {
		if k != ExtraWatermark || !slices.Contains(m.Extras, ExtraWatermark) {
			return false, providers.UnsupportedParam(k, "model %s does not take the extension field %s", m.ID, k)
		}
		if err := json.Unmarshal(extra[k], &on); err != nil {
			return false, providers.ParamError(k, "watermark must be true or false")
		}
	}
	return on, nil
}

// encodeRequest marshals w without HTML escaping, so the body is what a person would write.
func encodeRequest(w *wireRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("ark: encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wireResponse is the success body (§3.1.1).
type wireResponse struct {
	Model   string      `json:"model"`
	Created int64       `json:"created"`
	Data    []wireImage `json:"data"`
	Usage   *wireUsage  `json:"usage"`
	// Error appears on a 200 in the SDK's response type; treated like an error answer.
	Error *wireErrorBody `json:"error"`
}

// wireImage is one data item: a URL or base64 image, its size, or the error of a failed image.
type wireImage struct {
	URL          string         `json:"url"`
	B64JSON      b64Field       `json:"b64_json"`
	Size         string         `json:"size"`
	OutputFormat string         `json:"output_format"`
	Error        *wireItemError `json:"error"`
}

// wireItemError is data[i].error for an image of a group that failed.
type wireItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// wireUsage is the usage object; generated_images counts successes only.
type wireUsage struct {
	GeneratedImages int   `json:"generated_images"`
	OutputTokens    int64 `json:"output_tokens"`
	TotalTokens     int64 `json:"total_tokens"`
}

// b64Field decodes a b64_json string straight into bytes (one copy, no intermediate string for
// the common unescaped case) and strips a "data:<type>;base64," prefix if there is one.
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
	ct := strings.ToLower(string(meta[:len(meta)-len(";base64")]))
	return ct, payload, nil
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
		return nil, fmt.Errorf("ark: decode response: %w", err)
	}
	return &r, nil
}

// translate decodes a success body and converts it; an unreadable body is a bad response.
func translate(provider string, body []byte, want string, seed *int64, now time.Time) (*providers.Result, error) {
	wr, err := decodeResponse(body)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
			Message: "the provider's answer could not be read", Err: err}
	}
	return toResult(provider, wr, want, seed, now)
}

// toResult converts a decoded success body. want is the client's response_format hint, seed the
// request's seed, now the time to count URL lifetimes from when the body carries no created.
func toResult(provider string, r *wireResponse, want string, seed *int64, now time.Time) (*providers.Result, error) {
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
		out := providers.Output{}
		if sz, err := providers.ParseSize(d.Size); err == nil {
			out.Width, out.Height = sz.W, sz.H
		}
		if seed != nil && *seed >= 0 {
			s := *seed
			out.Seed = &s
		}
		hasBytes := len(d.B64JSON.Data) > 0
		switch {
		case d.URL != "" && !(hasBytes && want == "b64_json"):
			u, err := url.Parse(d.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned an image URL that is not http(s)", Err: fmt.Errorf("ark: data[%d].url is not an absolute http(s) URL", i)}
			}
			out.URL = d.URL
			out.Expires = born.Add(URLTTL)
		case hasBytes:
			ct := http.DetectContentType(d.B64JSON.Data)
			if !strings.HasPrefix(ct, "image/") {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned image data that is not an image", Err: fmt.Errorf("ark: data[%d].b64_json sniffs as %s", i, ct)}
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
		e := codeError(provider, http.StatusOK, failed.Code, "")
		if e.Kind == providers.KindInvalidRequest || e.Kind == providers.KindUpstreamBadResponse {
			e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider failed to generate the image"
		}
		e.Err = fmt.Errorf("ark: every image failed, first with %s: %s", failed.Code, clip(failed.Message))
		return nil, e
	}
	if r.Error != nil && (r.Error.Code != "" || r.Error.Message != "") {
		e := codeError(provider, http.StatusOK, r.Error.Code, r.Error.Param)
		refineMessage(e, r.Error.Message)
		e.Err = fmt.Errorf("ark: error in a 200 answer, %s: %s", r.Error.Code, clip(r.Error.Message))
		return nil, e
	}
	return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
		Message: "the provider's answer carried no image", Err: fmt.Errorf("ark: response has %d data items and no image", len(r.Data))}
}
