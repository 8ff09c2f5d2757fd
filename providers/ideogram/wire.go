package ideogram

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/imaging"
	"github.com/imagegw/imagegw/providers"
)

// Upstream paths, relative to the base URL. The official host and AiHubMix use the same paths; on
// AiHubMix they sit under /ideogram (the base URL then ends in /ideogram).
const (
	pathGenerate     = "/generate"
	pathRemix        = "/remix"
	pathEdit         = "/edit"
	pathUpscale      = "/upscale"
	pathDescribe     = "/describe"
	pathReframe      = "/reframe"
	pathV3Generate   = "/v1/ideogram-v3/generate"
	pathV3Remix      = "/v1/ideogram-v3/remix"
	pathV3Edit       = "/v1/ideogram-v3/edit"
	pathV3Reframe    = "/v1/ideogram-v3/reframe"
	pathV3ReplaceBG  = "/v1/ideogram-v3/replace-background"
	maxStyleRefBytes = 10 << 20 // style reference images: 10 MB in total (PROVIDERS.md §2.3)
	contentTypeJSON  = "application/json"
)

// DefaultVariationPrompt is the prompt sent for a variation, or a remix without a prompt: Ideogram's
// remix requires one.
const DefaultVariationPrompt = "A variation of the provided image, keeping its subject, composition and style"

// call is one upstream request, ready to send: a JSON body or a multipart form.
type call struct {
	op   providers.Operation
	path string
	json []byte
	form *form
}

// body returns the request body, its length and its Content-Type. boundary is for tests; empty
// picks a random one.
func (c *call) body(boundary string) (io.Reader, int64, string) {
	if c.form != nil {
		return c.form.encode(boundary)
	}
	return bytes.NewReader(c.json), int64(len(c.json)), contentTypeJSON
}

// imageRequest is the legacy ImageRequest, the JSON of /generate and of the image_request part of
// /remix.
type imageRequest struct {
	Prompt            string          `json:"prompt"`
	AspectRatio       string          `json:"aspect_ratio,omitempty"`
	Resolution        string          `json:"resolution,omitempty"`
	Model             string          `json:"model,omitempty"`
	MagicPromptOption string          `json:"magic_prompt_option,omitempty"`
	Seed              *int64          `json:"seed,omitempty"`
	StyleType         string          `json:"style_type,omitempty"`
	NegativePrompt    string          `json:"negative_prompt,omitempty"`
	NumImages         int             `json:"num_images,omitempty"`
	ColorPalette      json.RawMessage `json:"color_palette,omitempty"`
	ImageWeight       *int            `json:"image_weight,omitempty"`
}

// upscaleRequest is the image_request part of legacy /upscale.
type upscaleRequest struct {
	Prompt            string `json:"prompt,omitempty"`
	Resemblance       *int   `json:"resemblance,omitempty"`
	Detail            *int   `json:"detail,omitempty"`
	MagicPromptOption string `json:"magic_prompt_option,omitempty"`
	NumImages         int    `json:"num_images,omitempty"`
	Seed              *int64 `json:"seed,omitempty"`
}

// marshal encodes v without HTML escaping, so prompts reach Ideogram byte for byte.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("ideogram: encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// legacyAspect spells a canonical ratio for the legacy API: "16:9" → "ASPECT_16_9".
func legacyAspect(r string) string { return "ASPECT_" + strings.Replace(r, ":", "_", 1) }

// v3Aspect spells a canonical ratio for the 3.0 API: "16:9" → "16x9".
func v3Aspect(r string) string { return strings.Replace(r, ":", "x", 1) }

// legacyResolution spells a size for the legacy API: 1024x768 → "RESOLUTION_1024_768".
func legacyResolution(s providers.Size) string {
	return "RESOLUTION_" + strconv.Itoa(s.W) + "_" + strconv.Itoa(s.H)
}

// buildCall validates req for model m and operation op and translates it into the upstream call.
// It is pure: no network. Errors are *providers.Error.
func buildCall(m *providers.Model, op providers.Operation, req *providers.Request) (*call, error) {
	if !m.Supports(op) {
		return nil, unsupported("model", "Ideogram model %s does not support the %s operation", m.ID, op)
	}
	if err := checkCommon(m, op, req); err != nil {
		return nil, err
	}
	k, err := parseKnobs(m, op, req)
	if err != nil {
		return nil, err
	}
	if k.styleRefs, err = splitImages(m, op, req, k); err != nil {
		return nil, err
	}
	writeDefaults(m, op, &k)
	gen := apiOf(m.ID)
	switch op {
	case providers.OpUpscale:
		return buildUpscale(req, k)
	case providers.OpDescribe:
		return buildDescribe(req, k), nil
	}
	if gen == apiLegacy {
		switch op {
		case providers.OpGenerate:
			return buildLegacyGenerate(m, req, k)
		case providers.OpRemix, providers.OpVariation:
			return buildLegacyRemix(m, op, req, k)
		case providers.OpEdit:
			return buildLegacyEdit(m, req, k)
		case providers.OpReframe:
			return buildLegacyReframe(m, req, k)
		}
	} else {
		switch op {
		case providers.OpGenerate:
			return buildV3(op, pathV3Generate, req, k)
		case providers.OpRemix, providers.OpVariation:
			return buildV3(op, pathV3Remix, req, k)
		case providers.OpEdit:
			return buildV3(op, pathV3Edit, req, k)
		case providers.OpReframe:
			return buildV3(op, pathV3Reframe, req, k)
		case providers.OpReplaceBackground:
			return buildV3(op, pathV3ReplaceBG, req, k)
		}
	}
	return nil, unsupported("model", "Ideogram model %s does not support the %s operation", m.ID, op)
}

// defaultAspect is Ideogram's aspect ratio when a request names neither a ratio nor a
// resolution (seed 002: image_request.aspect_ratio default "ASPECT_1_1"; 3.0: "1x1").
const defaultAspect = "1:1"

// sizedOps are the operations whose output size the request chooses (by resolution or aspect
// ratio). Edit and replace-background keep the source image's size, upscale doubles it, and
// reframe requires a resolution.
var sizedOps = map[providers.Operation]bool{providers.OpGenerate: true, providers.OpRemix: true, providers.OpVariation: true}

// writeDefaults fills in what Ideogram would otherwise choose itself, so that the call carries
// every parameter billing prices the request by (internal/billing resolves an omitted size to
// Model.Size.Default, 1024x1024, and an omitted rendering speed to the DEFAULT tier):
//   - the size of a generate, remix or variation that names none: Ideogram's default aspect
//     ratio 1:1, which it renders at 1024x1024 (seed 002's answers: "resolution": "1024x1024").
//     The ratio, not the resolution 1024x1024, because seed 002 documents resolution for 2.0
//     models only, while every model takes the ratio;
//   - the rendering speed of a 3.0 call that names none: DEFAULT, Ideogram's documented default
//     and the tier a request without a speed is priced at.
//
// The count is written by the builders (num_images is always sent, at least 1).
func writeDefaults(m *providers.Model, op providers.Operation, k *knobs) {
	gen := apiOf(m.ID)
	if sizedOps[op] && k.size.IsZero() && k.aspect == "" {
		k.aspect = defaultAspect
	}
	if gen == apiV3 && k.speed == "" && slices.Contains(opExtras[gen][op], ExtraRenderingSpeed) {
		k.speed = SpeedDefault
	}
}

// numImages is the num_images a call sends: the request's n, at least 1 (Ideogram's default),
// always written so that the count billed is the count asked for.
func numImages(req *providers.Request) int { return max(req.N, 1) }

// checkCommon refuses what no Ideogram wire can carry and checks the count, seed, prompt, mask
// and that no image is empty.
func checkCommon(m *providers.Model, op providers.Operation, req *providers.Request) error {
	switch {
	case req.Style != "" && !strings.EqualFold(req.Style, "auto"):
		return unsupported("style", "style is not supported by Ideogram; use the style_type extension field")
	case req.Steps != 0:
		return unsupported("steps", "steps is not supported by Ideogram")
	case req.GuidanceScale != nil:
		return unsupported("guidance_scale", "guidance_scale is not supported by Ideogram")
	case req.Strength != nil:
		return unsupported("strength", "strength is not supported by Ideogram; use the image_weight extension field for remix")
	case req.Background != "" && !strings.EqualFold(req.Background, "auto"):
		return unsupported("background", "background is not supported by Ideogram")
	case req.OutputFormat != "":
		return unsupported("output_format", "output_format is not supported by Ideogram")
	case req.OutputCompression != nil:
		return unsupported("output_compression", "output_compression is not supported by Ideogram")
	case req.Moderation != "" && !strings.EqualFold(req.Moderation, "auto"):
		return unsupported("moderation", "moderation is not supported by Ideogram")
	case req.User != "":
		return unsupported("user", "user is not supported by Ideogram")
	}
	if req.N < 0 || req.N > MaxImages {
		return invalid("n", "n must be between 1 and %d for Ideogram", MaxImages)
	}
	if op == providers.OpDescribe && req.N > 1 {
		return unsupported("n", "describe returns the descriptions Ideogram writes; n cannot be set")
	}
	if req.Seed != nil {
		if op == providers.OpDescribe {
			return unsupported("seed", "seed is not supported by the Ideogram describe operation")
		}
		if *req.Seed < 0 || *req.Seed > MaxSeed {
			return invalid("seed", "seed must be between 0 and %d for Ideogram", MaxSeed)
		}
	}
	if req.NegativePrompt != "" {
		ok := m.Params.Has(providers.ParamNegativePrompt) &&
			(op == providers.OpGenerate || op == providers.OpRemix || op == providers.OpVariation)
		if !ok {
			return unsupported("negative_prompt", "negative_prompt is not supported by Ideogram model %s for the %s operation", m.ID, op)
		}
	}
	switch op {
	case providers.OpGenerate, providers.OpEdit, providers.OpReplaceBackground:
		if strings.TrimSpace(req.Prompt) == "" {
			return invalid("prompt", "prompt is required")
		}
	case providers.OpReframe, providers.OpDescribe:
		if req.Prompt != "" {
			return unsupported("prompt", "the Ideogram %s operation takes no prompt", op)
		}
	}
	if req.Mask != nil && op != providers.OpEdit {
		return unsupported("mask", "mask is only used by the edit operation")
	}
	for i, im := range req.Images {
		if len(im.Data) == 0 {
			return invalid("image", "image %d is empty", i)
		}
	}
	return nil
}

// splitImages checks the request's images and returns the style reference images. The source
// image comes first (every operation but generate has exactly one); style references follow, and
// Extra style_reference_images says how many there are. Without it, every image of a generate is
// a style reference, and other operations take exactly one image: extra images are refused rather
// than guessed at.
func splitImages(m *providers.Model, op providers.Operation, req *providers.Request, k knobs) ([]providers.Image, error) {
	want := 1 // source images
	if op == providers.OpGenerate {
		want = 0
	}
	if m.MaxInputImages > 0 && len(req.Images) > m.MaxInputImages {
		if m.MaxInputImages == 1 {
			return nil, invalid("image", "Ideogram model %s takes one image", m.ID)
		}
		return nil, invalid("image", "Ideogram model %s takes at most %d images", m.ID, m.MaxInputImages)
	}
	refs := len(req.Images) - want
	if k.styleRefCount != nil {
		refs = *k.styleRefCount
	} else if op != providers.OpGenerate {
		refs = 0
	}
	switch sources := len(req.Images) - refs; {
	case sources < want:
		return nil, invalid("image", "the %s operation needs an image", op)
	case sources > want && want == 0:
		return nil, invalid("image", "generate takes no source image; every image must be a style reference image")
	case sources > want:
		return nil, unsupported("image", "the Ideogram %s operation takes one source image; send further images as style_reference_images", op)
	}
	styleRefs := req.Images[want:]
	if len(styleRefs) == 0 {
		return nil, nil
	}
	if apiOf(m.ID) != apiV3 {
		if op == providers.OpGenerate {
			return nil, unsupported("image", "Ideogram model %s takes no reference images on generate", m.ID)
		}
		return nil, unsupported("image", "Ideogram model %s takes no style reference images", m.ID)
	}
	total := 0
	for _, im := range styleRefs {
		total += len(im.Data)
	}
	if total > maxStyleRefBytes {
		return nil, &providers.Error{Kind: providers.KindTooLarge, Param: "image", Provider: Name,
			Message: "style reference images may total at most 10 MB"}
	}
	if len(k.styleCodes) > 0 {
		return nil, invalid(ExtraStyleCodes, "style_codes cannot be combined with style reference images")
	}
	return styleRefs, nil
}

// buildLegacyGenerate: POST /generate with {"image_request": {...}}.
func buildLegacyGenerate(m *providers.Model, req *providers.Request, k knobs) (*call, error) {
	ir := legacyImageRequest(m, req, k)
	b, err := marshal(struct {
		ImageRequest imageRequest `json:"image_request"`
	}{ir})
	if err != nil {
		return nil, err
	}
	return &call{op: providers.OpGenerate, path: pathGenerate, json: b}, nil
}

func legacyImageRequest(m *providers.Model, req *providers.Request, k knobs) imageRequest {
	ir := imageRequest{
		Prompt:            req.Prompt,
		Model:             m.ID,
		MagicPromptOption: k.magic,
		Seed:              req.Seed,
		StyleType:         k.styleType,
		NegativePrompt:    req.NegativePrompt,
		NumImages:         numImages(req),
		ColorPalette:      k.palette,
		ImageWeight:       k.imageWeight,
	}
	if k.aspect != "" {
		ir.AspectRatio = legacyAspect(k.aspect)
	}
	if !k.size.IsZero() {
		ir.Resolution = legacyResolution(k.size)
	}
	return ir
}

// buildLegacyRemix: POST /remix, multipart with image_request (JSON text) and image_file.
func buildLegacyRemix(m *providers.Model, op providers.Operation, req *providers.Request, k knobs) (*call, error) {
	r := *req
	if strings.TrimSpace(r.Prompt) == "" {
		r.Prompt = DefaultVariationPrompt
	}
	ir := legacyImageRequest(m, &r, k)
	b, err := marshal(ir)
	if err != nil {
		return nil, err
	}
	f := &form{}
	f.field("image_request", string(b))
	addImage(f, "image_file", req.Images[0], "image")
	return &call{op: op, path: pathRemix, form: f}, nil
}

// buildLegacyEdit: POST /edit, flat multipart (V_2 and V_2_TURBO only).
func buildLegacyEdit(m *providers.Model, req *providers.Request, k knobs) (*call, error) {
	mask, err := convertMask(req, k)
	if err != nil {
		return nil, err
	}
	f := &form{}
	f.field("prompt", req.Prompt)
	f.field("model", m.ID)
	if k.magic != "" {
		f.field("magic_prompt_option", k.magic)
	}
	addCommonFields(f, req)
	if k.styleType != "" {
		f.field("style_type", k.styleType)
	}
	addImage(f, "image_file", req.Images[0], "image")
	f.fileField("mask", "mask.png", "image/png", mask)
	return &call{op: providers.OpEdit, path: pathEdit, form: f}, nil
}

// buildLegacyReframe: POST /reframe, flat multipart; resolution is required.
func buildLegacyReframe(m *providers.Model, req *providers.Request, k knobs) (*call, error) {
	if k.size.IsZero() {
		return nil, invalid("size", "reframe needs the target size (one of Ideogram's resolutions)")
	}
	f := &form{}
	f.field("resolution", legacyResolution(k.size))
	f.field("model", m.ID)
	addCommonFields(f, req)
	if k.styleType != "" {
		f.field("style_type", k.styleType)
	}
	addImage(f, "image_file", req.Images[0], "image")
	return &call{op: providers.OpReframe, path: pathReframe, form: f}, nil
}

// buildUpscale: POST /upscale, multipart with image_request (JSON text, "{}" for defaults) and
// image_file. The endpoint is the same for every model.
func buildUpscale(req *providers.Request, k knobs) (*call, error) {
	b, err := marshal(upscaleRequest{
		Prompt:            req.Prompt,
		Resemblance:       k.resemblance,
		Detail:            k.detail,
		MagicPromptOption: k.magic,
		NumImages:         numImages(req),
		Seed:              req.Seed,
	})
	if err != nil {
		return nil, err
	}
	f := &form{}
	f.field("image_request", string(b))
	addImage(f, "image_file", req.Images[0], "image")
	return &call{op: providers.OpUpscale, path: pathUpscale, form: f}, nil
}

// buildDescribe: POST /describe, multipart with image_file and describe_model_version: the
// client's, else the version the model names (V_2… → V_2, V_3 → V_3; Ideogram would otherwise
// describe with its default whatever model was asked for). V_1 models send none.
func buildDescribe(req *providers.Request, k knobs) *call {
	f := &form{}
	v := k.describeVersion
	if v == "" {
		switch {
		case req.Model == ModelV3:
			v = "V_3"
		case strings.HasPrefix(req.Model, "V_2"):
			v = "V_2"
		}
	}
	if v != "" {
		f.field("describe_model_version", v)
	}
	addImage(f, "image_file", req.Images[0], "image")
	return &call{op: providers.OpDescribe, path: pathDescribe, form: f}
}

// buildV3 builds any Ideogram 3.0 call: multipart with image (not image_file), magic_prompt (not
// magic_prompt_option), "16x9" ratios and "WxH" resolutions. parseKnobs has already refused the
// fields the endpoint does not take.
func buildV3(op providers.Operation, p string, req *providers.Request, k knobs) (*call, error) {
	f := &form{}
	prompt := req.Prompt
	if (op == providers.OpRemix || op == providers.OpVariation) && strings.TrimSpace(prompt) == "" {
		prompt = DefaultVariationPrompt
	}
	if op != providers.OpReframe {
		f.field("prompt", prompt)
	}
	if req.Seed != nil {
		f.field("seed", strconv.FormatInt(*req.Seed, 10))
	}
	if !k.size.IsZero() {
		f.field("resolution", k.size.String())
	} else if op == providers.OpReframe {
		return nil, invalid("size", "reframe needs the target size (one of Ideogram 3.0's resolutions)")
	}
	if k.aspect != "" {
		f.field("aspect_ratio", v3Aspect(k.aspect))
	}
	if k.speed != "" {
		f.field("rendering_speed", k.speed)
	}
	if k.magic != "" {
		f.field("magic_prompt", k.magic)
	}
	if req.NegativePrompt != "" {
		f.field("negative_prompt", req.NegativePrompt)
	}
	f.field("num_images", strconv.Itoa(numImages(req)))
	if k.imageWeight != nil {
		f.field("image_weight", strconv.Itoa(*k.imageWeight))
	}
	if len(k.palette) > 0 {
		f.field("color_palette", string(k.palette))
	}
	for _, c := range k.styleCodes {
		f.field("style_codes", c)
	}
	if k.styleType != "" {
		f.field("style_type", k.styleType)
	}
	if k.stylePreset != "" {
		f.field("style_preset", k.stylePreset)
	}
	if op != providers.OpGenerate {
		addImage(f, "image", req.Images[0], "image")
	}
	if op == providers.OpEdit {
		mask, err := convertMask(req, k)
		if err != nil {
			return nil, err
		}
		f.fileField("mask", "mask.png", "image/png", mask)
	}
	for i, im := range k.styleRefs {
		addImage(f, "style_reference_images", im, "style-reference-"+strconv.Itoa(i+1))
	}
	return &call{op: op, path: p, form: f}, nil
}

// addCommonFields adds num_images and seed as flat form fields.
func addCommonFields(f *form, req *providers.Request) {
	f.field("num_images", strconv.Itoa(numImages(req)))
	if req.Seed != nil {
		f.field("seed", strconv.FormatInt(*req.Seed, 10))
	}
}

// addImage adds an image file part with a safe filename and a content type.
func addImage(f *form, name string, im providers.Image, base string) {
	ct := im.ContentType
	if ct == "" {
		ct = http.DetectContentType(im.Data)
	}
	filename := path.Base(strings.ReplaceAll(im.Filename, `\`, "/"))
	if filename == "." || filename == "/" || filename == "" {
		ext := ".png"
		switch ct {
		case "image/jpeg":
			ext = ".jpg"
		case "image/webp":
			ext = ".webp"
		}
		filename = base + ext
	}
	f.fileField(name, filename, ct, im.Data)
}

// convertMask turns the request's mask into Ideogram's black-and-white mask (black = change) of
// the source image's exact size, with internal/imaging: from OpenAI's convention (fully
// transparent = change) by default, or from a mask already black-and-white with mask_format "bw".
func convertMask(req *providers.Request, k knobs) ([]byte, error) {
	if req.Mask == nil || len(req.Mask.Data) == 0 {
		return nil, invalid("mask", "edit needs a mask")
	}
	src := req.Images[0]
	w, h := src.Width, src.Height
	if w <= 0 || h <= 0 {
		info, err := imaging.Inspect(src.Data, 0)
		if err != nil {
			return nil, imageError("image", err)
		}
		w, h = info.Width, info.Height
	}
	var out []byte
	var err error
	if k.maskFormat == "bw" {
		out, _, err = imaging.NormalizeBlackWhiteMask(req.Mask.Data, w, h, 0)
	} else {
		out, _, err = imaging.MaskToBlackWhite(req.Mask.Data, w, h, 0)
	}
	switch {
	case errors.Is(err, imaging.ErrMaskEmpty) && k.maskFormat == "bw":
		return nil, invalid("mask", "the mask is all white, so it marks nothing to change (with mask_format=bw, black marks the area to change)")
	case errors.Is(err, imaging.ErrMaskEmpty):
		return nil, invalid("mask", "the mask has no fully transparent pixel, so it marks nothing to change "+
			"(transparent marks the area to change; send mask_format=bw for a black-and-white mask)")
	case errors.Is(err, imaging.ErrMaskSize):
		return nil, invalid("mask", "the mask must have the same size as the image (%dx%d)", w, h)
	case err != nil:
		return nil, imageError("mask", err)
	}
	return out, nil
}

// imageError reports an input image internal/imaging refused; its messages are client-safe.
func imageError(param string, err error) *providers.Error {
	e := &providers.Error{Kind: providers.KindInvalidRequest, Param: param, Provider: Name, Err: err}
	switch {
	case errors.Is(err, imaging.ErrTooManyPixels):
		e.Kind, e.Message = providers.KindTooLarge, "the "+param+" has too many pixels"
	case errors.Is(err, imaging.ErrNotImage):
		e.Message = "the " + param + " is not a valid PNG, JPEG, WebP or GIF image"
	default:
		e.Message = "the " + param + " could not be read"
	}
	return e
}

// wireResponse is Ideogram's answer to every image operation (legacy and 3.0 share it).
type wireResponse struct {
	Created json.RawMessage `json:"created"`
	Data    []wireImage     `json:"data"`
}

type wireImage struct {
	Prompt             string  `json:"prompt"`
	Resolution         string  `json:"resolution"`
	UpscaledResolution string  `json:"upscaled_resolution"`
	IsImageSafe        *bool   `json:"is_image_safe"`
	Seed               *int64  `json:"seed"`
	URL                *string `json:"url"`
	StyleType          string  `json:"style_type"`
}

// describeResponse is the answer of /describe.
type describeResponse struct {
	Descriptions []struct {
		Text string `json:"text"`
	} `json:"descriptions"`
}

func badResponse(format string, args ...any) *providers.Error {
	return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: Name,
		Message: "the provider's answer could not be understood", Err: fmt.Errorf(format, args...)}
}

// decodeImages translates an image answer. Items with is_image_safe=false carry no image: they are
// skipped and counted in Withheld; when every item is withheld the answer is a content-policy
// error. now dates URLs that carry no exp parameter.
func decodeImages(body []byte, now time.Time) (*providers.Result, error) {
	var wr wireResponse
	if err := json.Unmarshal(body, &wr); err != nil {
		return nil, badResponse("ideogram: decode response: %w", err)
	}
	if len(wr.Data) == 0 {
		return nil, badResponse("ideogram: the response has no data items")
	}
	res := &providers.Result{Created: parseCreated(wr.Created)}
	for i, d := range wr.Data {
		if d.IsImageSafe != nil && !*d.IsImageSafe {
			res.Withheld++
			continue
		}
		if d.URL == nil || *d.URL == "" {
			return nil, badResponse("ideogram: data[%d] is marked safe but has no url", i)
		}
		u, err := url.Parse(*d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, badResponse("ideogram: data[%d].url is not an absolute http(s) URL", i)
		}
		out := providers.Output{URL: *d.URL, Expires: urlExpiry(u, now), RevisedPrompt: d.Prompt, Seed: d.Seed}
		size := d.Resolution
		if d.UpscaledResolution != "" {
			size = d.UpscaledResolution
		}
		if s, err := providers.ParseSize(size); err == nil {
			out.Width, out.Height = s.W, s.H
		}
		res.Images = append(res.Images, out)
	}
	if len(res.Images) == 0 {
		return nil, &providers.Error{Kind: providers.KindContentPolicy, Provider: Name,
			Message: fmt.Sprintf("the provider's safety check withheld every image (%d)", res.Withheld)}
	}
	return res, nil
}

// parseCreated reads created: an RFC 3339 string (Ideogram's form, with "Z" or "+00:00"), a string
// without a zone (taken as UTC), or Unix seconds. Anything else is zero ("now").
func parseCreated(raw json.RawMessage) time.Time {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err == nil && n > 0 {
		return time.Unix(n, 0).UTC()
	}
	return time.Time{}
}

// urlExpiry reads the exp parameter of a signed Ideogram URL (Unix seconds) when it is plausible,
// and otherwise assumes URLLifetime from now.
func urlExpiry(u *url.URL, now time.Time) time.Time {
	if v := u.Query().Get("exp"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			t := time.Unix(n, 0).UTC()
			if t.After(now.Add(-time.Minute)) && t.Before(now.Add(30*24*time.Hour)) {
				return t
			}
		}
	}
	return now.Add(URLLifetime).UTC()
}

// decodeDescribe translates a describe answer.
func decodeDescribe(body []byte) (*providers.Result, error) {
	var dr describeResponse
	if err := json.Unmarshal(body, &dr); err != nil {
		return nil, badResponse("ideogram: decode describe response: %w", err)
	}
	res := &providers.Result{}
	for _, d := range dr.Descriptions {
		if t := strings.TrimSpace(d.Text); t != "" {
			res.Descriptions = append(res.Descriptions, t)
		}
	}
	if len(res.Descriptions) == 0 {
		return nil, badResponse("ideogram: the describe response has no descriptions")
	}
	return res, nil
}
