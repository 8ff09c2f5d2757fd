package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	_ "image/jpeg" // DecodeConfig of uploaded JPEGs
	_ "image/png"  // DecodeConfig of uploaded PNGs
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"

	_ "golang.org/x/image/webp" // DecodeConfig of uploaded WebPs
)

type family int

const (
	dallE2 family = iota
	dallE3
	gptImage
)

// spec is one model's rules, after PROVIDERS.md §5.1–§5.3.
type spec struct {
	fam           family
	sizes         []string
	qualities     []string
	styles        []string
	maxN          int64
	maxPrompt     int
	edits         bool
	variations    bool
	inputFidelity bool
}

var gptSizes = []string{"1024x1024", "1536x1024", "1024x1536", "auto"}

var specs = map[string]*spec{
	"dall-e-2": {fam: dallE2, sizes: []string{"256x256", "512x512", "1024x1024"}, qualities: []string{"standard", "auto"},
		maxN: 10, maxPrompt: 1000, edits: true, variations: true},
	"dall-e-3": {fam: dallE3, sizes: []string{"1024x1024", "1792x1024", "1024x1792"}, qualities: []string{"standard", "hd", "auto"},
		styles: []string{"vivid", "natural"}, maxN: 1, maxPrompt: 4000},
	"gpt-image-1": {fam: gptImage, sizes: gptSizes, qualities: []string{"low", "medium", "high", "auto"},
		maxN: 10, maxPrompt: 32000, edits: true, inputFidelity: true},
	"gpt-image-1-mini": {fam: gptImage, sizes: gptSizes, qualities: []string{"low", "medium", "high", "auto"},
		maxN: 10, maxPrompt: 32000, edits: true},
}

// modelsFor lists the models that take an operation, for error messages.
func modelsFor(ok func(*spec) bool) []string {
	var out []string
	for _, name := range []string{"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini"} {
		if ok(specs[name]) {
			out = append(out, name)
		}
	}
	return out
}

// gptOnly are the fields only gpt-image models take; any of them makes gpt-image-1 the default model.
var gptOnly = []string{"background", "moderation", "output_format", "output_compression", "stream", "partial_images", "input_fidelity"}

// The fields each endpoint knows.
var (
	generationFields = []string{"prompt", "model", "n", "size", "quality", "style", "response_format", "background",
		"moderation", "output_format", "output_compression", "user", "stream", "partial_images"}
	editFields = []string{"prompt", "model", "n", "size", "quality", "response_format", "background", "moderation",
		"output_format", "output_compression", "input_fidelity", "user", "stream", "partial_images"}
	variationFields = []string{"model", "n", "size", "response_format", "user"}
)

// params is a validated request.
type params struct {
	op             string
	model          string
	sp             *spec
	prompt         string
	n              int
	w, h           int // 0: auto / the model's default
	quality        string
	style          string
	responseFormat string
	background     string
	outputFormat   string
	compression    int
	moderation     string
	inputFidelity  string
	// stream asks for server-sent events; partials is partial_images (0–3, only with stream).
	stream   bool
	partials int
}

func enum(fs fields, name string, allowed []string) (string, *apiError) {
	v, ok, e := fs.str(name)
	if e != nil || !ok {
		return "", e
	}
	if !slices.Contains(allowed, v) {
		return "", badValue(name, v, allowed)
	}
	return v, nil
}

// readParams validates the parameters of op ("generations", "edits" or "variations") the way
// the real API does, in its order: unknown fields, model, prompt, then the rest.
func readParams(fs fields, op string) (*params, *apiError) {
	known := map[string][]string{"generations": generationFields, "edits": editFields, "variations": variationFields}[op]
	if e := checkKnown(fs, known...); e != nil {
		return nil, e
	}
	p := &params{op: op, n: 1}
	model, ok, e := fs.str("model")
	if e != nil {
		return nil, e
	}
	if !ok || model == "" {
		model = "dall-e-2"
		if op != "variations" && slices.ContainsFunc(gptOnly, fs.has) {
			model = "gpt-image-1"
		}
	}
	p.model, p.sp = model, specs[model]
	switch {
	case p.sp == nil:
		return nil, badValue("model", model, modelsFor(func(*spec) bool { return true }))
	case op == "edits" && !p.sp.edits:
		return nil, badValue("model", model, modelsFor(func(s *spec) bool { return s.edits }))
	case op == "variations" && !p.sp.variations:
		return nil, badValue("model", model, modelsFor(func(s *spec) bool { return s.variations }))
	}
	sp := p.sp
	if op != "variations" {
		prompt, ok, e := fs.str("prompt")
		if e != nil {
			return nil, e
		}
		if !ok || prompt == "" {
			return nil, missingParam("prompt")
		}
		if n := len([]rune(prompt)); n > sp.maxPrompt {
			return nil, invalid("prompt", "string_above_max_length",
				"Invalid 'prompt': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", sp.maxPrompt, n)
		}
		p.prompt = prompt
	}
	if n, ok, e := fs.integer("n"); e != nil {
		return nil, e
	} else if ok {
		if e := intRange("n", n, 1, 10); e != nil {
			return nil, e
		}
		if n > sp.maxN {
			return nil, invalid("", "", "You must provide n=1 for this model.")
		}
		p.n = int(n)
	}
	size, e := enum(fs, "size", sp.sizes)
	if e != nil {
		return nil, e
	}
	if size != "" && size != "auto" {
		w, h, _ := strings.Cut(size, "x")
		p.w, _ = strconv.Atoi(w)
		p.h, _ = strconv.Atoi(h)
	}
	if p.quality, e = enum(fs, "quality", sp.qualities); e != nil {
		return nil, e
	}
	if fs.has("style") {
		if len(sp.styles) == 0 {
			return nil, unknownParam("style")
		}
		if p.style, e = enum(fs, "style", sp.styles); e != nil {
			return nil, e
		}
	}
	if fs.has("response_format") {
		if sp.fam == gptImage {
			return nil, unknownParam("response_format") // [CONF: S27]
		}
		if p.responseFormat, e = enum(fs, "response_format", []string{"url", "b64_json"}); e != nil {
			return nil, e
		}
	}
	if sp.fam != gptImage {
		for _, name := range gptOnly {
			if fs.has(name) {
				return nil, unknownParam(name)
			}
		}
		return p, nil
	}
	if p.background, e = enum(fs, "background", []string{"transparent", "opaque", "auto"}); e != nil {
		return nil, e
	}
	if p.outputFormat, e = enum(fs, "output_format", []string{"png", "jpeg", "webp"}); e != nil {
		return nil, e
	}
	if p.moderation, e = enum(fs, "moderation", []string{"low", "auto"}); e != nil {
		return nil, e
	}
	p.compression = 100
	if c, ok, e := fs.integer("output_compression"); e != nil {
		return nil, e
	} else if ok {
		if e := intRange("output_compression", c, 0, 100); e != nil {
			return nil, e
		}
		if c < 100 && (p.outputFormat == "" || p.outputFormat == "png") {
			return nil, invalid("output_compression", "invalid_value", "Compression less than 100 is not supported for PNG output format.")
		}
		p.compression = int(c)
	}
	if p.background == "transparent" && p.outputFormat == "jpeg" {
		return nil, invalid("background", "invalid_value", "Transparent background is not supported for jpeg output format; use png or webp.")
	}
	if fs.has("input_fidelity") {
		if !sp.inputFidelity {
			return nil, invalid("input_fidelity", "invalid_value", "input_fidelity is not supported for model '%s'.", p.model)
		}
		if p.inputFidelity, e = enum(fs, "input_fidelity", []string{"high", "low"}); e != nil {
			return nil, e
		}
	}
	if p.stream, _, e = fs.boolean("stream"); e != nil {
		return nil, e
	}
	if v, ok, e := fs.integer("partial_images"); e != nil {
		return nil, e
	} else if ok {
		if e := intRange("partial_images", v, 0, 3); e != nil {
			return nil, e
		}
		if !p.stream {
			return nil, invalid("partial_images", "invalid_value", "partial_images is only supported when stream is true.")
		}
		p.partials = int(v)
	}
	return p, nil
}

// policyError is the real safety refusal for the model's family ([CONF: S28], [UNCONF: S29]).
func policyError(fam family) *apiError {
	if fam == gptImage {
		return &apiError{status: http.StatusBadRequest, typ: "image_generation_user_error", code: "moderation_blocked",
			message: "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID."}
	}
	return invalid("", "content_policy_violation",
		"Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.")
}

// Response bodies.
type imageData struct {
	URL           string `json:"url,omitempty"`
	B64JSON       string `json:"b64_json,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
}

type tokenDetails struct {
	ImageTokens int `json:"image_tokens"`
	TextTokens  int `json:"text_tokens"`
}

type usage struct {
	InputTokens        int          `json:"input_tokens"`
	InputTokensDetails tokenDetails `json:"input_tokens_details"`
	OutputTokens       int          `json:"output_tokens"`
	TotalTokens        int          `json:"total_tokens"`
}

type imagesResponse struct {
	Created      int64       `json:"created"`
	Data         []imageData `json:"data"`
	Background   string      `json:"background,omitempty"`
	OutputFormat string      `json:"output_format,omitempty"`
	Quality      string      `json:"quality,omitempty"`
	Size         string      `json:"size,omitempty"`
	Usage        *usage      `json:"usage,omitempty"`
}

// outputTokens per image by quality and size: the table in OpenAI's image-generation guide for
// gpt-image-1 (not in PROVIDERS.md; used only to make usage plausible).
func outputTokens(quality string, w, h int) int {
	wide := w != h
	switch quality {
	case "low":
		return map[bool]int{false: 272, true: 408}[wide]
	case "medium":
		return map[bool]int{false: 1056, true: 1584}[wide]
	}
	return map[bool]int{false: 4160, true: 6240}[wide]
}

// respond makes the images for a validated request. inputs distinguish edits and variations of
// different images.
func (f *Fake) respond(c *call, p *params, inputImages int, inputs ...string) (any, *apiError) {
	w, h := p.w, p.h
	if w == 0 {
		w, h = 1024, 1024 // dall-e's default; gpt-image's "auto" picks the square
	}
	resp := &imagesResponse{Created: c.now.Unix()}
	transparent := p.background == "transparent"
	for i := range p.n {
		l := lookFor(w, h, transparent, append([]string{p.op, p.model, p.prompt, p.style, p.quality, strconv.Itoa(i)}, inputs...)...)
		var d imageData
		switch {
		case p.sp.fam == gptImage:
			format := p.outputFormat
			if format == "" {
				format = "png"
			}
			b, err := f.images.encode(format, l, p.compression)
			if err != nil {
				return nil, &apiError{status: 500, typ: "server_error", message: "The server had an error while processing your request."}
			}
			d.B64JSON = base64.StdEncoding.EncodeToString(b)
		case p.responseFormat == "b64_json":
			b, err := f.images.encode("png", l, 0)
			if err != nil {
				return nil, &apiError{status: 500, typ: "server_error", message: "The server had an error while processing your request."}
			}
			d.B64JSON = base64.StdEncoding.EncodeToString(b)
		default:
			d.URL = f.signedURL(c.base, l, c.now)
		}
		if p.sp.fam == dallE3 {
			style := p.style
			if style == "" {
				style = "vivid"
			}
			d.RevisedPrompt = "A " + style + ", detailed illustration of the following scene: " + p.prompt
		}
		resp.Data = append(resp.Data, d)
	}
	if p.sp.fam == gptImage {
		resp.Background = "opaque"
		if transparent {
			resp.Background = "transparent"
		}
		resp.OutputFormat = p.outputFormat
		if resp.OutputFormat == "" {
			resp.OutputFormat = "png"
		}
		resp.Quality = p.quality
		if resp.Quality == "" || resp.Quality == "auto" {
			resp.Quality = "high"
		}
		resp.Size = fmt.Sprintf("%dx%d", w, h)
		text := max(1, len(p.prompt)/4)
		img := 194 * inputImages
		out := outputTokens(resp.Quality, w, h) * p.n
		resp.Usage = &usage{InputTokens: text + img, InputTokensDetails: tokenDetails{ImageTokens: img, TextTokens: text},
			OutputTokens: out, TotalTokens: text + img + out}
	}
	return resp, nil
}

// generations answers POST /v1/images/generations.
func (f *Fake) generations(c *call) (any, *apiError) {
	if mediaType(c.r.Header.Get("Content-Type")) != "application/json" {
		return nil, jsonParseError()
	}
	fs, e := parseJSONFields(c.body)
	if e != nil {
		return nil, e
	}
	p, e := readParams(fs, "generations")
	if e != nil {
		return nil, e
	}
	if strings.Contains(p.prompt, ContentPolicyTrigger) {
		return nil, policyError(p.sp.fam)
	}
	if p.stream {
		return f.streamResponse(c, p, 0)
	}
	return f.respond(c, p, 0)
}

// upload is one file part.
type upload struct {
	field, filename, contentType string
	data                         []byte
}

// readMultipart splits a multipart body into text fields and files ("image" or repeated
// "image[]", and "mask").
func readMultipart(c *call) (formFields, []upload, *upload, *apiError) {
	ct := c.r.Header.Get("Content-Type")
	mt, mp, _ := mime.ParseMediaType(ct)
	if mt != "multipart/form-data" || mp["boundary"] == "" {
		return nil, nil, nil, invalid("", "", "Invalid Content-Type header (%s), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')", mt)
	}
	form := formFields{}
	var images []upload
	var mask *upload
	mr := multipart.NewReader(bytes.NewReader(c.body), mp["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, invalid("", "", "Could not parse multipart form.")
		}
		name, filename := part.FormName(), part.FileName()
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, nil, nil, invalid("", "", "Could not parse multipart form.")
		}
		isFile := filename != "" || part.Header.Get("Content-Type") != ""
		switch {
		case isFile && (name == "image" || name == "image[]"):
			images = append(images, upload{field: name, filename: filename, contentType: part.Header.Get("Content-Type"), data: data})
		case isFile && name == "mask":
			if mask != nil {
				return nil, nil, nil, invalid("mask", "", "Only one mask can be provided.")
			}
			mask = &upload{field: name, filename: filename, contentType: part.Header.Get("Content-Type"), data: data}
		case isFile:
			return nil, nil, nil, unknownParam(name)
		case name == "image" || name == "image[]" || name == "mask":
			return nil, nil, nil, typeError(name, "a file", "a string")
		default:
			form[name] = string(data)
		}
	}
	return form, images, mask, nil
}

// pngInfo reads a PNG's colour mode and whether it has transparency (an alpha channel, or a
// tRNS chunk before the image data).
func pngInfo(data []byte) (mode string, alpha bool) {
	if len(data) < 33 || string(data[:8]) != "\x89PNG\r\n\x1a\n" {
		return "", false
	}
	mode = map[byte]string{0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}[data[25]]
	if data[25] == 4 || data[25] == 6 {
		return mode, true
	}
	for off := 8; off+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		if typ == "tRNS" {
			return mode, true
		}
		if typ == "IDAT" || n < 0 || off+12+n > len(data) {
			break
		}
		off += 12 + n
	}
	return mode, false
}

var supportedMimes = []string{"image/jpeg", "image/png", "image/webp"}

// inspect checks one uploaded image: its declared type, that it decodes, and its size limit.
func inspect(u upload, index int, maxBytes int) (format string, w, h int, e *apiError) {
	param := u.field
	if param == "image[]" {
		param = "image"
	}
	mt := mediaType(u.contentType)
	if !slices.Contains(supportedMimes, mt) {
		return "", 0, 0, invalid(param, "unsupported_file_mimetype",
			"Invalid file '%s': unsupported mimetype ('%s'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.", param, u.contentType)
	}
	if len(u.data) >= maxBytes {
		return "", 0, 0, invalid(param, "file_too_large", "Invalid file '%s': the file must be less than %d MB.", param, maxBytes>>20)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(u.data))
	if err != nil || "image/"+format != mt {
		return "", 0, 0, invalid(param, "invalid_image_file",
			"Invalid image file or mode for image %d, please check your image file.", index+1)
	}
	return format, cfg.Width, cfg.Height, nil
}

// checkDallEImage applies dall-e-2's rule: a square PNG under 4 MB.
func checkDallEImage(u upload, needAlpha bool) (w int, e *apiError) {
	if mediaType(u.contentType) != "image/png" || len(u.data) >= 4<<20 {
		return 0, invalid("image", "invalid_image", "Uploaded image must be a PNG and less than 4 MB.")
	}
	format, w, h, e := inspect(u, 0, 4<<20)
	if e != nil {
		return 0, e
	}
	if format != "png" {
		return 0, invalid("image", "invalid_image", "Uploaded image must be a PNG and less than 4 MB.")
	}
	if w != h {
		return 0, invalid("image", "invalid_image_dimensions", "Uploaded image must be square (got %dx%d).", w, h)
	}
	if needAlpha {
		if mode, alpha := pngInfo(u.data); !alpha {
			return 0, invalid("image", "invalid_image_format", "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got %s.", mode)
		}
	}
	return w, nil
}

// edits answers POST /v1/images/edits.
func (f *Fake) edits(c *call) (any, *apiError) {
	form, images, mask, e := readMultipart(c)
	if e != nil {
		return nil, e
	}
	p, e := readParams(form, "edits")
	if e != nil {
		return nil, e
	}
	if len(images) == 0 {
		return nil, missingParam("image")
	}
	var iw, ih int
	if p.sp.fam == dallE2 {
		if len(images) > 1 {
			return nil, invalid("image", "", "dall-e-2 can only edit one image at a time.")
		}
		w, e := checkDallEImage(images[0], mask == nil)
		if e != nil {
			return nil, e
		}
		iw, ih = w, w
	} else {
		if len(images) > 16 {
			return nil, invalid("image", "", "You can provide up to 16 images.")
		}
		for i, im := range images {
			_, w, h, e := inspect(im, i, 50<<20)
			if e != nil {
				return nil, e
			}
			if i == 0 {
				iw, ih = w, h
			}
		}
	}
	if mask != nil {
		format, mw, mh, e := inspect(*mask, 0, 4<<20)
		if e != nil {
			return nil, e
		}
		if format != "png" {
			return nil, invalid("mask", "invalid_image_format", "Invalid mask image - the mask must be a PNG.")
		}
		if mw != iw || mh != ih {
			return nil, invalid("mask", "invalid_image_dimensions",
				"Invalid mask image - mask size (%dx%d) does not match image size (%dx%d).", mw, mh, iw, ih)
		}
		if mode, alpha := pngInfo(mask.data); !alpha {
			return nil, invalid("mask", "invalid_image_format", "Invalid mask image - the mask must have an alpha channel, got %s.", mode)
		}
	}
	if strings.Contains(p.prompt, ContentPolicyTrigger) {
		return nil, policyError(p.sp.fam)
	}
	if p.stream {
		return f.streamResponse(c, p, len(images), digest(images, mask))
	}
	return f.respond(c, p, len(images), digest(images, mask))
}

// variations answers POST /v1/images/variations (dall-e-2 only).
func (f *Fake) variations(c *call) (any, *apiError) {
	form, images, mask, e := readMultipart(c)
	if e != nil {
		return nil, e
	}
	if mask != nil {
		return nil, unknownParam("mask")
	}
	p, e := readParams(form, "variations")
	if e != nil {
		return nil, e
	}
	switch {
	case len(images) == 0:
		return nil, missingParam("image")
	case len(images) > 1 || images[0].field != "image":
		return nil, invalid("image", "", "Exactly one image must be provided in the part 'image'.")
	}
	if _, e := checkDallEImage(images[0], false); e != nil {
		return nil, e
	}
	return f.respond(c, p, 1, digest(images, nil))
}

// digest fingerprints the uploaded files so different inputs give different outputs.
func digest(images []upload, mask *upload) string {
	h := crc32.NewIEEE()
	for _, im := range images {
		_, _ = h.Write(im.data)
	}
	if mask != nil {
		_, _ = h.Write(mask.data)
	}
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}
