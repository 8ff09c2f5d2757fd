package fake

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
const DefaultKey = "sk-fake-modelverse"

// DefaultURLTTL is the real lifetime of Modelverse's FLUX/Kontext/Step1X image URLs: 7 days.
const DefaultURLTTL = 7 * 24 * time.Hour

// GenerationsPath is the API path the fake serves (the real base URL ends in /v1).
const GenerationsPath = "/v1/images/generations"

// maxRequestBytes caps a request body (inline images make them large).
const maxRequestBytes = 64 << 20

// Options configure a Fake.
type Options struct {
	// APIKey is the only key accepted; "" means DefaultKey.
	APIKey string
	// PublicURL is the absolute URL where this fake is reachable (for example
	// "http://127.0.0.1:9090/modelverse"); it is the base of the image URLs the fake returns. ""
	// derives it from the request's Host and the path prefix stripped in front of the fake.
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

// Fake is a strict fake of Modelverse's image generation API.
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

// ServeHTTP applies the fault script, then answers as Modelverse would.
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
	case strings.HasPrefix(r.URL.Path, "/image/"):
		f.serveImage(w, r)
	default:
		mvError(w, http.StatusNotFound, "invalid_request_error", "not_found", "Not Found", newID())
	}
}

// mvError writes Modelverse's error envelope, with the request id in param.
func mvError(w http.ResponseWriter, status int, typ, code, msg, id string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{
		"message": msg, "type": typ, "param": id, "code": code}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
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
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	f.mu.Lock()
	f.last = Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	f.mu.Unlock()
	if err != nil {
		return
	}
	id := newID()
	w.Header().Set("X-Request-Id", id)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		mvError(w, http.StatusMethodNotAllowed, "invalid_request_error", "param_error", "Method Not Allowed", id)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		mvError(w, http.StatusUnauthorized, "invalid_request_error", "auth_error", "Validate Certification failed", id)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		paramError(w, id, "the body must be application/json")
		return
	}
	if len(body) > maxRequestBytes {
		mvError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "param_error", "Request Entity Too Large", id)
		return
	}
	var req genRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			paramError(w, id, te.Field+" has the wrong type")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			paramError(w, id, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			paramError(w, id, "the body is not valid JSON")
		}
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
	data := make([]map[string]string, 0, p.count)
	for i := range p.count {
		s := int64(-1)
		if req.Seed != nil {
			s = *req.Seed
		}
		if s < 0 {
			s = mrand.Int64N(2147483648)
		} else {
			s += int64(i)
		}
		ref := imageRef{Seed: s, W: p.w, H: p.h}
		if req.ResponseFormat == "b64_json" {
			data = append(data, map[string]string{"b64_json": "data:image/png;base64," + base64.StdEncoding.EncodeToString(render(s, p.w, p.h))})
		} else {
			data = append(data, map[string]string{"url": f.imageURL(base, ref, now)})
		}
	}
	out, _ := json.Marshal(map[string]any{
		"created": now.Unix(),
		"data":    data,
		"usage":   map[string]any{"input_tokens_details": map[string]any{}},
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
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

// newID returns a request id in the docs' UUID form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
