package fake

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-ark"

// DefaultURLTTL is the real lifetime of Ark's image URLs: 24 hours.
const DefaultURLTTL = 24 * time.Hour

// GenerationsPath is the API path the fake serves (the real base URL ends in /api/v3).
const GenerationsPath = "/api/v3/images/generations"

// maxRequestBytes caps a request body (inline images make them large).
const maxRequestBytes = 64 << 20

// Options configure a Fake.
type Options struct {
	// APIKey is the only key accepted; "" means DefaultKey.
	APIKey string
	// PublicURL is the absolute URL where this fake is reachable (for example
	// "http://127.0.0.1:9090/ark"); it is the base of the image URLs the fake returns. "" derives
	// it from the request's Host and the path prefix stripped in front of the fake.
	PublicURL string
	// URLTTL is how long image URLs stay valid; 0 means DefaultURLTTL.
	URLTTL time.Duration
	// Now is the fake's clock; nil means time.Now.
	Now func() time.Time
	// Latency is added to every generation.
	Latency time.Duration
}

// Recorded is an API call as the fake received it.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Fake is a strict fake of Ark's image generation API.
type Fake struct {
	// Script holds faults applied to requests before the fake sees them.
	Script *providertest.Script

	key       string
	publicURL string
	ttl       time.Duration
	now       func() time.Time
	latency   time.Duration
	secret    []byte
	seq       atomic.Uint64

	mu   sync.Mutex
	last Recorded
}

// New returns a fake configured by o.
func New(o Options) *Fake {
	f := &Fake{Script: &providertest.Script{}, key: o.APIKey, publicURL: strings.TrimRight(o.PublicURL, "/"),
		ttl: o.URLTTL, now: o.Now, latency: o.Latency, secret: make([]byte, 32)}
	if f.key == "" {
		f.key = DefaultKey
	}
	if f.ttl <= 0 {
		f.ttl = DefaultURLTTL
	}
	if f.now == nil {
		f.now = time.Now
	}
	_, _ = rand.Read(f.secret)
	return f
}

// ServeHTTP applies the fault script, then answers as Ark would.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.Script.Wrap(http.HandlerFunc(f.route)).ServeHTTP(w, r)
}

// LastRequest returns the last API call received (zero before the first).
func (f *Fake) LastRequest() Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.last
	rec.Header = rec.Header.Clone()
	rec.Body = bytes.Clone(rec.Body)
	return rec
}

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
	body, _ := json.Marshal(map[string]any{"error": map[string]string{
		"code": code, "message": msg + " Request id: " + id, "param": param, "type": typ}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
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
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	f.mu.Lock()
	f.last = Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	f.mu.Unlock()
	id := r.Header.Get("X-Client-Request-Id")
	if id == "" {
		id = newID()
	}
	w.Header().Set("X-Client-Request-Id", id)
	if err != nil {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		arkError(w, http.StatusMethodNotAllowed, "BadRequest", "MethodNotAllowed", "", "The method is not allowed.", id)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		arkError(w, http.StatusUnauthorized, "Unauthorized", "AuthenticationError", "",
			"The API key or AK/SK in the request is missing or invalid.", id)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		arkError(w, http.StatusBadRequest, "BadRequest", "InvalidParameter", "",
			"The request failed because the request body is not valid JSON (Content-Type must be application/json).", id)
		return
	}
	if len(body) > maxRequestBytes {
		arkError(w, http.StatusRequestEntityTooLarge, "BadRequest", "InvalidParameter", "", "The request body is too large.", id)
		return
	}
	var req genRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			invalid(w, id, te.Field, "the value has the wrong type")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			invalid(w, id, name, "unknown parameter")
		default:
			arkError(w, http.StatusBadRequest, "BadRequest", "InvalidParameter", "", "The request body is not valid JSON.", id)
		}
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
	if f.latency > 0 {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	now := f.now()
	base := f.base(r)
	seed := int64(-1)
	if req.Seed != nil {
		seed = *req.Seed
	}
	format := "jpeg"
	if req.OutputFormat == "png" {
		format = "png"
	}
	var data []item
	var pixels int64
	for i := range p.count {
		s := seed
		if s < 0 {
			s = mrand.Int64N(2147483648)
		} else {
			s += int64(i)
		}
		ref := imageRef{Seed: s, W: p.w, H: p.h, Format: format}
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
	out, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
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

// base is the absolute URL the fake is reachable at.
func (f *Fake) base(r *http.Request) string {
	if f.publicURL != "" {
		return f.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		prefix = strings.TrimSuffix(u.Path, r.URL.Path)
	}
	return scheme + "://" + r.Host + prefix
}

// newID returns a request id in Ark's style (a long hex string).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "0217" + hex.EncodeToString(b[:])
}
