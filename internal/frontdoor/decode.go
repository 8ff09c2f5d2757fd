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
	"sort"
	"strconv"
	"strings"

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
	"watermark", "cfg", "input_fidelity", "partial_images",
}

// set assigns one field. It reports false for a name it does not know.
func (r *apiRequest) set(key string, raw json.RawMessage) (bool, error) {
	var err error
	switch key {
	case "model":
		err = json.Unmarshal(raw, &r.Model)
	case "prompt":
		err = json.Unmarshal(raw, &r.Prompt)
	case "n":
		err = json.Unmarshal(raw, &r.N)
	case "size":
		err = json.Unmarshal(raw, &r.Size)
	case "quality":
		err = json.Unmarshal(raw, &r.Quality)
	case "style":
		err = json.Unmarshal(raw, &r.Style)
	case "response_format":
		err = json.Unmarshal(raw, &r.ResponseFormat)
	case "user":
		err = json.Unmarshal(raw, &r.User)
	case "background":
		err = json.Unmarshal(raw, &r.Background)
	case "output_format":
		err = json.Unmarshal(raw, &r.OutputFormat)
	case "output_compression":
		err = json.Unmarshal(raw, &r.OutputCompression)
	case "moderation":
		err = json.Unmarshal(raw, &r.Moderation)
	case "negative_prompt":
		err = json.Unmarshal(raw, &r.NegativePrompt)
	case "seed":
		err = json.Unmarshal(raw, &r.Seed)
	case "steps":
		err = json.Unmarshal(raw, &r.Steps)
	case "guidance_scale":
		err = json.Unmarshal(raw, &r.GuidanceScale)
	case "width":
		err = json.Unmarshal(raw, &r.Width)
	case "height":
		err = json.Unmarshal(raw, &r.Height)
	case "aspect_ratio":
		err = json.Unmarshal(raw, &r.AspectRatio)
	case "strength":
		err = json.Unmarshal(raw, &r.Strength)
	case "prompt_enhancement":
		err = json.Unmarshal(raw, &r.PromptEnhancement)
	case "map_nearest":
		err = json.Unmarshal(raw, &r.MapNearest)
	case "stream":
		err = json.Unmarshal(raw, &r.Stream)
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

// decodeJSON reads a JSON generation body. Unknown fields are refused by name; malformed JSON is
// reported with its line and column.
func decodeJSON(r *http.Request, op providers.Operation) (*apiRequest, error) {
	if err := requireType(r, "application/json"); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return nil, syntaxError(body, err)
	}
	if dec.More() {
		return nil, badParam("", "We could not parse the JSON body of your request: unexpected data after the JSON object.")
	}
	if fields == nil {
		return nil, badParam("", "The request body must be a JSON object.")
	}
	req := &apiRequest{Op: op}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known, err := req.set(k, fields[k])
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: k, Code: "unknown_parameter",
				Message: fmt.Sprintf("Unknown parameter: '%s'.", k)}
		}
	}
	return req, nil
}

func syntaxError(body []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var off int64 = -1
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		return badParam("", "The request body must be a JSON object.")
	case errors.Is(err, io.EOF):
		return badParam("", "The request body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		off = int64(len(body))
	}
	if off < 0 {
		return badParam("", "We could not parse the JSON body of your request.")
	}
	line, col := 1, 1
	// The offset is just past the offending byte; point at the byte itself.
	for _, c := range body[:min(max(int(off)-1, 0), len(body))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return badParam("", "We could not parse the JSON body of your request: malformed JSON at line %d, column %d (byte %d).", line, col, off)
}

func requireType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
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
			case "style_reference_images", "style_reference_images[]":
				styleRefs = append(styleRefs, u)
			default:
				return nil, &providers.Error{Kind: providers.KindInvalidRequest, Param: name, Code: "unknown_parameter",
					Message: fmt.Sprintf("Unknown file parameter: '%s'.", name)}
			}
			continue
		}
		v, err := readCapped(p, 1<<20)
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
