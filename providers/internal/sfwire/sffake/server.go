package sffake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
)

// UnsafeMarker makes the fake's content-safety check reject a prompt that contains it.
const UnsafeMarker = "[unsafe]"

// maxSeed is the upstreams' seed ceiling (PROVIDERS.md §1.2).
const maxSeed int64 = 9_999_999_999

// maxBody caps a request body the fake reads (reference images arrive inline as data URIs).
const maxBody = 32 << 20

// Options configures a fake; the vendor packages copy their own Options into it.
type Options struct {
	// APIKey is the only key accepted; "" means the Spec's DefaultKey.
	APIKey string
	// PublicURL is where the fake is reachable, used to build image URLs; "" derives it from the
	// request's Host.
	PublicURL string
	// URLTTL is how long image URLs stay valid; 0 means the Spec's URLTTL.
	URLTTL time.Duration
	// Now is the clock for URL expiry; nil means time.Now.
	Now func() time.Time
	// Latency is added to every generation.
	Latency time.Duration
}

// Call is one recorded API request.
type Call struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// Spec describes one vendor's API.
type Spec struct {
	// Vendor names the fake in trace ids and error pages.
	Vendor string
	// DefaultKey is accepted when Options.APIKey is empty.
	DefaultKey string
	// Models are the model ids the API knows and their rules.
	Models map[string]ModelSpec
	// UnknownModelStatus answers an unknown model id (SiliconFlow 400, yunyx 404).
	UnknownModelStatus int
	// TraceHeader, when set, carries a request id on every answer.
	TraceHeader string
	// SharedID adds a "shared_id" key to success bodies (seen in some SiliconFlow clients).
	SharedID bool
	// URLTTL is the vendor's real image URL lifetime.
	URLTTL time.Duration
}

// ModelSpec is one model's request schema.
//
// image_size is required by every model that takes one: both vendors mark it so (PROVIDERS.md
// §1.2 "Marked required in the 2024 schemas", §4.2 "yes (per table)"), so a request without it
// is answered 400 {"code":20015,"message":"image_size: Field required"} rather than given a
// default size.
type ModelSpec struct {
	// Sizes is the exact image_size list (when FreeForm, sizes accepted besides the bounds).
	Sizes []string
	// FreeForm accepts any "WxH" within these bounds (zero: unbounded).
	FreeForm                    bool
	MinSide, MaxSide, MaxPixels int
	Multiple                    int
	FixedOutput                 string // the model ignores image_size's value and always outputs this (Janus-Pro)
	NoImageSize                 bool   // image_size is refused; the output follows the input image
	Batch                       bool   // batch_size 1–4
	FixedSteps                  int    // the model always runs this many steps; num_inference_steps, when sent, must equal it
	MinSteps, MaxSteps          int    // num_inference_steps range; 0,0: not accepted
	DefaultSteps                int    // steps run when num_inference_steps is absent (PROVIDERS.md §1.2: 20)
	Guidance                    bool
	MinGuidance, MaxGuidance    float64
	CFG                         bool // cfg 0.1–20
	Negative                    bool
	PromptEnhancement           bool
	Images                      int  // how many of image, image2, image3 are accepted
	ImageRequired               bool // image is required
}

// fields lists every request field in the order the fake validates them.
var fields = []string{
	"model", "prompt", "negative_prompt", "image_size", "batch_size", "seed", "num_inference_steps",
	"guidance_scale", "cfg", "prompt_enhancement", "image", "image2", "image3",
}

// Server is one fake upstream.
type Server struct {
	spec    Spec
	opts    Options
	signKey []byte
	ids     atomic.Uint64

	mu      sync.Mutex
	last    *Call
	lastGen *Generation

	pngs pngCache
}

// New builds a fake for spec with o.
func New(spec Spec, o Options) *Server {
	if o.APIKey == "" {
		o.APIKey = spec.DefaultKey
	}
	if o.URLTTL <= 0 {
		o.URLTTL = spec.URLTTL
	}
	if o.URLTTL <= 0 {
		o.URLTTL = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	// A fixed signing key keeps URLs deterministic for a given clock.
	return &Server{spec: spec, opts: o, signKey: []byte("sffake-signing-key-" + spec.Vendor)}
}

// Serve records an API call, applies script's faults and then answers it.
func (s *Server) Serve(script *providertest.Script, w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, imagePrefix) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.last = &Call{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	script.Wrap(s).ServeHTTP(w, r)
}

// LastRequest returns a copy of the last API call (image downloads are not recorded).
func (s *Server) LastRequest() Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Call{}
	}
	c := *s.last
	c.Header = c.Header.Clone()
	c.Body = bytes.Clone(c.Body)
	return c
}

// Generation is what the fake made for one accepted request, after applying the documented
// defaults to what the request left out: the parameters the vendor would bill.
type Generation struct {
	Model string
	// Width and Height are the output size: image_size, the model's fixed output, or the input
	// image's size for edit models.
	Width, Height int
	// Steps is the number of inference steps run: the model's fixed steps, num_inference_steps,
	// or the documented default; 0 for models whose steps are not documented.
	Steps int
	// N is the number of images (batch_size, default 1).
	N int
	// Seed is the seed used: the request's, else a random one.
	Seed int64
}

// LastGeneration returns what the last accepted request generated, and false when no request
// has been accepted yet.
func (s *Server) LastGeneration() (Generation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastGen == nil {
		return Generation{}, false
	}
	return *s.lastGen, true
}

// ServeHTTP answers without recording or faults.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.spec.TraceHeader != "" {
		w.Header().Set(s.spec.TraceHeader, fmt.Sprintf("%s-%012x", s.spec.Vendor, s.ids.Add(1)))
	}
	switch {
	case strings.HasPrefix(r.URL.Path, imagePrefix):
		s.serveImage(w, r)
	case r.URL.Path == "/v1/images/generations":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		s.generate(w, r)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "404 page not found\n")
	}
}

type envelope struct {
	Code    int     `json:"code"`
	Message string  `json:"message"`
	Data    *string `json:"data"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func invalid(w http.ResponseWriter, field, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, envelope{Code: 20015, Message: field + ": " + fmt.Sprintf(format, args...)})
}

type response struct {
	Images  []imageOut `json:"images"`
	Timings struct {
		Inference float64 `json:"inference"`
	} `json:"timings"`
	Seed     int64  `json:"seed"`
	SharedID string `json:"shared_id,omitempty"`
}

type imageOut struct {
	URL string `json:"url"`
}

func (s *Server) generate(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		writeJSON(w, http.StatusUnauthorized, "Invalid token")
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		invalid(w, "body", "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		invalid(w, "body", "could not be read")
		return
	}
	if len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, envelope{Code: 20015, Message: "body: Request body too large"})
		return
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		invalid(w, "body", "Input should be a valid JSON object")
		return
	}
	for k := range raw {
		if !known(k) {
			invalid(w, k, "Extra inputs are not permitted")
			return
		}
	}
	g, ok := s.validate(w, raw)
	if !ok {
		return
	}
	if strings.Contains(g.prompt, UnsafeMarker) {
		// [INFER] SiliconFlow documents no content-safety code; this body is an assumption.
		writeJSON(w, http.StatusBadRequest, envelope{Code: 20015,
			Message: "The prompt contains sensitive content and was rejected by the content safety check."})
		return
	}
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	base := s.opts.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	expires := s.opts.Now().Add(s.opts.URLTTL).Unix()
	var out response
	out.Seed = g.seed
	out.Timings.Inference = 0.42 + s.opts.Latency.Seconds()
	for i := range g.n {
		out.Images = append(out.Images, imageOut{URL: base + s.signedPath(g.w, g.h, g.seed, i, expires)})
	}
	if s.spec.SharedID {
		out.SharedID = fmt.Sprintf("%x", sha256.Sum256(body))[:24]
	}
	s.mu.Lock()
	s.lastGen = &Generation{Model: g.model, Width: g.w, Height: g.h, Steps: g.steps, N: g.n, Seed: g.seed}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func known(k string) bool {
	for _, f := range fields {
		if f == k {
			return true
		}
	}
	return false
}

// generation is a validated request with the documented defaults applied.
type generation struct {
	model  string
	prompt string
	n      int
	steps  int
	seed   int64
	w, h   int
}

// validate checks raw against the model's schema, answering the first problem itself.
func (s *Server) validate(w http.ResponseWriter, raw map[string]json.RawMessage) (generation, bool) {
	g := generation{n: 1}
	var modelID string
	if v, ok := raw["model"]; !ok || json.Unmarshal(v, &modelID) != nil || modelID == "" {
		if !ok {
			invalid(w, "model", "Field required")
		} else {
			invalid(w, "model", "Input should be a non-empty string")
		}
		return g, false
	}
	m, ok := s.spec.Models[modelID]
	if !ok {
		writeJSON(w, s.spec.UnknownModelStatus, envelope{Code: 20012, Message: "Model does not exist. Please check it carefully."})
		return g, false
	}
	if v, ok := raw["prompt"]; !ok || json.Unmarshal(v, &g.prompt) != nil || strings.TrimSpace(g.prompt) == "" {
		if !ok {
			invalid(w, "prompt", "Field required")
		} else {
			invalid(w, "prompt", "Input should be a non-empty string")
		}
		return g, false
	}
	g.model = modelID
	unsupported := func(f string) (generation, bool) {
		invalid(w, f, "is not supported by model %s", modelID)
		return g, false
	}
	if _, ok := raw["image_size"]; !ok && !m.NoImageSize {
		invalid(w, "image_size", "Field required")
		return g, false
	}
	var size string
	steps := m.DefaultSteps
	if m.FixedSteps > 0 {
		steps = m.FixedSteps
	} else if m.MaxSteps == 0 {
		steps = 0 // no steps field: the vendor documents none for this model
	}
	var img string
	for _, f := range fields[2:] {
		v, present := raw[f]
		if !present {
			continue
		}
		switch f {
		case "negative_prompt":
			if !m.Negative {
				return unsupported(f)
			}
			var sv string
			if json.Unmarshal(v, &sv) != nil {
				invalid(w, f, "Input should be a valid string")
				return g, false
			}
		case "image_size":
			if m.NoImageSize {
				invalid(w, f, "is not supported by model %s; the output follows the input image", modelID)
				return g, false
			}
			var sv string
			if json.Unmarshal(v, &sv) != nil {
				invalid(w, f, "Input should be a valid string")
				return g, false
			}
			if msg := m.checkSize(sv); msg != "" {
				invalid(w, f, "%s for model %s", msg, modelID)
				return g, false
			}
			size = sv
		case "batch_size":
			if !m.Batch {
				return unsupported(f)
			}
			n, ok := intValue(v)
			if !ok || n < 1 || n > 4 {
				invalid(w, f, "Input should be an integer between 1 and 4")
				return g, false
			}
			g.n = int(n)
		case "seed":
			n, ok := intValue(v)
			if !ok || n < 0 || n > maxSeed {
				invalid(w, f, "Input should be an integer between 0 and %d", maxSeed)
				return g, false
			}
			g.seed = n
		case "num_inference_steps":
			n, ok := intValue(v)
			switch {
			case m.FixedSteps > 0 && (!ok || n != int64(m.FixedSteps)):
				invalid(w, f, "model %s always runs %d steps and does not support adjusting them", modelID, m.FixedSteps)
				return g, false
			case m.FixedSteps > 0:
			case m.MaxSteps == 0:
				return unsupported(f)
			case !ok || n < int64(m.MinSteps) || n > int64(m.MaxSteps):
				invalid(w, f, "Input should be an integer between %d and %d", m.MinSteps, m.MaxSteps)
				return g, false
			default:
				steps = int(n)
			}
		case "guidance_scale":
			if !m.Guidance {
				return unsupported(f)
			}
			var x float64
			if json.Unmarshal(v, &x) != nil || x < m.MinGuidance || x > m.MaxGuidance {
				invalid(w, f, "Input should be a number between %g and %g", m.MinGuidance, m.MaxGuidance)
				return g, false
			}
		case "cfg":
			if !m.CFG {
				return unsupported(f)
			}
			var x float64
			if json.Unmarshal(v, &x) != nil || x < 0.1 || x > 20 {
				invalid(w, f, "Input should be a number between 0.1 and 20")
				return g, false
			}
		case "prompt_enhancement":
			if !m.PromptEnhancement {
				return unsupported(f)
			}
			var b bool
			if json.Unmarshal(v, &b) != nil {
				invalid(w, f, "Input should be a valid boolean")
				return g, false
			}
		case "image", "image2", "image3":
			idx := map[string]int{"image": 1, "image2": 2, "image3": 3}[f]
			if m.Images < idx {
				return unsupported(f)
			}
			if idx > 1 {
				if _, ok := raw["image"]; !ok {
					invalid(w, f, "requires image to be set")
					return g, false
				}
			}
			var sv string
			if json.Unmarshal(v, &sv) != nil {
				invalid(w, f, "Input should be a valid string")
				return g, false
			}
			if msg := checkImage(sv); msg != "" {
				invalid(w, f, "%s", msg)
				return g, false
			}
			if idx == 1 {
				img = sv
			}
		}
	}
	if m.ImageRequired && img == "" {
		invalid(w, "image", "Field required")
		return g, false
	}
	if _, ok := raw["seed"]; !ok {
		g.seed = rand.Int64N(maxSeed + 1)
	}
	g.steps = steps
	switch {
	case m.FixedOutput != "":
		size = m.FixedOutput
	case m.NoImageSize:
		size = "1024x1024"
		if iw, ih, ok := imageSize(img); ok {
			size = fmt.Sprintf("%dx%d", iw, ih)
		}
	}
	g.w, g.h, _ = parseSize(size)
	return g, true
}

// intValue reads a JSON integer literal (no fraction, no exponent, no quotes).
func intValue(v json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(v))
	if s == "" || strings.ContainsAny(s, ".eE\"") {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func parseSize(v string) (int, int, bool) {
	ws, hs, ok := strings.Cut(v, "x")
	if !ok {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || ws[0] == '+' || hs[0] == '+' {
		return 0, 0, false
	}
	return w, h, true
}

func (m ModelSpec) checkSize(v string) string {
	w, h, ok := parseSize(v)
	if !ok {
		return fmt.Sprintf("%q is not of the form WIDTHxHEIGHT", v)
	}
	if m.FixedOutput != "" {
		return "" // accepted and ignored
	}
	for _, s := range m.Sizes {
		if s == v {
			return ""
		}
	}
	if !m.FreeForm {
		return fmt.Sprintf("%s is not one of %s", v, strings.Join(m.Sizes, ", "))
	}
	switch {
	case m.MinSide > 0 && (w < m.MinSide || h < m.MinSide):
		return fmt.Sprintf("%s has a side below %d", v, m.MinSide)
	case m.MaxSide > 0 && (w > m.MaxSide || h > m.MaxSide):
		return fmt.Sprintf("%s has a side above %d", v, m.MaxSide)
	case m.MaxPixels > 0 && w*h > m.MaxPixels:
		return fmt.Sprintf("%s exceeds %d pixels", v, m.MaxPixels)
	case m.Multiple > 0 && (w%m.Multiple != 0 || h%m.Multiple != 0):
		return fmt.Sprintf("%s: width and height must be multiples of %d", v, m.Multiple)
	}
	return ""
}

// checkImage accepts a data:image/...;base64 URI with a valid payload or an http(s) URL.
func checkImage(v string) string {
	if rest, ok := strings.CutPrefix(v, "data:"); ok {
		meta, payload, ok := strings.Cut(rest, ",")
		if !ok || !strings.HasPrefix(meta, "image/") || !strings.HasSuffix(meta, ";base64") {
			return "Input should be a data:image/...;base64 URI or an http(s) URL"
		}
		if _, err := base64.StdEncoding.DecodeString(payload); err != nil || payload == "" {
			return "the base64 image data is invalid"
		}
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "Input should be a data:image/...;base64 URI or an http(s) URL"
	}
	return ""
}

const imagePrefix = "/outputs/"

// signedPath returns the path and signed query of image i of a generation.
func (s *Server) signedPath(w, h int, seed int64, i int, expires int64) string {
	p := fmt.Sprintf("%s%dx%d-%d-%d.png", imagePrefix, w, h, seed, i)
	exp := strconv.FormatInt(expires, 10)
	return p + "?OSSAccessKeyId=LTAI5tFakeAccessKey&Expires=" + exp + "&Signature=" + url.QueryEscape(s.sign(p, exp))
}

func (s *Server) sign(path, expires string) string {
	mac := hmac.New(sha256.New, s.signKey)
	mac.Write([]byte(path + "\n" + expires))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func ossError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>%s</Code>\n  <Message>%s</Message>\n  <HostId>fake-oss</HostId>\n</Error>\n", code, msg)
}

func (s *Server) serveImage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		ossError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	q := r.URL.Query()
	exp, sig := q.Get("Expires"), q.Get("Signature")
	if exp == "" || sig == "" || !hmac.Equal([]byte(sig), []byte(s.sign(r.URL.Path, exp))) {
		ossError(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !s.opts.Now().Before(time.Unix(e, 0)) {
		ossError(w, http.StatusForbidden, "AccessDenied", "Request has expired.")
		return
	}
	var iw, ih, idx int
	var seed int64
	name := strings.TrimPrefix(r.URL.Path, imagePrefix)
	if _, err := fmt.Sscanf(name, "%dx%d-%d-%d.png", &iw, &ih, &seed, &idx); err != nil || iw <= 0 || ih <= 0 || iw > 8192 || ih > 8192 {
		ossError(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	b := s.pngs.get(iw, ih, seed, idx)
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}
