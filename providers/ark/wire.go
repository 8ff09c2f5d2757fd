package ark

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire"
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
	op, err := arkwire.Preflight(op, req)
	if err != nil {
		return nil, err
	}
	known := m != nil
	if !known {
		m = &providers.Model{ID: req.Model, Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
			MaxN: 1, Params: wireParams, MaxInputImages: 14, Extras: []string{ExtraWatermark}}
	}
	if err := arkwire.CheckOperation(m, op); err != nil {
		return nil, err
	}
	if req.N > 1 {
		return nil, providers.UnsupportedParam("n", "Ark returns one image per call; ask for n=1 (the gateway fans larger n out)")
	}
	if err := arkwire.CheckOptions(m, op, req); err != nil {
		return nil, err
	}
	w := &wireRequest{Model: req.Model, Prompt: req.Prompt, Seed: req.Seed, GuidanceScale: req.GuidanceScale}
	if known {
		if err := arkwire.CheckRanges(m, req); err != nil {
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

// wireSize returns the size field for the requested output size. A request without a size on a
// catalog model gets the model's default size written out (Size.Default, the upstream's own
// default), so the size billed (billing resolves an omitted size to Size.Default) is the size
// sent, not one the upstream is trusted to pick. SeedEdit takes only "adaptive": its output
// follows the input image, which billing prices as an estimate (Quote.SizeEstimated). A model
// outside the catalog sends a size only when the request has one.
func wireSize(m *providers.Model, known bool, w, h int) (string, error) {
	if known && m.ID == ModelSeedEdit30I2I {
		if w != 0 || h != 0 {
			return "", providers.UnsupportedParam("size", "model %s takes no size: the output keeps the input image's aspect ratio", m.ID)
		}
		return sizeAdaptive, nil
	}
	if w == 0 && h == 0 {
		if known && !m.Size.Default.IsZero() {
			return m.Size.Default.String(), nil
		}
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
	if err := arkwire.CheckImages(m, op, ims); err != nil {
		return err
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
func encodeRequest(w *wireRequest) ([]byte, error) { return arkwire.Encode(Name, w) }

// wireResponse is the success body (§3.1.1). Beyond the fields both upstreams share it has model,
// usage and data[].output_format, decoded (with their types checked) but not used.
type wireResponse struct {
	Model   string             `json:"model"`
	Created int64              `json:"created"`
	Data    []wireImage        `json:"data"`
	Usage   *wireUsage         `json:"usage"`
	Error   *arkwire.ErrorBody `json:"error"`
}

// wireImage is one data item: a URL or base64 image, its size, or the error of a failed image.
type wireImage struct {
	arkwire.Image
	OutputFormat string `json:"output_format"`
}

// wireUsage is the usage object; generated_images counts successes only.
type wireUsage struct {
	GeneratedImages int   `json:"generated_images"`
	OutputTokens    int64 `json:"output_tokens"`
	TotalTokens     int64 `json:"total_tokens"`
}

// shared returns the fields the translation reads.
func (r *wireResponse) shared() *arkwire.Response {
	out := &arkwire.Response{Created: r.Created, Data: make([]arkwire.Image, len(r.Data)), Error: r.Error}
	for i := range r.Data {
		out.Data[i] = r.Data[i].Image
	}
	return out
}

// translate decodes a success body and converts it. want is the client's response_format hint,
// seed the request's seed (echoed on every image when fixed), now the time to count URL lifetimes
// from when the body carries no created. When every image failed the call fails with the first
// item's kind, an item's invalid-request or unreadable code counting as the provider failing.
func translate(provider string, body []byte, want string, seed *int64, now time.Time) (*providers.Result, error) {
	var r wireResponse
	texts, err := arkwire.Decode(Name, provider, body, &r)
	if err != nil {
		return nil, err
	}
	shared := r.shared()
	shared.Texts = texts
	return arkwire.ToResult(Name, provider, shared, arkwire.Hints{Want: want, Seed: seed, TTL: URLTTL}, now, arkwire.Failures{
		Item: func(code string) *providers.Error {
			e := codeError(provider, http.StatusOK, code, "")
			if e.Kind == providers.KindInvalidRequest || e.Kind == providers.KindUpstreamBadResponse {
				e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider failed to generate the image"
			}
			return e
		},
		Body: func(eb arkwire.ErrorBody) (*providers.Error, string) {
			e := codeError(provider, http.StatusOK, eb.Code, eb.Param)
			refineMessage(e, eb.Message)
			return e, ""
		},
	})
}
