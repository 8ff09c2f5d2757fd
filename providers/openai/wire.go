package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/imagegw/imagegw/internal/jsonscan"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/b64json"
)

// family groups model ids by the wire rules they follow.
type family int

const (
	// famGPTImage: gpt-image-1, gpt-image-1-mini and newer models. Always base64, never a
	// response_format field. Unknown ids land here: omitting response_format is safe for any
	// model, sending it to a gpt-image model is a 400.
	famGPTImage family = iota
	famDallE2
	famDallE3
)

func familyOf(model string) family {
	switch {
	case strings.HasPrefix(model, "dall-e-2"):
		return famDallE2
	case strings.HasPrefix(model, "dall-e-3"):
		return famDallE3
	}
	return famGPTImage
}

// How an OpenAI-compatible host takes the output size.
const (
	sizeString      = "size"         // "size": "WxH", as OpenAI
	sizeWidthHeight = "width_height" // "width" and "height" integers, as seed 001
	sizeBoth        = "both"         // both forms
)

// dialect is what differs between OpenAI itself and an OpenAI-compatible host.
type dialect struct {
	compatible bool
	// sizeField is how the size is sent (sizeString for OpenAI).
	sizeField string
	// ext holds the extension parameters the host takes (none for OpenAI).
	ext providers.Param
	// responseFormat: a compatible host is sent the response_format hint.
	responseFormat bool
}

var openAIDialect = dialect{sizeField: sizeString}

// Limits OpenAI documents for input images (PROVIDERS.md §5.2, §5.3).
const (
	maxDallEImageBytes = 4 << 20  // dall-e-2 image and every mask: PNG under 4 MB
	maxGPTImageBytes   = 50 << 20 // gpt-image inputs: under 50 MB each
	maxGPTImages       = 16
	maxN               = 10
)

// genRequest is the JSON body of POST /images/generations. Only set fields are sent, as the
// official SDKs do. The last block holds seed 001's extension fields for compatible hosts.
type genRequest struct {
	Model             string `json:"model"`
	Prompt            string `json:"prompt"`
	N                 int    `json:"n,omitempty"`
	Size              string `json:"size,omitempty"`
	Quality           string `json:"quality,omitempty"`
	Style             string `json:"style,omitempty"`
	ResponseFormat    string `json:"response_format,omitempty"`
	Background        string `json:"background,omitempty"`
	Moderation        string `json:"moderation,omitempty"`
	OutputFormat      string `json:"output_format,omitempty"`
	OutputCompression *int   `json:"output_compression,omitempty"`
	User              string `json:"user,omitempty"`

	Width          int      `json:"width,omitempty"`
	Height         int      `json:"height,omitempty"`
	NegativePrompt string   `json:"negative_prompt,omitempty"`
	Steps          int      `json:"num_inference_steps,omitempty"`
	GuidanceScale  *float64 `json:"guidance_scale,omitempty"`
	Seed           *int64   `json:"seed,omitempty"`

	// Streaming (gpt-image): see Adapter.Stream.
	Stream        bool `json:"stream,omitempty"`
	PartialImages int  `json:"partial_images,omitempty"`
}

// encodeGenerate translates a canonical generate request into the JSON body of
// POST /images/generations, refusing what the wire cannot carry.
func encodeGenerate(req *providers.Request, d dialect) ([]byte, error) {
	return encodeGenerateStream(req, d, 0)
}

// encodeGenerateStream is encodeGenerate with "stream": true and partial_images when partials
// is above 0 (the caller has checked that the model streams).
func encodeGenerateStream(req *providers.Request, d dialect, partials int) ([]byte, error) {
	if err := checkCommon(req, d, providers.OpGenerate); err != nil {
		return nil, err
	}
	if len(req.Images) > 0 {
		return nil, providers.UnsupportedParam("image", "this model's generations take no input image; use an edit")
	}
	if req.Mask != nil {
		return nil, providers.UnsupportedParam("mask", "a mask is only taken by edits")
	}
	if err := checkExtra(req, d, providers.OpGenerate); err != nil {
		return nil, err
	}
	fam := familyOf(req.Model)
	g := genRequest{
		Model:             req.Model,
		Prompt:            req.Prompt,
		Quality:           notAuto(req.Quality),
		Style:             notAuto(req.Style),
		Background:        req.Background,
		Moderation:        req.Moderation,
		OutputFormat:      req.OutputFormat,
		OutputCompression: req.OutputCompression,
		User:              req.User,
	}
	if req.N > 1 {
		g.N = req.N
	}
	if req.Width > 0 {
		if d.sizeField == sizeString || d.sizeField == sizeBoth {
			g.Size = strconv.Itoa(req.Width) + "x" + strconv.Itoa(req.Height)
		}
		if d.sizeField == sizeWidthHeight || d.sizeField == sizeBoth {
			g.Width, g.Height = req.Width, req.Height
		}
	}
	if rf := responseFormat(req, fam, d); rf != "" {
		g.ResponseFormat = rf
	}
	if d.compatible {
		g.NegativePrompt = req.NegativePrompt
		g.Steps = req.Steps
		g.GuidanceScale = req.GuidanceScale
		g.Seed = req.Seed
	}
	if partials > 0 {
		g.Stream, g.PartialImages = true, partials
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(g); err != nil {
		return nil, fmt.Errorf("openai: encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// responseFormat is the response_format to send, or "" for none.
func responseFormat(req *providers.Request, fam family, d dialect) string {
	if req.ResponseFormat != "url" && req.ResponseFormat != "b64_json" {
		return ""
	}
	if d.compatible {
		if d.responseFormat {
			return req.ResponseFormat
		}
		return ""
	}
	if fam == famGPTImage {
		return "" // gpt-image rejects the field with 400 unknown_parameter.
	}
	return req.ResponseFormat
}

// notAuto drops "auto", which means "the upstream's default" canonically: dall-e-2 predates it.
func notAuto(v string) string {
	if v == "auto" {
		return ""
	}
	return v
}

// checkCommon refuses what no OpenAI-shaped wire carries, or what this dialect and model do not.
func checkCommon(req *providers.Request, d dialect, op providers.Operation) error {
	if req.Model == "" {
		return providers.ParamError("model", "a model is required")
	}
	if op != providers.OpVariation && strings.TrimSpace(req.Prompt) == "" {
		return providers.ParamError("prompt", "a prompt is required")
	}
	if (req.Width == 0) != (req.Height == 0) || req.Width < 0 || req.Height < 0 {
		return providers.ParamError("size", "the size needs both a width and a height")
	}
	if req.N < 0 || (!d.compatible && req.N > maxN) {
		return providers.ParamError("n", "n must be between 1 and %d", maxN)
	}
	switch {
	case req.AspectRatio != "":
		return providers.UnsupportedParam("aspect_ratio", "this provider takes a size, not an aspect ratio")
	case req.Strength != nil:
		return providers.UnsupportedParam("strength", "this provider does not take strength")
	case req.PromptEnhancement != nil:
		return providers.UnsupportedParam("prompt_enhancement", "this provider does not take prompt_enhancement")
	case req.NegativePrompt != "" && !d.ext.Has(providers.ParamNegativePrompt):
		return providers.UnsupportedParam("negative_prompt", "this model does not take a negative prompt")
	case req.Seed != nil && !d.ext.Has(providers.ParamSeed):
		return providers.UnsupportedParam("seed", "this model does not take a seed")
	case req.Steps != 0 && !d.ext.Has(providers.ParamSteps):
		return providers.UnsupportedParam("steps", "this model does not take steps")
	case req.GuidanceScale != nil && !d.ext.Has(providers.ParamGuidance):
		return providers.UnsupportedParam("guidance_scale", "this model does not take guidance_scale")
	}
	gptOnly := []struct {
		set  bool
		name string
	}{
		{req.Background != "", "background"},
		{req.OutputFormat != "", "output_format"},
		{req.OutputCompression != nil, "output_compression"},
		{req.Moderation != "", "moderation"},
	}
	fam := familyOf(req.Model)
	for _, f := range gptOnly {
		if f.set && (d.compatible || fam != famGPTImage) {
			return providers.UnsupportedParam(f.name, "%s is only taken by gpt-image models", f.name)
		}
	}
	if !d.compatible {
		if notAuto(req.Style) != "" && fam != famDallE3 {
			return providers.UnsupportedParam("style", "style is only taken by dall-e-3")
		}
		if fam == famDallE3 && req.N > 1 {
			return providers.ParamError("n", "dall-e-3 makes one image per call")
		}
	}
	return nil
}

// checkExtra refuses extension fields the wire does not carry; only gpt-image edits take
// input_fidelity ("high" or "low"), and not gpt-image-1-mini.
func checkExtra(req *providers.Request, d dialect, op providers.Operation) error {
	for k, v := range req.Extra {
		if k != ExtraInputFidelity || d.compatible {
			return providers.UnsupportedParam(k, "this provider does not take %s", k)
		}
		if op != providers.OpEdit || familyOf(req.Model) != famGPTImage || strings.Contains(req.Model, "mini") {
			return providers.UnsupportedParam(k, "input_fidelity is only taken by gpt-image-1 edits")
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || (s != "high" && s != "low") {
			return providers.ParamError(k, `input_fidelity must be "high" or "low"`)
		}
	}
	return nil
}

// multipartBody is an encoded multipart/form-data body whose file parts point at the request's
// image bytes instead of copying them.
type multipartBody struct {
	contentType string
	segs        [][]byte
	size        int64
}

// reader returns a fresh reader over the whole body.
func (m *multipartBody) reader() io.Reader {
	rs := make([]io.Reader, len(m.segs))
	for i, s := range m.segs {
		rs[i] = bytes.NewReader(s)
	}
	return io.MultiReader(rs...)
}

// bytes returns the whole body in one slice (tests and goldens).
func (m *multipartBody) bytes() []byte { return bytes.Join(m.segs, nil) }

type mpBuilder struct {
	w    *multipart.Writer
	buf  bytes.Buffer
	segs [][]byte
}

func newMPBuilder(boundary string) (*mpBuilder, error) {
	b := &mpBuilder{}
	b.w = multipart.NewWriter(&b.buf)
	if boundary != "" {
		if err := b.w.SetBoundary(boundary); err != nil {
			return nil, fmt.Errorf("openai: multipart boundary: %w", err)
		}
	}
	return b, nil
}

func (b *mpBuilder) field(name, value string) {
	if value != "" {
		_ = b.w.WriteField(name, value) // writes to a bytes.Buffer: cannot fail
	}
}

func (b *mpBuilder) file(name, filename, contentType string, data []byte) {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+name+`"; filename="`+filename+`"`)
	h.Set("Content-Type", contentType)
	_, _ = b.w.CreatePart(h)
	b.flush()
	b.segs = append(b.segs, data)
}

func (b *mpBuilder) flush() {
	if b.buf.Len() > 0 {
		b.segs = append(b.segs, bytes.Clone(b.buf.Bytes()))
		b.buf.Reset()
	}
}

func (b *mpBuilder) finish() *multipartBody {
	_ = b.w.Close()
	b.flush()
	m := &multipartBody{contentType: b.w.FormDataContentType(), segs: b.segs}
	for _, s := range b.segs {
		m.size += int64(len(s))
	}
	return m
}

// extOf names a file extension for a content type.
func extOf(contentType string) string {
	switch contentType {
	case "image/jpeg":
		return "jpg"
	case "image/webp":
		return "webp"
	}
	return "png"
}

// encodeEdit translates a canonical edit into the multipart body of POST /images/edits: one image
// is the part "image", several are repeated "image[]" parts, then "mask"; scalars are text.
// boundary is empty outside tests.
func encodeEdit(req *providers.Request, boundary string) (*multipartBody, error) {
	return encodeEditStream(req, boundary, 0)
}

// encodeEditStream is encodeEdit with the text parts stream=true and partial_images when
// partials is above 0 (the caller has checked that the model streams).
func encodeEditStream(req *providers.Request, boundary string, partials int) (*multipartBody, error) {
	if err := checkCommon(req, openAIDialect, providers.OpEdit); err != nil {
		return nil, err
	}
	if err := checkExtra(req, openAIDialect, providers.OpEdit); err != nil {
		return nil, err
	}
	fam := familyOf(req.Model)
	switch fam {
	case famDallE3:
		return nil, providers.UnsupportedParam("model", "dall-e-3 does not edit images")
	case famDallE2:
		if len(req.Images) != 1 {
			return nil, providers.ParamError("image", "dall-e-2 edits take exactly one image")
		}
		if err := checkDallEImage("image", req.Images[0]); err != nil {
			return nil, err
		}
	default:
		if len(req.Images) == 0 {
			return nil, providers.ParamError("image", "an image to edit is required")
		}
		if len(req.Images) > maxGPTImages {
			return nil, providers.ParamError("image", "at most %d images can be edited together", maxGPTImages)
		}
		for i, im := range req.Images {
			if err := checkGPTImage(im, i); err != nil {
				return nil, err
			}
		}
	}
	if req.Mask != nil {
		if err := checkMask(*req.Mask, req.Images[0]); err != nil {
			return nil, err
		}
	}
	b, err := newMPBuilder(boundary)
	if err != nil {
		return nil, err
	}
	b.field("model", req.Model)
	b.field("prompt", req.Prompt)
	if req.N > 1 {
		b.field("n", strconv.Itoa(req.N))
	}
	if req.Width > 0 {
		b.field("size", strconv.Itoa(req.Width)+"x"+strconv.Itoa(req.Height))
	}
	b.field("quality", notAuto(req.Quality))
	b.field("response_format", responseFormat(req, fam, openAIDialect))
	b.field("background", req.Background)
	b.field("output_format", req.OutputFormat)
	if req.OutputCompression != nil {
		b.field("output_compression", strconv.Itoa(*req.OutputCompression))
	}
	b.field("moderation", req.Moderation)
	if v, ok := req.Extra[ExtraInputFidelity]; ok {
		var s string
		_ = json.Unmarshal(v, &s) // checked by checkExtra
		b.field("input_fidelity", s)
	}
	b.field("user", req.User)
	if partials > 0 {
		b.field("stream", "true")
		b.field("partial_images", strconv.Itoa(partials))
	}
	if len(req.Images) == 1 {
		im := req.Images[0]
		b.file("image", "image."+extOf(im.ContentType), im.ContentType, im.Data)
	} else {
		for i, im := range req.Images {
			b.file("image[]", "image-"+strconv.Itoa(i+1)+"."+extOf(im.ContentType), im.ContentType, im.Data)
		}
	}
	if req.Mask != nil {
		b.file("mask", "mask.png", "image/png", req.Mask.Data)
	}
	return b.finish(), nil
}

// encodeVariation translates a canonical variation into the multipart body of
// POST /images/variations (dall-e-2 only).
func encodeVariation(req *providers.Request, boundary string) (*multipartBody, error) {
	if err := checkCommon(req, openAIDialect, providers.OpVariation); err != nil {
		return nil, err
	}
	if err := checkExtra(req, openAIDialect, providers.OpVariation); err != nil {
		return nil, err
	}
	if familyOf(req.Model) != famDallE2 {
		return nil, providers.UnsupportedParam("model", "only dall-e-2 makes variations")
	}
	switch {
	case req.Prompt != "":
		return nil, providers.UnsupportedParam("prompt", "variations take no prompt")
	case req.Mask != nil:
		return nil, providers.UnsupportedParam("mask", "variations take no mask")
	case notAuto(req.Quality) != "":
		return nil, providers.UnsupportedParam("quality", "variations take no quality")
	case len(req.Images) != 1:
		return nil, providers.ParamError("image", "a variation takes exactly one image")
	}
	if err := checkDallEImage("image", req.Images[0]); err != nil {
		return nil, err
	}
	b, err := newMPBuilder(boundary)
	if err != nil {
		return nil, err
	}
	b.field("model", req.Model)
	if req.N > 1 {
		b.field("n", strconv.Itoa(req.N))
	}
	if req.Width > 0 {
		b.field("size", strconv.Itoa(req.Width)+"x"+strconv.Itoa(req.Height))
	}
	b.field("response_format", responseFormat(req, famDallE2, openAIDialect))
	b.field("user", req.User)
	b.file("image", "image.png", "image/png", req.Images[0].Data)
	return b.finish(), nil
}

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// pngSize reads a PNG's dimensions from its IHDR chunk.
func pngSize(data []byte) (w, h int, ok bool) {
	if len(data) < 24 || string(data[:8]) != pngSignature || string(data[12:16]) != "IHDR" {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint32(data[16:20])), int(binary.BigEndian.Uint32(data[20:24])), true
}

// dims returns an image's dimensions: the front door's, or read from a PNG header.
func dims(im providers.Image) (w, h int) {
	if im.Width > 0 && im.Height > 0 {
		return im.Width, im.Height
	}
	if w, h, ok := pngSize(im.Data); ok {
		return w, h
	}
	return 0, 0
}

// checkDallEImage enforces dall-e-2's rule for an edit or variation source: a square PNG under 4 MB.
func checkDallEImage(param string, im providers.Image) error {
	if im.ContentType != "image/png" || !bytes.HasPrefix(im.Data, []byte(pngSignature)) {
		return providers.ParamError(param, "dall-e-2 takes a square PNG image under 4 MB; this image is not a PNG")
	}
	if len(im.Data) >= maxDallEImageBytes {
		return providers.ParamError(param, "dall-e-2 takes a square PNG image under 4 MB; this image is %d bytes", len(im.Data))
	}
	if w, h := dims(im); w != h {
		return providers.ParamError(param, "dall-e-2 takes a square PNG image under 4 MB; this image is %dx%d", w, h)
	}
	return nil
}

// checkGPTImage enforces gpt-image's rule for edit sources: PNG, JPEG or WebP under 50 MB each.
func checkGPTImage(im providers.Image, i int) error {
	switch im.ContentType {
	case "image/png", "image/jpeg", "image/webp":
	default:
		return providers.ParamError("image", "image %d must be PNG, JPEG or WebP", i+1)
	}
	if len(im.Data) == 0 || len(im.Data) >= maxGPTImageBytes {
		return providers.ParamError("image", "image %d must be non-empty and under 50 MB", i+1)
	}
	return nil
}

// checkMask enforces OpenAI's mask rule: a PNG under 4 MB with the dimensions of the (first) image.
func checkMask(mask, first providers.Image) error {
	if !bytes.HasPrefix(mask.Data, []byte(pngSignature)) {
		return providers.ParamError("mask", "the mask must be a PNG")
	}
	if len(mask.Data) >= maxDallEImageBytes {
		return providers.ParamError("mask", "the mask must be under 4 MB")
	}
	mw, mh := dims(mask)
	iw, ih := dims(first)
	if iw > 0 && mw > 0 && (mw != iw || mh != ih) {
		return providers.ParamError("mask", "the mask is %dx%d but the image is %dx%d; they must match", mw, mh, iw, ih)
	}
	return nil
}

// imagesResponse is the success body of every images endpoint. Top-level background,
// output_format, quality, size and usage echo what a gpt-image model did (a value of the wrong
// type is read as not reported: it is never worth losing the images over); seed comes from some
// compatible hosts.
type imagesResponse struct {
	Created      flexTime        `json:"created"`
	Data         []imageItem     `json:"data"`
	Background   looseString     `json:"background"`
	OutputFormat looseString     `json:"output_format"`
	Quality      looseString     `json:"quality"`
	Size         looseString     `json:"size"`
	Seed         flexInt         `json:"seed"`
	Usage        *usage          `json:"usage"`
	Error        json.RawMessage `json:"error"`
}

type imageItem struct {
	URL           string   `json:"url"`
	B64JSON       b64Field `json:"b64_json"`
	RevisedPrompt string   `json:"revised_prompt"`
	Seed          flexInt  `json:"seed"`
}

// b64Field is an item's b64_json: its base64 text, checked but not decoded (decodeImages), or
// image bytes already decoded (the final images of a streamed answer).
type b64Field struct {
	ref  b64json.Ref
	img  b64json.Image
	data []byte
}

// UnmarshalJSON implements json.Unmarshaler: it reads the index b64json.Split left, resolved
// by decodeImages.
func (b *b64Field) UnmarshalJSON(raw []byte) error { return b.ref.UnmarshalJSON(raw) }

// usage is gpt-image's token count, in the plain answer and on each streamed completed event.
type usage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		ImageTokens int64 `json:"image_tokens"`
		TextTokens  int64 `json:"text_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
	// bad: the usage was not an object of counts.
	bad bool
}

// UnmarshalJSON implements json.Unmarshaler: a usage that does not decode is marked bad rather
// than failing the answer.
func (u *usage) UnmarshalJSON(raw []byte) error {
	type plain usage
	var p plain
	if err := json.Unmarshal(raw, &p); err != nil {
		*u = usage{bad: true}
		return nil
	}
	*u = usage(p)
	return nil
}

// canonical is the usage in canonical form, or nil when it did not decode or a count is
// negative (a host answering junk reports nothing).
func (u *usage) canonical() *providers.Usage {
	if u == nil || u.bad {
		return nil
	}
	c := &providers.Usage{InputTokens: u.InputTokens, InputImageTokens: u.InputTokensDetails.ImageTokens,
		InputTextTokens: u.InputTokensDetails.TextTokens, OutputTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
	if c.InputTokens < 0 || c.InputImageTokens < 0 || c.InputTextTokens < 0 || c.OutputTokens < 0 || c.TotalTokens < 0 {
		return nil
	}
	return c
}

// reportedOf keeps what an answer (or a streamed event) reports of the settings it used and the
// tokens it counted, as providers.Reported says: a setting only when it is a short lower-case
// word other than "auto", a size only when it parses.
func reportedOf(background, outputFormat, quality, size string, u *usage) providers.Reported {
	r := providers.Reported{Background: setting(background), OutputFormat: setting(outputFormat),
		Quality: setting(quality), Usage: u.canonical()}
	if size == "" {
		return r // the usual case: not reported (ParseSize would make an error to say so)
	}
	if s, err := providers.ParseSize(size); err == nil {
		r.Size = s
	}
	return r
}

// setting is v when it is a word an OpenAI client can be shown as a reported setting (up to 16
// characters of a-z, 0-9, '_' and '-', not "auto"), else "".
func setting(v string) string {
	if v == "" || v == "auto" || len(v) > 16 {
		return ""
	}
	for _, r := range v {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '-' {
			return ""
		}
	}
	return v
}

// reported is what the answer reports (see reportedOf).
func (r *imagesResponse) reported() providers.Reported {
	return reportedOf(string(r.Background), string(r.OutputFormat), string(r.Quality), string(r.Size), r.Usage)
}

// looseString reads a JSON string; any other value is left "".
type looseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *looseString) UnmarshalJSON(raw []byte) error {
	var v string
	if json.Unmarshal(raw, &v) == nil {
		*s = looseString(v)
	}
	return nil
}

// b64Image decodes a b64_json string straight from the JSON bytes into image bytes, so an answer
// holds the encoded body and the decoded image and no third copy. A "data:<type>;base64,"
// prefix, which some compatible hosts add, is stripped and its type kept.
type b64Image struct {
	data        []byte
	contentType string
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *b64Image) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		return nil
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return errors.New("b64_json is not a string")
	}
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 { // escaped characters: let encoding/json unquote it
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return err
		}
		s = []byte(str)
	}
	if bytes.HasPrefix(s, []byte("data:")) {
		i := bytes.Index(s, []byte(";base64,"))
		if i < 0 {
			return errors.New("b64_json has a data: prefix without ;base64,")
		}
		b.contentType = strings.ToLower(string(s[len("data:"):i]))
		s = s[i+len(";base64,"):]
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(dst, s)
	if err != nil {
		return fmt.Errorf("b64_json: %w", err)
	}
	b.data = dst[:n]
	return nil
}

// flexTime reads created as Unix seconds (integer, float or numeric string) or an ISO-8601
// string; anything else is left zero rather than failing the answer.
type flexTime struct{ t time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexTime) UnmarshalJSON(raw []byte) error {
	if v, ok := unixSeconds(raw); ok { // the usual case: an integer, no allocation
		if v > 0 && v < 1e11 {
			f.t = time.Unix(v, 0).UTC()
		}
		return nil
	}
	s := strings.Trim(string(raw), `"`)
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if v > 0 && v < 1e11 {
			f.t = time.Unix(int64(v), 0).UTC()
		}
		return nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		f.t = t.UTC()
	}
	return nil
}

// unixSeconds reads a JSON integer of up to 18 digits.
func unixSeconds(raw []byte) (int64, bool) {
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// flexInt reads an integer given as a number or a numeric string; anything else is left unset.
type flexInt struct{ v *int64 }

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexInt) UnmarshalJSON(raw []byte) error {
	if v, err := strconv.ParseInt(strings.Trim(string(raw), `"`), 10, 64); err == nil {
		f.v = &v
	}
	return nil
}

// decodeImages parses a success body in one pass over its images: b64json.Split sets the
// b64_json strings aside, encoding/json reads the rest, and each image's text is checked to be
// base64 (b64json.Parse) and kept, not decoded. The images' text may point into body.
func decodeImages(body []byte) (*imagesResponse, error) {
	shadow, strs, ok := b64json.Split(body, "b64_json")
	if !ok {
		shadow, strs = body, nil
	}
	var r imagesResponse
	if !decodeShadow(shadow, &r) {
		r = imagesResponse{}
		if err := json.Unmarshal(shadow, &r); err != nil {
			return nil, fmt.Errorf("openai: decode response: %w", err)
		}
	}
	for i := range r.Data {
		f := &r.Data[i].B64JSON
		v, err := f.ref.Resolve(strs)
		if err == nil {
			f.img, err = b64json.Parse(v, b64json.Options{})
		}
		if err != nil {
			return nil, fmt.Errorf("openai: decode response: data[%d]: %w", i, err)
		}
	}
	return &r, nil
}

// decodeShadow reads the usual answer (an object of known members, data an array of objects,
// names written plainly, strings without surrogate escapes, usage counts) into r as json.Unmarshal
// would, and reports whether it did; anything else is left to json.Unmarshal. It walks the
// document in a loop: encoding/json's decoder recurses through frames of up to 0.9 KB per level,
// and a request's goroutine decodes its answer deep in its stack (a request fits the 8 KB stack a
// goroutine starts with only without them; see TestRequestFitsInAGoroutinesFirstStack in
// internal/app). It is also several times faster than reflection on the small shadow.
func decodeShadow(b []byte, r *imagesResponse) bool {
	if !json.Valid(b) {
		return false
	}
	i := jsonscan.SkipSpace(b, 0)
	if b[i] != '{' {
		return false
	}
	var seen uint16
	return members(b, i, func(name, v []byte) bool {
		bit := uint16(0)
		switch string(name) {
		case "created":
			bit = 1 << 0
			_ = r.Created.UnmarshalJSON(v)
		case "data":
			bit = 1 << 1
			if !decodeItems(v, r) {
				return false
			}
		case "background":
			bit = 1 << 2
			looseInto(&r.Background, v)
		case "output_format":
			bit = 1 << 3
			looseInto(&r.OutputFormat, v)
		case "quality":
			bit = 1 << 4
			looseInto(&r.Quality, v)
		case "size":
			bit = 1 << 5
			looseInto(&r.Size, v)
		case "seed":
			bit = 1 << 6
			_ = r.Seed.UnmarshalJSON(v)
		case "usage":
			bit = 1 << 7
			if string(v) != "null" {
				r.Usage = new(usage)
				if !decodeUsage(v, r.Usage) {
					*r.Usage = usage{}
					_ = r.Usage.UnmarshalJSON(v)
				}
			}
		case "error":
			bit = 1 << 8
			r.Error = append(json.RawMessage(nil), v...)
		default:
			// encoding/json also matches a name case-insensitively.
			return !foldsTo(name, "created", "data", "background", "output_format", "quality", "size", "seed", "usage", "error")
		}
		return once(&seen, bit) // a name twice: encoding/json's merging is left to it
	})
}

// decodeItems reads data's value into r.Data (see decodeShadow).
func decodeItems(v []byte, r *imagesResponse) bool {
	switch v[0] {
	case 'n':
		return true // null: no images
	case '[':
		r.Data = make([]imageItem, 0, 1) // [] is an empty slice, not nil, as encoding/json makes it
	default:
		return false
	}
	return jsonscan.Elements(v, 0, func(e []byte) bool {
		r.Data = append(r.Data, imageItem{})
		it := &r.Data[len(r.Data)-1]
		switch e[0] {
		case 'n': // a null item is a zero one
			return true
		case '{':
		default:
			return false
		}
		var seen uint8
		return members(e, 0, func(name, v []byte) bool {
			bit := uint8(0)
			switch string(name) {
			case "url":
				bit = 1 << 0
				if !plainInto(&it.URL, v) {
					return false
				}
			case "b64_json":
				bit = 1 << 1
				if it.B64JSON.UnmarshalJSON(v) != nil {
					return false
				}
			case "revised_prompt":
				bit = 1 << 2
				if !plainInto(&it.RevisedPrompt, v) {
					return false
				}
			case "seed":
				bit = 1 << 3
				_ = it.Seed.UnmarshalJSON(v)
			default:
				return !foldsTo(name, "url", "b64_json", "revised_prompt", "seed")
			}
			return once(&seen, bit)
		})
	})
}

// decodeUsage reads a usage object of plain integers (or nulls) as usage.UnmarshalJSON would,
// and reports whether it did.
func decodeUsage(v []byte, u *usage) bool {
	if v[0] != '{' {
		return false
	}
	var seen uint8
	return members(v, 0, func(name, v []byte) bool {
		var dst *int64
		bit := uint8(0)
		switch string(name) {
		case "input_tokens":
			dst, bit = &u.InputTokens, 1<<0
		case "output_tokens":
			dst, bit = &u.OutputTokens, 1<<1
		case "total_tokens":
			dst, bit = &u.TotalTokens, 1<<2
		case "input_tokens_details":
			bit = 1 << 3
			if v[0] == '{' {
				var inner uint8
				ok := members(v, 0, func(name, v []byte) bool {
					switch string(name) {
					case "image_tokens":
						return once(&inner, 1<<0) && intInto(&u.InputTokensDetails.ImageTokens, v)
					case "text_tokens":
						return once(&inner, 1<<1) && intInto(&u.InputTokensDetails.TextTokens, v)
					}
					return !foldsTo(name, "image_tokens", "text_tokens")
				})
				if !ok {
					return false
				}
			} else if string(v) != "null" {
				return false
			}
		default:
			return !foldsTo(name, "input_tokens", "output_tokens", "total_tokens", "input_tokens_details")
		}
		if !once(&seen, bit) {
			return false
		}
		return dst == nil || intInto(dst, v)
	})
}

// once sets bit in *seen and reports whether it was not set yet.
func once[T uint8 | uint16](seen *T, bit T) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// intInto sets *dst to the JSON integer v (null leaves it); false for anything encoding/json
// would not read into an int64.
func intInto(dst *int64, v []byte) bool {
	if string(v) == "null" {
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// members is jsonscan.Members stopping at a name written with escapes, which it leaves to
// encoding/json.
func members(b []byte, i int, fn func(name, v []byte) bool) bool {
	return jsonscan.Members(b, i, func(name, v []byte) bool {
		return bytes.IndexByte(name, '\\') < 0 && fn(name, v)
	})
}

// foldsTo reports whether name matches one of names only case-insensitively, as encoding/json
// would match it to that field.
func foldsTo(name []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(name, []byte(n)) {
			return true
		}
	}
	return false
}

// plainInto sets *dst to the JSON string v (null leaves *dst as it is, as encoding/json does);
// false for anything it leaves to encoding/json: not a string, invalid UTF-8 (which encoding/json
// replaces), or a \u escape of a UTF-16 surrogate. Other escapes (Go's encoders write "&" in a
// URL's query as \u0026) are unquoted here.
func plainInto(dst *string, v []byte) bool {
	switch {
	case string(v) == "null":
		return true
	case v[0] != '"' || !utf8.Valid(v):
		return false
	}
	v = v[1 : len(v)-1]
	i := bytes.IndexByte(v, '\\')
	if i < 0 {
		*dst = string(v)
		return true
	}
	b := make([]byte, 0, len(v))
	for i >= 0 {
		b = append(b, v[:i]...)
		c := v[i+1] // json.Valid: an escape is complete
		v = v[i+2:]
		switch c {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, err := strconv.ParseUint(string(v[:4]), 16, 16)
			if err != nil || utf16.IsSurrogate(rune(r)) {
				return false
			}
			b = utf8.AppendRune(b, rune(r))
			v = v[4:]
		default: // '"', '\\', '/'
			b = append(b, c)
		}
		i = bytes.IndexByte(v, '\\')
	}
	*dst = string(append(b, v...))
	return true
}

// looseInto reads a looseString member: a plain string directly, anything else as its
// UnmarshalJSON does.
func looseInto(dst *looseString, v []byte) {
	var s string
	if v[0] == '"' && plainInto(&s, v) {
		*dst = looseString(s)
		return
	}
	_ = dst.UnmarshalJSON(v)
}

// resultOptions is what toResult needs besides the answer.
type resultOptions struct {
	// ttl is how long URLs live (0: unknown).
	ttl time.Duration
	// now is the time the answer arrived.
	now time.Time
	// echoSeed: the request's seed was sent, so it is the images' seed unless the answer says.
	echoSeed bool
}

// toResult translates a decoded success body into the canonical result. provider names the
// channel in errors.
func toResult(provider string, r *imagesResponse, req *providers.Request, o resultOptions) (*providers.Result, error) {
	bad := func(format string, args ...any) error {
		return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
			Message: fmt.Sprintf(format, args...)}
	}
	if len(r.Data) == 0 {
		return nil, bad("the provider's answer carried no image")
	}
	res := &providers.Result{Created: r.Created.t, Images: make([]providers.Output, 0, len(r.Data)), Reported: r.reported()}
	w, h := req.Width, req.Height
	if s := res.Reported.Size; !s.IsZero() {
		w, h = s.W, s.H
	}
	base := o.now
	if !res.Created.IsZero() && res.Created.Before(base) {
		base = res.Created
	}
	for i, it := range r.Data {
		out := providers.Output{RevisedPrompt: it.RevisedPrompt, Width: w, Height: h}
		switch {
		case len(it.B64JSON.data) > 0:
			ct := http.DetectContentType(it.B64JSON.data)
			if !strings.HasPrefix(ct, "image/") {
				return nil, bad("image %d of the provider's answer is not an image", i+1)
			}
			out.Data, out.ContentType = it.B64JSON.data, ct
		case len(it.B64JSON.img.Text) > 0:
			// The text is valid base64 (b64json.Parse); its head says what it is.
			head, err := providers.DecodeBase64Head(it.B64JSON.img.Text, 512)
			ct := http.DetectContentType(head)
			if err != nil || !strings.HasPrefix(ct, "image/") {
				return nil, bad("image %d of the provider's answer is not an image", i+1)
			}
			out.B64, out.ContentType = it.B64JSON.img.Text, ct
		case it.URL != "":
			u, err := url.Parse(it.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, bad("image %d of the provider's answer has an unusable URL", i+1)
			}
			out.URL = it.URL
			if o.ttl > 0 {
				out.Expires = base.Add(o.ttl)
			}
		default:
			return nil, bad("image %d of the provider's answer has neither a URL nor image data", i+1)
		}
		switch {
		case it.Seed.v != nil:
			out.Seed = it.Seed.v
		case r.Seed.v != nil:
			v := *r.Seed.v
			out.Seed = &v
		case o.echoSeed && req.Seed != nil:
			v := *req.Seed
			out.Seed = &v
		}
		res.Images = append(res.Images, out)
	}
	return res, nil
}
