package fake

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arkfake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-modelverse"

// DefaultURLTTL is the real lifetime of Modelverse's FLUX/Kontext/Step1X image URLs: 7 days.
const DefaultURLTTL = 7 * 24 * time.Hour

// GenerationsPath is the API path the fake serves (the real base URL ends in /v1).
const GenerationsPath = "/v1/images/generations"

// Options configure a Fake: the key it accepts (DefaultKey when empty), the public URL its image
// URLs start with, their lifetime (DefaultURLTTL when zero), its clock and an added latency. The
// fields are documented on arkfake.Options, which the Ark fake shares.
type Options = arkfake.Options

// Recorded is an API call as the fake received it.
type Recorded = arkfake.Recorded

// Fake is a strict fake of Modelverse's image generation API.
type Fake struct {
	// Script holds faults applied to requests before the fake sees them.
	Script *providertest.Script

	srv *arkfake.Server
}

// New returns a fake configured by o.
func New(o Options) *Fake {
	return &Fake{Script: &providertest.Script{}, srv: arkfake.New(o, DefaultKey, DefaultURLTTL)}
}

// ServeHTTP applies the fault script, then answers as Modelverse would.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.Script.Wrap(http.HandlerFunc(f.route)).ServeHTTP(w, r)
}

// LastRequest returns the last API call received (zero before the first).
func (f *Fake) LastRequest() Recorded { return f.srv.LastRequest() }

func (f *Fake) route(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == GenerationsPath:
		f.generate(w, r)
	case strings.HasPrefix(r.URL.Path, "/image/"):
		f.serveImage(w, r)
	default:
		mvError(w, http.StatusNotFound, "invalid_request_error", "not_found", "Not Found", newID())
	}
}

// mvError writes Modelverse's error envelope, with the request id in param.
func mvError(w http.ResponseWriter, status int, typ, code, msg, id string) {
	arkfake.WriteJSON(w, status, map[string]any{"error": map[string]string{
		"message": msg, "type": typ, "param": id, "code": code}})
}

// refuse is Modelverse's answer to a request that fails the checks every request passes.
func refuse(w http.ResponseWriter, id string, why arkfake.Refusal, detail string) {
	switch why {
	case arkfake.BadMethod:
		mvError(w, http.StatusMethodNotAllowed, "invalid_request_error", "param_error", "Method Not Allowed", id)
	case arkfake.BadKey:
		mvError(w, http.StatusUnauthorized, "invalid_request_error", "auth_error", "Validate Certification failed", id)
	case arkfake.NotJSON:
		paramError(w, id, "the body must be application/json")
	case arkfake.TooLarge:
		mvError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "param_error", "Request Entity Too Large", id)
	case arkfake.WrongType:
		paramError(w, id, detail+" has the wrong type")
	case arkfake.UnknownField:
		paramError(w, id, "unknown field "+detail)
	default:
		paramError(w, id, "the body is not valid JSON")
	}
}

// paramError is the 400 param_error ("Invalid param") with a detail for people reading logs.
func paramError(w http.ResponseWriter, id, detail string) {
	mvError(w, http.StatusBadRequest, "invalid_request_error", "param_error", "Invalid param: "+detail, id)
}

// genRequest is the request body; unknown fields are refused.
type genRequest struct {
	Model          string   `json:"model"`
	Prompt         string   `json:"prompt"`
	N              *int     `json:"n"`
	Image          *string  `json:"image"`
	Images         []string `json:"images"`
	ResponseFormat string   `json:"response_format"`
	Size           *string  `json:"size"`
	Strength       *float64 `json:"strength"`
	AspectRatio    *string  `json:"aspect_ratio"`
	Steps          *int     `json:"steps"`
	Seed           *int64   `json:"seed"`
	GuidanceScale  *float64 `json:"guidance_scale"`
	NegativePrompt *string  `json:"negative_prompt"`
}

func (f *Fake) generate(w http.ResponseWriter, r *http.Request) {
	body, err := f.srv.Record(r)
	if err != nil {
		return
	}
	id := newID()
	w.Header().Set("X-Request-Id", id)
	var req genRequest
	if !f.srv.Check(w, r, body, &req, func(why arkfake.Refusal, detail string) { refuse(w, id, why, detail) }) {
		return
	}
	if req.Model == "" {
		paramError(w, id, "model is required")
		return
	}
	fam, ok := specs[req.Model]
	if !ok {
		mvError(w, http.StatusBadRequest, "invalid_request_error", "model_error", "No permission to use the model", id)
		return
	}
	if strings.TrimSpace(req.Prompt) == "" {
		paramError(w, id, "prompt is required")
		return
	}
	p, detail := check(fam, &req)
	if detail != "" {
		paramError(w, id, detail)
		return
	}
	if strings.Contains(req.Prompt, "fake:sensitive") {
		mvError(w, http.StatusBadRequest, "invalid_request_error", "sensitive_check_error", "Sensitive words detected", id)
		return
	}
	if !f.srv.Wait(r) {
		return
	}
	now := f.srv.Now()
	base := f.srv.Base(r)
	data := make([]map[string]string, 0, p.count)
	for i := range p.count {
		s := arkfake.ImageSeed(req.Seed, i)
		ref := imageRef{Seed: s, W: p.w, H: p.h}
		if req.ResponseFormat == "b64_json" {
			data = append(data, map[string]string{"b64_json": "data:image/png;base64," + base64.StdEncoding.EncodeToString(render(s, p.w, p.h))})
		} else {
			data = append(data, map[string]string{"url": f.imageURL(base, ref, now)})
		}
	}
	arkfake.WriteJSON(w, http.StatusOK, map[string]any{
		"created": now.Unix(),
		"data":    data,
		"usage":   map[string]any{"input_tokens_details": map[string]any{}},
	})
}

// newID returns a request id in the docs' UUID form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
