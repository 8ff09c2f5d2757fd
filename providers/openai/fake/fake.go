package fake

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the OpenAI fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-openai"

// DefaultCompatibleKey is the API key the OpenAI-compatible fake accepts when Options.APIKey is empty.
const DefaultCompatibleKey = "sk-fake-openai-compatible"

// DefaultURLTTL is how long the OpenAI fake's image URLs live: dall-e's 60 minutes (PROVIDERS.md §5.4).
const DefaultURLTTL = 60 * time.Minute

// DefaultCompatibleURLTTL is how long the compatible fake's image URLs live. Seed 001 does not
// say; one hour is an assumption.
const DefaultCompatibleURLTTL = time.Hour

// ContentPolicyTrigger makes either fake refuse a prompt that contains it the way the real
// safety system does: content_policy_violation for dall-e and the compatible host,
// moderation_blocked for gpt-image.
const ContentPolicyTrigger = "[unsafe]"

// MaxRequestBytes caps a request body; a larger one is answered 413.
const MaxRequestBytes = 128 << 20

// Options configure a fake.
type Options struct {
	// APIKey is the only key accepted; "" means DefaultKey (DefaultCompatibleKey for NewCompatible).
	APIKey string
	// PublicURL is the absolute URL where this fake is reachable (for example
	// "http://127.0.0.1:9090/openai"); the image URLs it returns start with it. "" derives it
	// from the request's Host and any prefix http.StripPrefix removed.
	PublicURL string
	// URLTTL is how long image URLs work; 0 means the provider's real lifetime.
	URLTTL time.Duration
	// Now is the fake's clock; nil means time.Now.
	Now func() time.Time
	// Latency is added to every generation, edit and variation.
	Latency time.Duration
	// StreamPause, when set, runs before each event of a streamed answer is written, with the
	// event's name ("image_generation.partial_image", …): tests hold a stream there.
	StreamPause func(ctx context.Context, event string)
}

// Recorded is an API call as the fake received it.
type Recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Fake is a strict in-process imitation of OpenAI's Images API (New) or of an OpenAI-compatible
// host after seed 001 (NewCompatible). It is an http.Handler serving the provider's own paths
// (/v1/images/...) and the image URLs it hands out.
type Fake struct {
	// Script holds faults the next requests suffer before the fake answers (applied first).
	Script *providertest.Script

	o           Options
	compatible  bool
	ttl         time.Duration
	imagePrefix string
	secret      []byte
	ids         atomic.Uint64
	images      imageCache

	mu   sync.Mutex
	last Recorded
}

// New returns a fake of OpenAI's Images API: POST /v1/images/generations (JSON),
// /v1/images/edits and /v1/images/variations (multipart), and GET on its image URLs.
func New(o Options) *Fake {
	if o.APIKey == "" {
		o.APIKey = DefaultKey
	}
	return newFake(o, false, DefaultURLTTL, "/private/org-fake/user-fake")
}

// NewCompatible returns a fake of an OpenAI-compatible host after seed 001: POST
// /v1/images/generations (JSON) taking width/height or size, negative_prompt,
// num_inference_steps, guidance_scale and seed, for seed 001's models; and GET on its image URLs.
func NewCompatible(o Options) *Fake {
	if o.APIKey == "" {
		o.APIKey = DefaultCompatibleKey
	}
	return newFake(o, true, DefaultCompatibleURLTTL, "/files")
}

func newFake(o Options, compatible bool, ttl time.Duration, prefix string) *Fake {
	f := &Fake{Script: &providertest.Script{}, o: o, compatible: compatible, ttl: o.URLTTL, imagePrefix: prefix}
	if f.ttl <= 0 {
		f.ttl = ttl
	}
	f.secret = make([]byte, 32)
	_, _ = rand.Read(f.secret)
	return f
}

func (f *Fake) now() time.Time {
	if f.o.Now != nil {
		return f.o.Now()
	}
	return time.Now()
}

// LastRequest returns the last API call (not image download) the fake received, before any
// validation; the zero Recorded when there was none.
func (f *Fake) LastRequest() Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.last
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r
}

// bodyKey carries the request body, read before the Script runs.
type bodyKey struct{}

// readBody is a request body read up front (err is set when it was too large or cut short).
type readBody struct {
	data []byte
	err  error
}

// ServeHTTP applies the Script's faults, then answers as the real API would.
//
// The request body is read before the faults apply: net/http only notices that a client went
// away once the handler has read the body to its end, so a scripted delay would otherwise hold
// a canceled request (and the server's shutdown) for the full delay.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.Body != nil {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, &readBody{data: b, err: err}))
	}
	f.Script.Wrap(http.HandlerFunc(f.serve)).ServeHTTP(w, r)
}

// call is one API request being answered.
type call struct {
	r    *http.Request
	body []byte
	base string // public URL of the fake, for image URLs
	now  time.Time
}

type handler func(*call) (any, *apiError)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, f.imagePrefix+"/") {
		f.serveImage(w, r)
		return
	}
	var h handler
	switch r.URL.Path {
	case "/v1/images/generations":
		h = f.generations
		if f.compatible {
			h = f.compatibleGenerations
		}
	case "/v1/images/edits":
		if !f.compatible {
			h = f.edits
		}
	case "/v1/images/variations":
		if !f.compatible {
			h = f.variations
		}
	}
	if h == nil || r.Method != http.MethodPost {
		(&apiError{status: http.StatusNotFound, typ: "invalid_request_error",
			message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)}).write(w)
		return
	}
	rb, _ := r.Context().Value(bodyKey{}).(*readBody)
	if rb == nil {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
		rb = &readBody{data: b, err: err}
	}
	body, err := rb.data, rb.err
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		(&apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error",
			message: fmt.Sprintf("Request body too large. The maximum is %d bytes.", MaxRequestBytes)}).write(w)
		return
	}
	if err != nil {
		return // the client went away
	}
	f.mu.Lock()
	f.last = Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	f.mu.Unlock()
	if e := f.authenticate(r); e != nil {
		e.write(w)
		return
	}
	c := &call{r: r, body: body, base: f.publicURL(r), now: f.now()}
	resp, e := h(c)
	if e != nil {
		e.write(w)
		return
	}
	if f.o.Latency > 0 {
		t := time.NewTimer(f.o.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if sr, ok := resp.(*sseResponse); ok {
		sr.write(r.Context(), w, f.o.StreamPause)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", requestID())
	w.Header().Set("Openai-Version", "2020-10-01")
	w.WriteHeader(http.StatusOK)
	// The default encoder escapes '&' in the signed URLs as \u0026, as several real backends do.
	_ = json.NewEncoder(w).Encode(resp)
}

// authenticate checks "Authorization: Bearer <key>" and answers OpenAI's own 401 bodies.
func (f *Fake) authenticate(r *http.Request) *apiError {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || strings.TrimSpace(key) == "" {
		return &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error",
			message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."}
	}
	if key != f.o.APIKey {
		return &apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", code: "invalid_api_key",
			message: "Incorrect API key provided: " + maskKey(key) + ". You can find your API key at https://platform.openai.com/account/api-keys."}
	}
	return nil
}

// maskKey shows a key the way OpenAI's 401 does: a few leading and the last four characters.
func maskKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

// publicURL is where image URLs point: Options.PublicURL, or the request's own host plus the
// prefix a http.StripPrefix in front of the fake removed.
func (f *Fake) publicURL(r *http.Request) string {
	if f.o.PublicURL != "" {
		return strings.TrimRight(f.o.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && strings.HasSuffix(u.Path, r.URL.Path) {
		prefix = strings.TrimSuffix(u.Path, r.URL.Path)
	}
	return scheme + "://" + r.Host + prefix
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "req_" + hex.EncodeToString(b)
}

// apiError is an answer in OpenAI's error envelope.
type apiError struct {
	status  int
	message string
	typ     string
	param   string // "" is null
	code    string // "" is null
}

func (e *apiError) write(w http.ResponseWriter) {
	nullable := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = e.message, e.typ
	body.Error.Param, body.Error.Code = nullable(e.param), nullable(e.code)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", requestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(body)
}

// invalid is a 400 invalid_request_error.
func invalid(param, code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, code: code,
		message: fmt.Sprintf(format, args...)}
}

func unknownParam(name string) *apiError {
	return invalid(name, "unknown_parameter", "Unknown parameter: '%s'.", name)
}

func missingParam(name string) *apiError {
	return invalid(name, "missing_required_parameter", "Missing required parameter: '%s'.", name)
}

// badValue is the answer to a value outside an enum.
func badValue(param, got string, allowed []string) *apiError {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = "'" + a + "'"
	}
	list := strings.Join(q, ", ")
	if len(q) > 1 {
		list = strings.Join(q[:len(q)-1], ", ") + ", and " + q[len(q)-1]
	}
	return invalid(param, "invalid_value", "Invalid value: '%s'. Supported values are: %s.", got, list)
}

// jsonParseError is OpenAI's answer to a body that is not a JSON object.
func jsonParseError() *apiError {
	return invalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)")
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}
