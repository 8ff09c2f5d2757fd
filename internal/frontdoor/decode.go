package frontdoor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imagegw/imagegw/internal/jsonscan"
	"github.com/imagegw/imagegw/providers"
)

// apiRequest is an OpenAI-shaped request as a client sent it, from JSON or multipart.
type apiRequest struct {
	Op                providers.Operation
	Model             string
	Prompt            *string
	N                 *int
	Size              string
	Quality           string
	Style             string
	ResponseFormat    string
	User              string
	Background        string
	OutputFormat      string
	OutputCompression *int
	Moderation        string
	NegativePrompt    string
	Seed              *int64
	Steps             *int
	GuidanceScale     *float64
	Width, Height     *int
	AspectRatio       string
	Strength          *float64
	PromptEnhancement *bool
	MapNearest        *bool
	Stream            bool
	// PartialImages is partial_images: previews to stream per image (with Stream; see stream.go).
	PartialImages *int
	// ImageRefs are reference images given as URLs or data URIs (JSON "image").
	ImageRefs []string
	// Files are uploaded images (multipart "image" / "image[]"), then style reference images.
	Files []upload
	Mask  *upload
	Extra map[string]json.RawMessage
}

type upload struct {
	field       string
	filename    string
	contentType string
	data        []byte
}

// extensionFields are provider knobs accepted at the top level and handed to the adapter in
// Request.Extra; the model's catalog entry says which ones it takes.
var extensionFields = []string{
	"rendering_speed", "magic_prompt", "style_type", "style_preset", "resolution", "color_palette",
	"image_weight", "resemblance", "detail", "style_codes", "describe_model_version", "mask_format",
	"watermark", "cfg", "input_fidelity",
}

// set assigns one field. It reports false for a name it does not know.
func (r *apiRequest) set(key string, raw json.RawMessage) (bool, error) {
	var err error
	switch key {
	case "model":
		err = decodeValue(raw, &r.Model)
	case "prompt":
		err = decodeValue(raw, &r.Prompt)
	case "n":
		err = decodeValue(raw, &r.N)
	case "size":
		err = decodeValue(raw, &r.Size)
	case "quality":
		err = decodeValue(raw, &r.Quality)
	case "style":
		err = decodeValue(raw, &r.Style)
	case "response_format":
		err = decodeValue(raw, &r.ResponseFormat)
	case "user":
		err = decodeValue(raw, &r.User)
	case "background":
		err = decodeValue(raw, &r.Background)
	case "output_format":
		err = decodeValue(raw, &r.OutputFormat)
	case "output_compression":
		err = decodeValue(raw, &r.OutputCompression)
	case "moderation":
		err = decodeValue(raw, &r.Moderation)
	case "negative_prompt":
		err = decodeValue(raw, &r.NegativePrompt)
	case "seed":
		err = decodeValue(raw, &r.Seed)
	case "steps":
		err = decodeValue(raw, &r.Steps)
	case "guidance_scale":
		err = decodeValue(raw, &r.GuidanceScale)
	case "width":
		err = decodeValue(raw, &r.Width)
	case "height":
		err = decodeValue(raw, &r.Height)
	case "aspect_ratio":
		err = decodeValue(raw, &r.AspectRatio)
	case "strength":
		err = decodeValue(raw, &r.Strength)
	case "prompt_enhancement":
		err = decodeValue(raw, &r.PromptEnhancement)
	case "map_nearest":
		err = decodeValue(raw, &r.MapNearest)
	case "stream":
		err = decodeValue(raw, &r.Stream)
	case "partial_images":
		err = decodeValue(raw, &r.PartialImages)
	case "image":
		var one string
		if err = json.Unmarshal(raw, &one); err == nil {
			r.ImageRefs = append(r.ImageRefs, one)
		} else {
			var many []string
			if err = json.Unmarshal(raw, &many); err == nil {
				r.ImageRefs = append(r.ImageRefs, many...)
			}
		}
	case "extra":
		var m map[string]json.RawMessage
		if err = json.Unmarshal(raw, &m); err == nil {
			for k, v := range m {
				r.setExtra(k, v)
			}
		}
	default:
		if !slices.Contains(extensionFields, key) {
			return false, nil
		}
		r.setExtra(key, raw)
	}
	if err != nil {
		return true, badParam(key, "Invalid type for '%s': %s.", key, typeHint(err))
	}
	return true, nil
}

// decodeValue is json.Unmarshal(raw, dst) for a valid JSON value raw. The usual values (a
// string without escapes, an integer, true or false) are taken without encoding/json, which
// would check raw's syntax again and reflect over dst; anything else goes to it.
func decodeValue(raw json.RawMessage, dst any) error {
	switch d := dst.(type) {
	case *string:
		if s, ok := plainString(raw); ok {
			*d = s
			return nil
		}
	case **string:
		if s, ok := plainString(raw); ok {
			*d = &s
			return nil
		}
	case **int:
		if v, ok := plainInt(raw); ok && int64(int(v)) == v {
			n := int(v)
			*d = &n
			return nil
		}
	case **int64:
		if v, ok := plainInt(raw); ok {
			*d = &v
			return nil
		}
	case *bool:
		if v, ok := plainBool(raw); ok {
			*d = v
			return nil
		}
	case **bool:
		if v, ok := plainBool(raw); ok {
			*d = &v
			return nil
		}
	}
	return json.Unmarshal(raw, dst)
}

// plainString is the text of a JSON string without escapes whose bytes are valid UTF-8: what
// encoding/json would make of it, the same bytes.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	text := raw[1 : len(raw)-1]
	for _, c := range text {
		if c < 0x20 || c == '\\' || c == '"' {
			return "", false
		}
	}
	if !utf8.Valid(text) {
		return "", false // encoding/json replaces the invalid bytes
	}
	return string(text), true
}

// plainInt reads a JSON integer of up to 18 digits (no fraction, no exponent).
func plainInt(raw []byte) (int64, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if len(digits) < len(raw) {
		v = -v
	}
	return v, true
}

// plainBool reads JSON true or false.
func plainBool(raw []byte) (v, ok bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func (r *apiRequest) setExtra(k string, v json.RawMessage) {
	if r.Extra == nil {
		r.Extra = map[string]json.RawMessage{}
	}
	r.Extra[k] = v
}

func typeHint(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got %s", te.Type.String(), te.Value)
	}
	return "malformed value"
}

// JSON bodies are decoded as a stream, field by field, so memory follows what a request may
// legally carry rather than what a client sends: an unknown or repeated field is refused before
// its value is read, and each value is bounded while it is read (256 KB; an image reference one
// data URI of the image cap). A request's memory
// is then at most about twice its largest legal value (the decoder's buffer and the copy kept).
const (
	// maxTextField bounds any one non-image JSON value (a prompt is at most a few KB upstream;
	// OpenAI's longest is 32,000 characters, 4 bytes each at worst).
	maxTextField = 256 << 10
	// maxImageRefs bounds the image references of one JSON request.
	maxImageRefs = 16
)

// refCap is the most bytes one image reference may take: a data URI of maxImageBytes (base64:
// 4/3 of that) with room for its header, or a URL.
func refCap(maxImageBytes int64) int64 { return maxImageBytes/3*4 + 4<<10 }

// decodeJSON reads a JSON request body. Unknown and repeated fields are refused by name before
// their value is read, values larger than their field allows are refused as soon as they are,
// and malformed JSON is reported with its line and column.
//
// A small body (the usual request: a model, a prompt, a few settings) whose length is known is
// read whole and, when it is a valid JSON object without image references, taken apart in one
// pass (decodeSmallJSON); anything else, or any problem, goes the streaming way, which says
// what is wrong.
func decodeJSON(r *http.Request, op providers.Operation, maxImageBytes int64) (*apiRequest, error) {
	if err := requireType(r, "application/json"); err != nil {
		return nil, err
	}
	var body io.Reader = r.Body
	if 0 < r.ContentLength && r.ContentLength <= maxSmallJSON {
		buf := make([]byte, r.ContentLength)
		n, err := io.ReadFull(r.Body, buf)
		if err == nil {
			if req, ok, err := decodeSmallJSON(buf, op); ok {
				return req, err
			}
		}
		body = io.MultiReader(bytes.NewReader(buf[:n]), r.Body)
	}
	return decodeJSONStream(body, op, maxImageBytes)
}

// maxSmallJSON is the largest body decodeSmallJSON takes.
const maxSmallJSON = 16 << 10

// decodeSmallJSON decodes a whole body that is a valid JSON object whose values are not image
// references, as decodeJSONStream would. ok is false for any other body, which it leaves to
// decodeJSONStream, for its error messages or its handling of image references.
func decodeSmallJSON(buf []byte, op providers.Operation) (_ *apiRequest, ok bool, _ error) {
	if !json.Valid(buf) {
		return nil, false, nil
	}
	i := jsonscan.SkipSpace(buf, 0)
	if buf[i] != '{' {
		return nil, false, nil
	}
	req := &apiRequest{Op: op}
	var seenKeys [16]string
	seen := seenKeys[:0]
	var err error
	ok = jsonscan.Members(buf, i, func(name, value []byte) bool {
		k, known := fieldNames[string(name)]
		switch {
		case known:
		case plainKey(name):
			k = string(name)
		default: // escapes, or bytes encoding/json replaces
			var unquoted string // its own variable: &k would put k on the heap for every key
			if json.Unmarshal(append(append([]byte{'"'}, name...), '"'), &unquoted) != nil {
				return false
			}
			k = unquoted
		}
		switch {
		case !req.knows(k):
			err = &providers.Error{Kind: providers.KindInvalidRequest, Param: k, Code: "unknown_parameter",
				Message: fmt.Sprintf("Unknown parameter: '%s'.", k)}
		case slices.Contains(seen, k):
			err = badParam(k, "The parameter '%s' is given more than once.", k)
		case k == "image":
			return false
		default:
			seen = append(seen, k)
			_, err = req.set(k, json.RawMessage(value))
		}
		return err == nil
	})
	if err != nil {
		return nil, true, err
	}
	if !ok {
		return nil, false, nil
	}
	return req, true, nil
}

// plainKey reports whether a key's bytes are its text: printable ASCII without escapes.
func plainKey(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// decodeJSONStream decodes a JSON body as a stream (see decodeJSON).
func decodeJSONStream(body io.Reader, op providers.Operation, maxImageBytes int64) (*apiRequest, error) {
	cr := &countingReader{r: body}
	dec := json.NewDecoder(cr)
	dec.UseNumber()
	// Token's syntax errors point at the offending byte, Decode's just past it.
	fail := func(err error) error { return cr.syntaxError(err, 0) }
	failValue := func(err error) error { return cr.syntaxError(err, 1) }
	cr.allow(dec, maxTextField)
	tok, err := dec.Token()
	if err != nil {
		return nil, fail(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, badParam("", "The request body must be a JSON object.")
	}
	req := &apiRequest{Op: op}
	seen := map[string]bool{}
	for {
		cr.allow(dec, maxTextField)
		if !dec.More() {
			break
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		k, _ := tok.(string)
		if !req.knows(k) {
			return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: k, Code: "unknown_parameter",
				Message: fmt.Sprintf("Unknown parameter: '%s'.", k)}
		}
		if seen[k] {
			return nil, badParam(k, "The parameter '%s' is given more than once.", k)
		}
		seen[k] = true
		if k == "image" {
			// Image references are read one string at a time, each within its own cap, and kept
			// as strings: no raw copy of a value that may be tens of MB.
			refs, err := decodeRefs(dec, cr, refCap(maxImageBytes))
			if err != nil {
				return nil, err
			}
			req.ImageRefs = append(req.ImageRefs, refs...)
			continue
		}
		limit := int64(maxTextField)
		tooLarge := func() error {
			return &providers.Error{Kind: providers.KindTooLarge, Param: k,
				Message: fmt.Sprintf("The value of '%s' exceeds the limit of %d bytes.", k, limit)}
		}
		cr.allow(dec, limit)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, errFieldTooLarge) {
				return nil, tooLarge()
			}
			return nil, failValue(err)
		}
		if int64(len(raw)) > limit {
			return nil, tooLarge()
		}
		if _, err := req.set(k, raw); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fail(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badParam("", "We could not parse the JSON body of your request: unexpected data after the JSON object.")
	}
	if len(req.ImageRefs) > maxImageRefs {
		return nil, badParam("image", "At most %d images may be given.", maxImageRefs)
	}
	return req, nil
}

// decodeRefs reads the value of "image": one string, or an array of at most maxImageRefs strings,
// each at most limit bytes.
func decodeRefs(dec *json.Decoder, cr *countingReader, limit int64) ([]string, error) {
	tooLarge := &providers.Error{Kind: providers.KindTooLarge, Param: "image",
		Message: fmt.Sprintf("An image reference exceeds the limit of %d bytes.", limit)}
	badType := badParam("image", "Invalid type for 'image': expected a URL or data URI, or an array of them.")
	next := func() (json.Token, error) {
		cr.allow(dec, limit)
		tok, err := dec.Token()
		switch {
		case errors.Is(err, errFieldTooLarge):
			return nil, tooLarge
		case err != nil:
			return nil, cr.syntaxError(err, 0)
		}
		return tok, nil
	}
	tok, err := next()
	if err != nil {
		return nil, err
	}
	if one, ok := tok.(string); ok {
		return []string{one}, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, badType
	}
	var refs []string
	for {
		tok, err := next()
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return refs, nil
		}
		ref, ok := tok.(string)
		if !ok {
			return nil, badType
		}
		if len(refs) == maxImageRefs {
			return nil, badParam("image", "At most %d images may be given.", maxImageRefs)
		}
		refs = append(refs, ref)
	}
}

// fieldNames maps each field name apiRequest.set takes to itself: a lookup with the bytes of a
// name gives its string without making one.
var fieldNames = func() map[string]string {
	m := map[string]string{}
	for _, k := range append([]string{"model", "prompt", "n", "size", "quality", "style", "response_format", "user",
		"background", "output_format", "output_compression", "moderation", "negative_prompt", "seed", "steps",
		"guidance_scale", "width", "height", "aspect_ratio", "strength", "prompt_enhancement", "map_nearest",
		"stream", "partial_images", "image", "extra"}, extensionFields...) {
		m[k] = k
	}
	return m
}()

// knows reports whether key is a field apiRequest.set takes.
func (r *apiRequest) knows(key string) bool {
	_, ok := fieldNames[key]
	return ok
}

// countingReader counts the bytes read from a request body and where its first lines end (for
// line and column in syntax errors), and stops reading at a limit set before each token.
type countingReader struct {
	r        io.Reader
	n        int64
	limit    int64   // reading past this offset fails with errFieldTooLarge
	newlines []int64 // offsets of the first maxNewlines newlines
}

// allow lets the decoder read the next n bytes of input after what it has consumed (plus a
// little for the look-ahead a number needs to end).
func (c *countingReader) allow(dec *json.Decoder, n int64) {
	c.limit = dec.InputOffset() + n + 64
}

const maxNewlines = 4096

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		return 0, errFieldTooLarge
	}
	p = p[:min(int64(len(p)), c.limit-c.n)]
	n, err := c.r.Read(p)
	if len(c.newlines) < maxNewlines {
		for i, b := range p[:n] {
			if b == '\n' && len(c.newlines) < maxNewlines {
				c.newlines = append(c.newlines, c.n+int64(i))
			}
		}
	}
	c.n += int64(n)
	return n, err
}

var errFieldTooLarge = errors.New("field too large")

// syntaxError turns a decoding error into the client's 400 (or 413 when the body cap was hit).
func (c *countingReader) syntaxError(err error, past int64) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var off int64
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		return badParam("", "The request body must be a JSON object.")
	case errors.Is(err, io.EOF) && c.n == 0:
		return badParam("", "The request body is empty; send a JSON object.")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		off = c.n
	case errors.Is(err, errFieldTooLarge):
		return &providers.Error{Kind: providers.KindTooLarge, Message: fmt.Sprintf("A name or value in the request body exceeds %d bytes.", maxTextField)}
	default: // the body could not be read (or exceeds the server's cap)
		return bodyError(err)
	}
	at := max(off-past, 0)
	line, lineStart := int64(1), int64(0)
	for _, nl := range c.newlines {
		if nl >= at {
			break
		}
		line, lineStart = line+1, nl+1
	}
	if len(c.newlines) == maxNewlines && c.newlines[maxNewlines-1] < at {
		return badParam("", "We could not parse the JSON body of your request: malformed JSON at byte %d.", off)
	}
	return badParam("", "We could not parse the JSON body of your request: malformed JSON at line %d, column %d (byte %d).", line, at-lineStart+1, off)
}

func requireType(r *http.Request, want string) error {
	ct := r.Header.Get("Content-Type")
	if ct == want {
		return nil // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		got := r.Header.Get("Content-Type")
		if got == "" {
			got = "none"
		}
		return &providers.Error{Kind: providers.KindInvalidRequest, Code: "unsupported_media_type",
			Message: fmt.Sprintf("Invalid Content-Type %q: this endpoint takes %s.", got, want), Err: errUnsupportedMediaType}
	}
	return nil
}

var errUnsupportedMediaType = errors.New("unsupported media type")

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &providers.Error{Kind: providers.KindTooLarge, Message: fmt.Sprintf("The request body exceeds the limit of %d bytes.", mbe.Limit)}
	}
	return &providers.Error{Kind: providers.KindInvalidRequest, Message: "The request body could not be read.", Err: err}
}

// decodeMultipart reads a multipart edit, variation or extension-operation body. File parts:
// image / image[] (the source images, in order), mask, style_reference_images / style_reference_images[].
// Text parts carry the same fields as JSON, as text.
func decodeMultipart(r *http.Request, op providers.Operation, maxImageBytes int64) (*apiRequest, error) {
	if err := requireType(r, "multipart/form-data"); err != nil {
		return nil, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badParam("", "The multipart body is malformed: %v.", err)
	}
	req := &apiRequest{Op: op}
	var styleRefs []upload
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if be := bodyError(err); providers.KindOf(be) == providers.KindTooLarge {
				return nil, be
			}
			return nil, badParam("", "The multipart body is malformed: %v.", err)
		}
		name := p.FormName()
		if p.FileName() != "" || name == "image" || name == "image[]" || name == "mask" {
			// The part's name is checked before its bytes are read.
			switch name {
			case "image", "image[]", "mask", "style_reference_images", "style_reference_images[]":
			default:
				return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: name, Code: "unknown_parameter",
					Message: fmt.Sprintf("Unknown file parameter: '%s'.", name)}
			}
			if name == "mask" && req.Mask != nil {
				return nil, badParam(name, "Only one 'mask' may be given.")
			}
			if len(req.Files)+len(styleRefs) >= maxImageRefs {
				return nil, badParam(name, "At most %d images may be given.", maxImageRefs)
			}
			data, err := readCapped(p, maxImageBytes)
			if err != nil {
				return nil, err
			}
			u := upload{field: name, filename: p.FileName(), contentType: p.Header.Get("Content-Type"), data: data}
			switch name {
			case "image", "image[]":
				req.Files = append(req.Files, u)
			case "mask":
				req.Mask = &u
			default:
				styleRefs = append(styleRefs, u)
			}
			continue
		}
		if !req.knows(name) {
			return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: name, Code: "unknown_parameter",
				Message: fmt.Sprintf("Unknown parameter: '%s'.", name)}
		}
		v, err := readCapped(p, maxTextField)
		if err != nil {
			return nil, err
		}
		known, err := req.set(name, textToJSON(name, string(v)))
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: name, Code: "unknown_parameter",
				Message: fmt.Sprintf("Unknown parameter: '%s'.", name)}
		}
	}
	if len(styleRefs) > 0 {
		req.setExtra("style_reference_images", json.RawMessage(strconv.Itoa(len(styleRefs))))
		req.Files = append(req.Files, styleRefs...)
	}
	return req, nil
}

// stringFields are taken verbatim from multipart text; others are parsed as JSON values
// (numbers, booleans, objects) and fall back to a string.
var stringFields = map[string]bool{
	"model": true, "prompt": true, "size": true, "quality": true, "style": true, "response_format": true,
	"user": true, "background": true, "output_format": true, "moderation": true, "negative_prompt": true,
	"aspect_ratio": true, "image": true, "rendering_speed": true, "magic_prompt": true, "style_type": true,
	"style_preset": true, "resolution": true, "describe_model_version": true, "mask_format": true, "input_fidelity": true,
}

func textToJSON(name, v string) json.RawMessage {
	if !stringFields[name] {
		t := strings.TrimSpace(v)
		if json.Valid([]byte(t)) && t != "" && t[0] != '"' {
			return json.RawMessage(t)
		}
	}
	b, _ := json.Marshal(v)
	return b
}

func readCapped(p *multipart.Part, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, max+1))
	if err != nil {
		if be := bodyError(err); providers.KindOf(be) == providers.KindTooLarge {
			return nil, be
		}
		return nil, badParam(p.FormName(), "The multipart part '%s' could not be read: %v.", p.FormName(), err)
	}
	if int64(len(b)) > max {
		return nil, &providers.Error{Kind: providers.KindTooLarge, Param: p.FormName(),
			Message: fmt.Sprintf("The part '%s' exceeds the limit of %d bytes.", p.FormName(), max)}
	}
	return b, nil
}
