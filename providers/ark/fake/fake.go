package fake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arkfake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-ark"

// DefaultURLTTL is the real lifetime of Ark's image URLs: 24 hours.
const DefaultURLTTL = 24 * time.Hour

// GenerationsPath is the API path the fake serves (the real base URL ends in /api/v3).
const GenerationsPath = "/api/v3/images/generations"

// Options configure a Fake: the key it accepts (DefaultKey when empty), the public URL its image
// URLs start with, their lifetime (DefaultURLTTL when zero), its clock and an added latency. The
// fields are documented on arkfake.Options, which the Modelverse fake shares.
type Options = arkfake.Options

// Recorded is an API call as the fake received it.
type Recorded = arkfake.Recorded

// Fake is a strict fake of Ark's image generation API.
type Fake struct {
	// Script holds faults applied to requests before the fake sees them.
	Script *providertest.Script

	srv *arkfake.Server
}

// New returns a fake configured by o.
func New(o Options) *Fake {
	return &Fake{Script: &providertest.Script{}, srv: arkfake.New(o, DefaultKey, DefaultURLTTL)}
}

// ServeHTTP applies the fault script, then answers as Ark would.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.Script.Wrap(http.HandlerFunc(f.route)).ServeHTTP(w, r)
}

// LastRequest returns the last API call received (zero before the first).
func (f *Fake) LastRequest() Recorded { return f.srv.LastRequest() }

func (f *Fake) route(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == GenerationsPath:
		f.generate(w, r)
	case strings.HasPrefix(r.URL.Path, "/fake-tos/"):
		f.serveImage(w, r)
	default:
		arkError(w, http.StatusNotFound, "NotFound", "InvalidEndpointOrModel.NotFound", "",
			"The requested resource was not found.", newID())
	}
}

// arkError writes Ark's error envelope; the request id ends the message as it does upstream.
func arkError(w http.ResponseWriter, status int, typ, code, param, msg, id string) {
	arkfake.WriteJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": msg + " Request id: " + id, "param": param, "type": typ}})
}

// refuse is Ark's answer to a request that fails the checks every request passes.
func refuse(w http.ResponseWriter, id string, why arkfake.Refusal, detail string) {
	switch why {
	case arkfake.BadMethod:
		arkError(w, http.StatusMethodNotAllowed, "BadRequest", "MethodNotAllowed", "", "The method is not allowed.", id)
	case arkfake.BadKey:
		arkError(w, http.StatusUnauthorized, "Unauthorized", "AuthenticationError", "",
			"The API key or AK/SK in the request is missing or invalid.", id)
	case arkfake.NotJSON:
		arkError(w, http.StatusBadRequest, "BadRequest", "InvalidParameter", "",
			"The request failed because the request body is not valid JSON (Content-Type must be application/json).", id)
	case arkfake.TooLarge:
		arkError(w, http.StatusRequestEntityTooLarge, "BadRequest", "InvalidParameter", "", "The request body is too large.", id)
	case arkfake.WrongType:
		invalid(w, id, detail, "the value has the wrong type")
	case arkfake.UnknownField:
		invalid(w, id, strings.Trim(detail, `"`), "unknown parameter")
	default:
		arkError(w, http.StatusBadRequest, "BadRequest", "InvalidParameter", "", "The request body is not valid JSON.", id)
	}
}

// invalid writes a 400 InvalidParameter naming param.
func invalid(w http.ResponseWriter, id, param, detail string) {
	arkError(w, http.StatusBadRequest, "BadRequest", "InvalidParameter", param,
		fmt.Sprintf("The parameter `%s` specified in the request is not valid: %s.", param, detail), id)
}

// invalidQuiet is invalid with empty param and type, as Ark answers some size errors [S31, S32].
func invalidQuiet(w http.ResponseWriter, id, param, detail string) {
	arkError(w, http.StatusBadRequest, "", "InvalidParameter", "",
		fmt.Sprintf("The parameter `%s` specified in the request is not valid: %s.", param, detail), id)
}

// notSupported is Ark's answer to a parameter the model does not take [S39, S44].
func notSupported(w http.ResponseWriter, id, param string) {
	invalid(w, id, param, fmt.Sprintf("the parameter `%s` is not supported by the current model", param))
}

// genRequest is the request body; unknown fields are refused.
type genRequest struct {
	Model                            string          `json:"model"`
	Prompt                           string          `json:"prompt"`
	Image                            json.RawMessage `json:"image"`
	ResponseFormat                   string          `json:"response_format"`
	Size                             string          `json:"size"`
	Seed                             *int64          `json:"seed"`
	GuidanceScale                    *float64        `json:"guidance_scale"`
	Watermark                        *bool           `json:"watermark"`
	OutputFormat                     string          `json:"output_format"`
	SequentialImageGeneration        string          `json:"sequential_image_generation"`
	SequentialImageGenerationOptions *struct {
		MaxImages *int `json:"max_images"`
	} `json:"sequential_image_generation_options"`
	OptimizePromptOptions *struct {
		Mode     string `json:"mode"`
		Thinking string `json:"thinking"`
	} `json:"optimize_prompt_options"`
	Stream *bool `json:"stream"`
}

// item is one data entry of the answer.
type item struct {
	URL     string            `json:"url,omitempty"`
	B64JSON string            `json:"b64_json,omitempty"`
	Size    string            `json:"size,omitempty"`
	Error   map[string]string `json:"error,omitempty"`
}

func (f *Fake) generate(w http.ResponseWriter, r *http.Request) {
	body, err := f.srv.Record(r)
	id := r.Header.Get("X-Client-Request-Id")
	if id == "" {
		id = newID()
	}
	w.Header().Set("X-Client-Request-Id", id)
	if err != nil {
		return
	}
	var req genRequest
	if !f.srv.Check(w, r, body, &req, func(why arkfake.Refusal, detail string) { refuse(w, id, why, detail) }) {
		return
	}
	if req.Model == "" {
		arkError(w, http.StatusBadRequest, "BadRequest", "MissingParameter", "model",
			"The request failed because it is missing one or multiple required parameters: model.", id)
		return
	}
	spec, ok := specs[req.Model]
	if !ok {
		arkError(w, http.StatusNotFound, "NotFound", "InvalidEndpointOrModel.NotFound", "",
			fmt.Sprintf("The model or endpoint %s does not exist or you do not have access to it.", req.Model), id)
		return
	}
	if strings.TrimSpace(req.Prompt) == "" {
		arkError(w, http.StatusBadRequest, "BadRequest", "MissingParameter", "prompt",
			"The request failed because it is missing one or multiple required parameters: prompt.", id)
		return
	}
	p, ok := spec.check(w, id, &req)
	if !ok {
		return
	}
	switch {
	case strings.Contains(req.Prompt, "fake:sensitive-input"):
		arkError(w, http.StatusBadRequest, "BadRequest", "InputTextSensitiveContentDetected", "",
			"The request failed because the input text may contain sensitive information.", id)
		return
	case strings.Contains(req.Prompt, "fake:sensitive-output"):
		arkError(w, http.StatusBadRequest, "BadRequest", "OutputImageSensitiveContentDetected", "",
			"The request failed because the output image may contain sensitive information.", id)
		return
	}
	if !f.srv.Wait(r) {
		return
	}
	now := f.srv.Now()
	base := f.srv.Base(r)
	format := "jpeg"
	if req.OutputFormat == "png" {
		format = "png"
	}
	var data []item
	var pixels int64
	for i := range p.count {
		ref := imageRef{Seed: arkfake.ImageSeed(req.Seed, i), W: p.w, H: p.h, Format: format}
		if i == p.count-1 && strings.Contains(req.Prompt, "fake:partial-fail") {
			data = append(data, item{Error: map[string]string{"code": "OutputImageSensitiveContentDetected",
				"message": "The request failed because the output image may contain sensitive information."}})
			continue
		}
		it := item{Size: fmt.Sprintf("%dx%d", p.w, p.h)}
		if req.ResponseFormat == "b64_json" {
			it.B64JSON = encodeB64(render(ref.Seed, ref.W, ref.H, ref.Format))
		} else {
			it.URL = f.imageURL(base, req.Model, ref, now)
		}
		data = append(data, it)
		pixels += int64(p.w) * int64(p.h)
	}
	tokens := int64(math.Round(float64(pixels) / 256))
	resp := map[string]any{
		"model":   req.Model,
		"created": now.Unix(),
		"data":    data,
		"usage":   map[string]int64{"generated_images": int64(len(data) - countErrors(data)), "output_tokens": tokens, "total_tokens": tokens},
	}
	arkfake.WriteJSON(w, http.StatusOK, resp)
}

func countErrors(data []item) int {
	n := 0
	for _, d := range data {
		if d.Error != nil {
			n++
		}
	}
	return n
}

// newID returns a request id in Ark's style (a long hex string).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "0217" + hex.EncodeToString(b[:])
}
