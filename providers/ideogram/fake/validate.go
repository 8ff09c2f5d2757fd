package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // inputs may be JPEG
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	_ "golang.org/x/image/webp" // and WebP
)

// maxImageBytes is Ideogram's limit per uploaded image (PROVIDERS.md §2.2/§2.3).
const maxImageBytes = 10 << 20

const maxSeed = 2147483647

var (
	hexColor  = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	styleCode = regexp.MustCompile(`^[0-9a-fA-F]{8}$`)
)

// fields reads request parameters from a JSON object (image_request, or a JSON 3.0 generate) or
// from multipart text fields, with the types each source must carry.
type fields struct {
	json   bool
	raw    map[string]json.RawMessage
	vals   map[string][]string
	prefix string // "image_request." in messages about image_request members
}

func (fs *fields) keys() []string {
	var ks []string
	if fs.json {
		for k := range fs.raw {
			ks = append(ks, k)
		}
	} else {
		for k := range fs.vals {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func (fs *fields) has(name string) bool {
	if fs.json {
		raw, ok := fs.raw[name]
		return ok && string(raw) != "null"
	}
	_, ok := fs.vals[name]
	return ok
}

// str reads a string field.
func (fs *fields) str(name string) (string, *apiError) {
	if !fs.has(name) {
		return "", nil
	}
	if fs.json {
		var s string
		if err := json.Unmarshal(fs.raw[name], &s); err != nil {
			return "", badRequest("%s%s: expected a string", fs.prefix, name)
		}
		return s, nil
	}
	vs := fs.vals[name]
	if len(vs) != 1 {
		return "", badRequest("%s: expected one value, got %d", name, len(vs))
	}
	return vs[0], nil
}

// integer reads an integer field within [lo, hi].
func (fs *fields) integer(name string, lo, hi int64) (*int64, *apiError) {
	if !fs.has(name) {
		return nil, nil
	}
	var v int64
	if fs.json {
		if err := json.Unmarshal(fs.raw[name], &v); err != nil {
			return nil, badRequest("%s%s: expected an integer", fs.prefix, name)
		}
	} else {
		s, e := fs.str(name)
		if e != nil {
			return nil, e
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, badRequest("%s: %q is not an integer", name, s)
		}
		v = n
	}
	if v < lo || v > hi {
		return nil, badRequest("%s%s: %d is not between %d and %d", fs.prefix, name, v, lo, hi)
	}
	return &v, nil
}

// enum reads a string field that must be in allowed.
func (fs *fields) enum(name string, allowed map[string]bool) (string, *apiError) {
	s, e := fs.str(name)
	if e != nil || s == "" && !fs.has(name) {
		return s, e
	}
	if !allowed[s] {
		return "", badRequest("%s%s: '%s' is not one of the allowed values", fs.prefix, name, s)
	}
	return s, nil
}

// list reads a repeated multipart field or a JSON array of strings.
func (fs *fields) list(name string) ([]string, *apiError) {
	if !fs.has(name) {
		return nil, nil
	}
	if fs.json {
		var vs []string
		if err := json.Unmarshal(fs.raw[name], &vs); err != nil {
			return nil, badRequest("%s: expected an array of strings", name)
		}
		return vs, nil
	}
	return fs.vals[name], nil
}

// palette checks color_palette: a JSON object (inline in JSON, as text in multipart).
func (fs *fields) palette(name string) *apiError {
	if !fs.has(name) {
		return nil
	}
	var raw []byte
	if fs.json {
		raw = fs.raw[name]
	} else {
		s, e := fs.str(name)
		if e != nil {
			return e
		}
		raw = []byte(s)
	}
	var p struct {
		Name    *string `json:"name"`
		Members []struct {
			ColorHex    string   `json:"color_hex"`
			ColorWeight *float64 `json:"color_weight"`
		} `json:"members"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return badRequest("%s%s: not a valid color palette object", fs.prefix, name)
	}
	switch {
	case p.Name != nil && p.Members != nil:
		return badRequest("%s%s: give a name or members, not both", fs.prefix, name)
	case p.Name != nil:
		if !paletteNames[*p.Name] {
			return badRequest("%s%s: '%s' is not a color palette preset", fs.prefix, name, *p.Name)
		}
	case len(p.Members) == 0 || len(p.Members) > 8:
		return badRequest("%s%s: members must have 1 to 8 entries", fs.prefix, name)
	}
	for _, m := range p.Members {
		if !hexColor.MatchString(m.ColorHex) {
			return badRequest("%s%s: color_hex '%s' is invalid", fs.prefix, name, m.ColorHex)
		}
		if m.ColorWeight != nil && (*m.ColorWeight < 0.05 || *m.ColorWeight > 1) {
			return badRequest("%s%s: color_weight must be between 0.05 and 1", fs.prefix, name)
		}
	}
	return nil
}

// only refuses any field not in allowed.
func (fs *fields) only(allowed ...string) *apiError {
	for _, k := range fs.keys() {
		if !slices.Contains(allowed, k) {
			return badRequest("%s%s: unknown field", fs.prefix, k)
		}
	}
	return nil
}

// upload is one uploaded image.
type upload struct {
	data []byte
	w, h int
}

// mp is a parsed multipart request.
type mp struct {
	form *multipart.Form
}

// parseMultipart parses a multipart/form-data body, refusing any other content type.
func parseMultipart(r *http.Request, body []byte) (*mp, *apiError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, badRequest("Content-Type must be multipart/form-data")
	}
	form, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(maxBody)
	if err != nil {
		return nil, badRequest("the multipart body could not be parsed")
	}
	return &mp{form: form}, nil
}

// check refuses unknown parts and parts of the wrong kind (a file where a value belongs).
func (m *mp) check(values, files []string) *apiError {
	for k := range m.form.Value {
		if !slices.Contains(values, k) {
			if slices.Contains(files, k) {
				return badRequest("%s: expected a file", k)
			}
			return badRequest("%s: unknown field", k)
		}
	}
	for k := range m.form.File {
		if !slices.Contains(files, k) {
			if slices.Contains(values, k) {
				return badRequest("%s: expected a value, got a file", k)
			}
			return badRequest("%s: unknown field", k)
		}
	}
	return nil
}

func (m *mp) fields() *fields { return &fields{vals: m.form.Value} }

// images reads every file of a part, decoding each image's header.
func (m *mp) images(name string) ([]upload, *apiError) {
	var out []upload
	for _, fh := range m.form.File[name] {
		f, err := fh.Open()
		if err != nil {
			return nil, badRequest("%s: unreadable", name)
		}
		data, err := io.ReadAll(io.LimitReader(f, maxImageBytes+1))
		f.Close()
		if err != nil {
			return nil, badRequest("%s: unreadable", name)
		}
		if len(data) > maxImageBytes {
			return nil, badRequest("%s: images may be at most 10MB", name)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || (format != "png" && format != "jpeg" && format != "webp") {
			return nil, badRequest("%s: only JPEG, PNG and WebP images are supported", name)
		}
		out = append(out, upload{data: data, w: cfg.Width, h: cfg.Height})
	}
	return out, nil
}

// image reads exactly one image from a part.
func (m *mp) image(name string, required bool) (*upload, *apiError) {
	ims, e := m.images(name)
	if e != nil {
		return nil, e
	}
	switch {
	case len(ims) == 0 && required:
		return nil, badRequest("%s: required", name)
	case len(ims) == 0:
		return nil, nil
	case len(ims) > 1:
		return nil, badRequest("%s: expected one file, got %d", name, len(ims))
	}
	return &ims[0], nil
}

// checkMask applies seed 002's mask rules: black and white pixels only, exactly the image's size,
// not all white.
func checkMask(mask, img *upload) *apiError {
	if mask.w != img.w || mask.h != img.h {
		return badRequest("mask: must have the same dimensions as the image (%dx%d), got %dx%d", img.w, img.h, mask.w, mask.h)
	}
	m, _, err := image.Decode(bytes.NewReader(mask.data))
	if err != nil {
		return badRequest("mask: could not be decoded")
	}
	b := m.Bounds()
	black := false
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			switch {
			case c.R == 0 && c.G == 0 && c.B == 0:
				black = true
			case c.R == 0xff && c.G == 0xff && c.B == 0xff:
			default:
				return badRequest("mask: must contain only black and white pixels")
			}
		}
	}
	if !black {
		return badRequest("mask: must not be all white")
	}
	return nil
}

func parseSize(s string) [2]int {
	var w, h int
	fmt.Sscanf(strings.NewReplacer("RESOLUTION_", "", "_", "x").Replace(s), "%dx%d", &w, &h)
	return [2]int{w, h}
}

// aspectSizes are the sizes the fake renders for each aspect ratio (all in both resolution lists
// where the ratio exists in both).
var aspectSizes = map[string][2]int{
	"1x1": {1024, 1024}, "16x9": {1312, 736}, "9x16": {736, 1312}, "16x10": {1280, 800}, "10x16": {800, 1280},
	"3x2": {1248, 832}, "2x3": {832, 1248}, "4x3": {1152, 864}, "3x4": {864, 1152}, "1x3": {512, 1536},
	"3x1": {1536, 512}, "1x2": {704, 1408}, "2x1": {1408, 704}, "4x5": {896, 1120}, "5x4": {1120, 896},
}

func aspectSize(ratio string) [2]int {
	r := strings.Replace(strings.TrimPrefix(ratio, "ASPECT_"), "_", "x", 1)
	if s, ok := aspectSizes[r]; ok {
		return s
	}
	return [2]int{1024, 1024}
}

func isV1(model string) bool { return model == "V_1" || model == "V_1_TURBO" }

// imageRequest validates a legacy ImageRequest (generate, or remix with image_weight).
func imageRequest(fs *fields, remix bool) (*answer, *apiError) {
	allowed := []string{"prompt", "aspect_ratio", "resolution", "model", "magic_prompt_option", "magic_prompt_version",
		"seed", "style_type", "negative_prompt", "num_images", "color_palette"}
	if remix {
		allowed = append(allowed, "image_weight")
	}
	if e := fs.only(allowed...); e != nil {
		return nil, e
	}
	a := &answer{}
	var e *apiError
	if a.prompt, e = fs.str("prompt"); e != nil {
		return nil, e
	}
	if strings.TrimSpace(a.prompt) == "" {
		return nil, badRequest("%sprompt: required", fs.prefix)
	}
	model := "V_2"
	if fs.has("model") {
		if model, e = fs.enum("model", legacyModels); e != nil {
			return nil, e
		}
	}
	aspect, e := fs.enum("aspect_ratio", legacyAspectRatios)
	if e != nil {
		return nil, e
	}
	res, e := fs.enum("resolution", legacyResolutions)
	if e != nil {
		return nil, e
	}
	switch {
	case aspect != "" && res != "":
		return nil, badRequest("%sresolution: cannot be used together with aspect_ratio", fs.prefix)
	case res != "" && isV1(model):
		return nil, badRequest("%sresolution: only supported by model V_2 and newer", fs.prefix)
	case res != "":
		a.size = parseSize(res)
	default:
		a.size = aspectSize(aspect)
	}
	if _, e = fs.enum("magic_prompt_option", magicPrompts); e != nil {
		return nil, e
	}
	if _, e = fs.enum("magic_prompt_version", magicPromptVersions); e != nil {
		return nil, e
	}
	if a.seed, e = fs.integer("seed", 0, maxSeed); e != nil {
		return nil, e
	}
	if a.n, e = numImages(fs); e != nil {
		return nil, e
	}
	if a.styleType, e = fs.enum("style_type", legacyStyleTypes); e != nil {
		return nil, e
	}
	if a.styleType != "" && isV1(model) {
		return nil, badRequest("%sstyle_type: not supported by model %s", fs.prefix, model)
	}
	if fs.has("negative_prompt") && (model == "V_2A" || model == "V_2A_TURBO") {
		return nil, badRequest("%snegative_prompt: not supported by model %s", fs.prefix, model)
	}
	if _, e = fs.str("negative_prompt"); e != nil {
		return nil, e
	}
	if fs.has("color_palette") && (isV1(model) || model == "V_2A" || model == "V_2A_TURBO") {
		return nil, badRequest("%scolor_palette: not supported by model %s", fs.prefix, model)
	}
	if e = fs.palette("color_palette"); e != nil {
		return nil, e
	}
	if _, e = fs.integer("image_weight", 1, 100); e != nil {
		return nil, e
	}
	return a, nil
}

func numImages(fs *fields) (int, *apiError) {
	n, e := fs.integer("num_images", 1, 8)
	if e != nil || n == nil {
		return 1, e
	}
	return int(*n), nil
}

// jsonObject decodes a JSON object into fields.
func jsonObject(b []byte, prefix string) (*fields, *apiError) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, badRequest("%s: expected a JSON object", strings.TrimSuffix(prefix, "."))
	}
	return &fields{json: true, raw: raw, prefix: prefix}, nil
}

// legacyGenerate: POST /generate, JSON {"image_request": {...}}.
func (f *Fake) legacyGenerate(r *http.Request, body []byte) (*answer, *apiError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, badRequest("Content-Type must be application/json")
	}
	top, e := jsonObject(body, "")
	if e != nil {
		return nil, e
	}
	if e := top.only("image_request"); e != nil {
		return nil, e
	}
	raw, ok := top.raw["image_request"]
	if !ok {
		return nil, badRequest("image_request: required")
	}
	ir, e := jsonObject(raw, "image_request.")
	if e != nil {
		return nil, e
	}
	return imageRequest(ir, false)
}

// legacyRemix: POST /remix, multipart image_request (JSON text) + image_file.
func (f *Fake) legacyRemix(r *http.Request, body []byte) (*answer, *apiError) {
	m, e := parseMultipart(r, body)
	if e != nil {
		return nil, e
	}
	if e := m.check([]string{"image_request"}, []string{"image_file"}); e != nil {
		return nil, e
	}
	s, e := m.fields().str("image_request")
	if e != nil {
		return nil, e
	}
	if s == "" {
		return nil, badRequest("image_request: required")
	}
	ir, e := jsonObject([]byte(s), "image_request.")
	if e != nil {
		return nil, e
	}
	a, e := imageRequest(ir, true)
	if e != nil {
		return nil, e
	}
	if _, e := m.image("image_file", true); e != nil {
		return nil, e
	}
	return a, nil
}

// legacyEdit: POST /edit, flat multipart, V_2 and V_2_TURBO only.
func (f *Fake) legacyEdit(r *http.Request, body []byte) (*answer, *apiError) {
	m, e := parseMultipart(r, body)
	if e != nil {
		return nil, e
	}
	if e := m.check([]string{"prompt", "model", "magic_prompt_option", "num_images", "seed", "style_type"},
		[]string{"image_file", "mask"}); e != nil {
		return nil, e
	}
	fs := m.fields()
	a := &answer{}
	if a.prompt, e = fs.str("prompt"); e != nil {
		return nil, e
	}
	if strings.TrimSpace(a.prompt) == "" {
		return nil, badRequest("prompt: required")
	}
	model, e := fs.str("model")
	if e != nil {
		return nil, e
	}
	if model != "V_2" && model != "V_2_TURBO" {
		return nil, badRequest("model: edit is only supported for V_2 and V_2_TURBO, got '%s'", model)
	}
	if _, e = fs.enum("magic_prompt_option", magicPrompts); e != nil {
		return nil, e
	}
	if a.n, e = numImages(fs); e != nil {
		return nil, e
	}
	if a.seed, e = fs.integer("seed", 0, maxSeed); e != nil {
		return nil, e
	}
	if a.styleType, e = fs.enum("style_type", legacyStyleTypes); e != nil {
		return nil, e
	}
	img, e := m.image("image_file", true)
	if e != nil {
		return nil, e
	}
	mask, e := m.image("mask", true)
	if e != nil {
		return nil, e
	}
	if e := checkMask(mask, img); e != nil {
		return nil, e
	}
	a.size = [2]int{img.w, img.h}
	return a, nil
}

// legacyUpscale: POST /upscale, multipart image_request (JSON text, may be {}) + image_file.
func (f *Fake) legacyUpscale(r *http.Request, body []byte) (*answer, *apiError) {
	m, e := parseMultipart(r, body)
	if e != nil {
		return nil, e
	}
	if e := m.check([]string{"image_request"}, []string{"image_file"}); e != nil {
		return nil, e
	}
	s, e := m.fields().str("image_request")
	if e != nil {
		return nil, e
	}
	if !m.fields().has("image_request") {
		return nil, badRequest("image_request: required")
	}
	ir, e := jsonObject([]byte(s), "image_request.")
	if e != nil {
		return nil, e
	}
	if e := ir.only("prompt", "resemblance", "detail", "magic_prompt_option", "magic_prompt_version", "num_images", "seed"); e != nil {
		return nil, e
	}
	a := &answer{}
	if a.prompt, e = ir.str("prompt"); e != nil {
		return nil, e
	}
	if _, e = ir.integer("resemblance", 1, 100); e != nil {
		return nil, e
	}
	if _, e = ir.integer("detail", 1, 100); e != nil {
		return nil, e
	}
	if _, e = ir.enum("magic_prompt_option", magicPrompts); e != nil {
		return nil, e
	}
	if _, e = ir.enum("magic_prompt_version", magicPromptVersions); e != nil {
		return nil, e
	}
	if a.n, e = numImages(ir); e != nil {
		return nil, e
	}
	if a.seed, e = ir.integer("seed", 0, maxSeed); e != nil {
		return nil, e
	}
	img, e := m.image("image_file", true)
	if e != nil {
		return nil, e
	}
	a.upscaledFrom = [2]int{img.w, img.h}
	a.size = [2]int{2 * img.w, 2 * img.h}
	return a, nil
}

// describe: POST /describe, multipart image_file (+ describe_model_version).
func (f *Fake) describe(r *http.Request, body []byte) (*answer, *apiError) {
	m, e := parseMultipart(r, body)
	if e != nil {
		return nil, e
	}
	if e := m.check([]string{"describe_model_version"}, []string{"image_file"}); e != nil {
		return nil, e
	}
	version, e := m.fields().enum("describe_model_version", describeModelVersions)
	if e != nil {
		return nil, e
	}
	if version == "" {
		version = "V_3"
	}
	img, e := m.image("image_file", true)
	if e != nil {
		return nil, e
	}
	return &answer{descriptions: []string{
		fmt.Sprintf("A %dx%d image with bold horizontal stripes in two contrasting colors (described by %s).", img.w, img.h, version),
	}}, nil
}

// legacyReframe: POST /reframe, flat multipart; resolution and model required.
func (f *Fake) legacyReframe(r *http.Request, body []byte) (*answer, *apiError) {
	m, e := parseMultipart(r, body)
	if e != nil {
		return nil, e
	}
	if e := m.check([]string{"resolution", "model", "num_images", "seed", "style_type"}, []string{"image_file"}); e != nil {
		return nil, e
	}
	fs := m.fields()
	a := &answer{}
	model, e := fs.enum("model", legacyModels)
	if e != nil {
		return nil, e
	}
	if model == "" {
		return nil, badRequest("model: required")
	}
	res, e := fs.enum("resolution", legacyResolutions)
	if e != nil {
		return nil, e
	}
	if res == "" {
		return nil, badRequest("resolution: required")
	}
	if isV1(model) {
		return nil, badRequest("resolution: only supported by model V_2 and newer")
	}
	if a.n, e = numImages(fs); e != nil {
		return nil, e
	}
	if a.seed, e = fs.integer("seed", 0, maxSeed); e != nil {
		return nil, e
	}
	if a.styleType, e = fs.enum("style_type", legacyStyleTypes); e != nil {
		return nil, e
	}
	if _, e := m.image("image_file", true); e != nil {
		return nil, e
	}
	a.size = parseSize(res)
	return a, nil
}

// v3Spec is the field set of one 3.0 endpoint (PROVIDERS.md §2.3, official spec).
type v3Spec struct {
	values  []string
	files   []string
	lenient []string // sent by seed 002's examples but not in the schema: accepted and ignored
	prompt  bool     // prompt required
	image   bool     // image required
	mask    bool     // mask required
	resReq  bool     // resolution required
	sizeIn  bool     // the output keeps the input image's size
}

var (
	v3GenerateValues = []string{"prompt", "seed", "resolution", "aspect_ratio", "rendering_speed", "magic_prompt",
		"negative_prompt", "num_images", "color_palette", "style_codes", "style_type", "style_preset", "custom_model_uri"}
	v3RefFiles = []string{"style_reference_images", "character_reference_images", "character_reference_images_mask"}

	specGenerate = v3Spec{values: v3GenerateValues, files: v3RefFiles, prompt: true}
	specRemix    = v3Spec{values: append(slices.Clone(v3GenerateValues), "image_weight"),
		files: append([]string{"image"}, v3RefFiles...), prompt: true, image: true}
	specEdit = v3Spec{values: []string{"prompt", "magic_prompt", "num_images", "seed", "rendering_speed", "style_type",
		"style_preset", "custom_model_uri", "color_palette", "style_codes"},
		files: append([]string{"image", "mask"}, v3RefFiles...), lenient: []string{"aspect_ratio", "negative_prompt"},
		prompt: true, image: true, mask: true, sizeIn: true}
	specReframe = v3Spec{values: []string{"resolution", "num_images", "seed", "rendering_speed", "style_preset",
		"color_palette", "style_codes"}, files: []string{"image", "style_reference_images"}, image: true, resReq: true}
	specReplaceBG = v3Spec{values: []string{"prompt", "magic_prompt", "num_images", "seed", "rendering_speed",
		"style_preset", "color_palette", "style_codes"}, files: []string{"image", "style_reference_images"},
		lenient: []string{"style_type"}, prompt: true, image: true, sizeIn: true}
)

func (f *Fake) v3Generate(r *http.Request, body []byte) (*answer, *apiError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		// The newest spec also takes JSON for generate (no files then).
		fs, e := jsonObject(body, "")
		if e != nil {
			return nil, e
		}
		if e := fs.only(specGenerate.values...); e != nil {
			return nil, e
		}
		return v3Validate(specGenerate, fs, nil)
	}
	return f.v3(r, body, specGenerate)
}

func (f *Fake) v3Remix(r *http.Request, body []byte) (*answer, *apiError) {
	return f.v3(r, body, specRemix)
}

func (f *Fake) v3Edit(r *http.Request, body []byte) (*answer, *apiError) {
	return f.v3(r, body, specEdit)
}

func (f *Fake) v3Reframe(r *http.Request, body []byte) (*answer, *apiError) {
	return f.v3(r, body, specReframe)
}

func (f *Fake) v3ReplaceBackground(r *http.Request, body []byte) (*answer, *apiError) {
	return f.v3(r, body, specReplaceBG)
}

func (f *Fake) v3(r *http.Request, body []byte, spec v3Spec) (*answer, *apiError) {
	m, e := parseMultipart(r, body)
	if e != nil {
		return nil, e
	}
	if e := m.check(append(slices.Clone(spec.values), spec.lenient...), spec.files); e != nil {
		return nil, e
	}
	return v3Validate(spec, m.fields(), m)
}

// v3Validate checks the fields of a 3.0 call; m is nil for a JSON generate.
func v3Validate(spec v3Spec, fs *fields, m *mp) (*answer, *apiError) {
	a := &answer{}
	var e *apiError
	if a.prompt, e = fs.str("prompt"); e != nil {
		return nil, e
	}
	if spec.prompt && strings.TrimSpace(a.prompt) == "" {
		return nil, badRequest("prompt: required")
	}
	if a.seed, e = fs.integer("seed", 0, maxSeed); e != nil {
		return nil, e
	}
	res, e := fs.enum("resolution", v3Resolutions)
	if e != nil {
		return nil, e
	}
	aspect := ""
	if slices.Contains(spec.values, "aspect_ratio") {
		if aspect, e = fs.enum("aspect_ratio", v3AspectRatios); e != nil {
			return nil, e
		}
	}
	if res != "" && aspect != "" {
		return nil, badRequest("resolution: cannot be used together with aspect_ratio")
	}
	if spec.resReq && res == "" {
		return nil, badRequest("resolution: required")
	}
	if _, e = fs.enum("rendering_speed", renderingSpeeds); e != nil {
		return nil, e
	}
	if _, e = fs.enum("magic_prompt", magicPrompts); e != nil {
		return nil, e
	}
	if a.n, e = numImages(fs); e != nil {
		return nil, e
	}
	if e = fs.palette("color_palette"); e != nil {
		return nil, e
	}
	codes, e := fs.list("style_codes")
	if e != nil {
		return nil, e
	}
	for _, c := range codes {
		if !styleCode.MatchString(c) {
			return nil, badRequest("style_codes: '%s' is not an 8-digit hexadecimal code", c)
		}
	}
	if slices.Contains(spec.values, "style_type") {
		if a.styleType, e = fs.enum("style_type", v3StyleTypes); e != nil {
			return nil, e
		}
	}
	if len(codes) > 0 && a.styleType != "" {
		return nil, badRequest("style_codes: cannot be used together with style_type")
	}
	if _, e = fs.enum("style_preset", v3StylePresets); e != nil {
		return nil, e
	}
	if _, e = fs.integer("image_weight", 1, 100); e != nil {
		return nil, e
	}
	if _, e = fs.str("negative_prompt"); e != nil {
		return nil, e
	}
	var img *upload
	if m != nil {
		refs, e := m.images("style_reference_images")
		if e != nil {
			return nil, e
		}
		total := 0
		for _, r := range refs {
			total += len(r.data)
		}
		if total > maxImageBytes {
			return nil, badRequest("style_reference_images: may total at most 10MB")
		}
		if len(refs) > 0 && len(codes) > 0 {
			return nil, badRequest("style_codes: cannot be used together with style_reference_images")
		}
		if img, e = m.image("image", spec.image); e != nil {
			return nil, e
		}
		if spec.mask {
			mask, e := m.image("mask", true)
			if e != nil {
				return nil, e
			}
			if e := checkMask(mask, img); e != nil {
				return nil, e
			}
		}
	}
	switch {
	case spec.sizeIn:
		a.size = [2]int{img.w, img.h}
	case res != "":
		a.size = parseSize(res)
	default:
		a.size = aspectSize(aspect)
	}
	return a, nil
}
