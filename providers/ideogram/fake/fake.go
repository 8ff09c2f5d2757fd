package fake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-ideogram"

// DefaultURLTTL is how long the fake's image URLs live when Options.URLTTL is zero. Ideogram only
// says its links are available "for a limited period of time"; one hour is the same conservative
// assumption the adapter makes (ideogram.URLLifetime).
const DefaultURLTTL = time.Hour

// DefaultMaxInFlight is Ideogram's documented default rate limit: 10 requests in flight.
const DefaultMaxInFlight = 10

// Trigger words. A prompt containing UnsafeTrigger gets its first image back with
// is_image_safe=false and no URL (so with one image, every image is withheld); a prompt containing
// RejectTrigger is refused with Ideogram's 422 safety body. Matching is case-insensitive.
const (
	UnsafeTrigger = "unsafe"
	RejectTrigger = "forbidden"
)

// SafetyMessage is the body text of Ideogram's 422 answer (PROVIDERS.md §2.5).
const SafetyMessage = "Prompt provided failed safety check due to the inclusion of prohibited content."

// maxBody bounds a request body: the images are at most 10 MB each.
const maxBody = 48 << 20

// Options configure a Fake.
type Options struct {
	// APIKey is the only key accepted; "" means DefaultKey.
	APIKey string
	// PublicURL is the absolute URL where this fake is reachable (for example
	// "http://127.0.0.1:9090/ideogram"), used to build the image URLs it returns. "" derives it from
	// the request's Host and the path prefix stripped in front of the fake.
	PublicURL string
	// URLTTL is how long image URLs stay valid; 0 means DefaultURLTTL.
	URLTTL time.Duration
	// Now is the fake's clock; nil means time.Now.
	Now func() time.Time
	// Latency is added to every API call.
	Latency time.Duration
	// MaxInFlight is how many API calls may be in flight before the fake answers 429; 0 means
	// DefaultMaxInFlight.
	MaxInFlight int
}

// Request is one recorded API call.
type Request struct {
	Method string
	// Path is the path the fake saw (after any prefix was stripped in front of it).
	Path string
	// RequestURI is the request line's target as the client sent it.
	RequestURI string
	Header     http.Header
	Body       []byte
}

// Fake is a strict fake of Ideogram's API, legacy and 3.0, on the official paths. Mount it under a
// prefix (http.StripPrefix) to play AiHubMix.
type Fake struct {
	// Script holds faults that requests suffer before the fake answers.
	Script *providertest.Script

	key      string
	public   string
	ttl      time.Duration
	now      func() time.Time
	latency  time.Duration
	max      int64
	secret   []byte
	inflight atomic.Int64
	counter  atomic.Uint64

	mu    sync.Mutex
	last  Request
	calls int

	cacheMu sync.Mutex
	cache   map[string][]byte
	order   []string
}

// New builds a fake.
func New(o Options) *Fake {
	f := &Fake{
		Script:  &providertest.Script{},
		key:     o.APIKey,
		public:  strings.TrimRight(o.PublicURL, "/"),
		ttl:     o.URLTTL,
		now:     o.Now,
		latency: o.Latency,
		max:     int64(o.MaxInFlight),
		cache:   map[string][]byte{},
	}
	if f.key == "" {
		f.key = DefaultKey
	}
	if f.ttl <= 0 {
		f.ttl = DefaultURLTTL
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.max <= 0 {
		f.max = DefaultMaxInFlight
	}
	f.secret = make([]byte, 32)
	_, _ = rand.Read(f.secret)
	return f
}

// LastRequest returns the last API call the fake received (image downloads are not recorded).
func (f *Fake) LastRequest() Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.last
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r
}

// Calls reports how many API calls the fake received.
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// ServeHTTP applies the Script's faults first, then answers as Ideogram would. It reads the
// request body before anything else, as a server does: net/http notices a client that hangs up
// only once the body has been consumed, and a scripted delay must end when the client goes away.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return // the client went away
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, body))
	}
	f.Script.Wrap(http.HandlerFunc(f.serve)).ServeHTTP(w, r)
}

// bodyKey carries the request body ServeHTTP read, so serve does not copy it again.
type bodyKey struct{}

// endpoint describes one API path.
type endpoint struct {
	v3 bool
	// status403 marks the endpoints documented to answer 403 (not 401) for a bad key.
	status403 bool
	handle    func(f *Fake, r *http.Request, body []byte) (*answer, *apiError)
}

var endpoints = map[string]endpoint{
	"/generate":                          {handle: (*Fake).legacyGenerate},
	"/remix":                             {handle: (*Fake).legacyRemix, status403: true},
	"/edit":                              {handle: (*Fake).legacyEdit},
	"/upscale":                           {handle: (*Fake).legacyUpscale, status403: true},
	"/describe":                          {handle: (*Fake).describe},
	"/reframe":                           {handle: (*Fake).legacyReframe},
	"/v1/ideogram-v3/generate":           {v3: true, handle: (*Fake).v3Generate},
	"/v1/ideogram-v3/remix":              {v3: true, handle: (*Fake).v3Remix, status403: true},
	"/v1/ideogram-v3/edit":               {v3: true, handle: (*Fake).v3Edit},
	"/v1/ideogram-v3/reframe":            {v3: true, handle: (*Fake).v3Reframe},
	"/v1/ideogram-v3/replace-background": {v3: true, handle: (*Fake).v3ReplaceBackground},
}

// imagePathPrefix is where the fake serves the images it made.
const imagePathPrefix = "/api/images/ephemeral/"

// apiError is an Ideogram error answer: a status and {"error": message}.
type apiError struct {
	status int
	msg    string
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// answer is what a successful API call returns: images to make, or descriptions.
type answer struct {
	prompt       string
	n            int
	seed         *int64
	size         [2]int
	upscaledFrom [2]int // non-zero for upscale: resolution is the input's, upscaled_resolution the output's
	styleType    string
	descriptions []string
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, imagePathPrefix) {
		f.serveImage(w, r)
		return
	}
	ep, ok := endpoints[r.URL.Path]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "Method not allowed"})
		return
	}
	body, ok := r.Context().Value(bodyKey{}).([]byte)
	if !ok {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1)); err != nil {
			return // the client went away
		}
	}
	f.mu.Lock()
	f.last = Request{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body}
	f.calls++
	f.mu.Unlock()
	if len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "Request body too large"})
		return
	}

	if k := r.Header.Get("Api-Key"); k == "" || !hmac.Equal([]byte(k), []byte(f.key)) {
		st := http.StatusUnauthorized
		if ep.status403 {
			st = http.StatusForbidden
		}
		writeJSON(w, st, map[string]string{"error": "Not authorized: a valid Api-Key header is required."})
		return
	}
	if n := f.inflight.Add(1); n > f.max {
		f.inflight.Add(-1)
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests in flight."})
		return
	}
	defer f.inflight.Add(-1)

	ans, apiErr := ep.handle(f, r, body)
	if apiErr == nil && strings.Contains(strings.ToLower(ans.prompt), RejectTrigger) {
		apiErr = &apiError{status: http.StatusUnprocessableEntity, msg: SafetyMessage}
	}
	if apiErr != nil {
		writeJSON(w, apiErr.status, map[string]string{"error": apiErr.msg})
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
	if ans.descriptions != nil {
		type desc struct {
			Text string `json:"text"`
		}
		out := struct {
			Descriptions []desc `json:"descriptions"`
		}{}
		for _, d := range ans.descriptions {
			out.Descriptions = append(out.Descriptions, desc{d})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusOK, f.images(r, ans))
}

// wireImage is one item of Ideogram's data array.
type wireImage struct {
	Prompt             string  `json:"prompt"`
	Resolution         string  `json:"resolution"`
	UpscaledResolution string  `json:"upscaled_resolution,omitempty"`
	IsImageSafe        bool    `json:"is_image_safe"`
	Seed               int64   `json:"seed"`
	URL                *string `json:"url"`
	StyleType          string  `json:"style_type,omitempty"`
}

func (f *Fake) images(r *http.Request, a *answer) any {
	now := f.now()
	n := a.n
	if n == 0 {
		n = 1
	}
	revised := a.prompt
	if revised != "" {
		revised = "Enhanced: " + revised
	}
	base := f.publicBase(r)
	exp := now.Add(f.ttl).Unix()
	data := make([]wireImage, 0, n)
	h := fnv.New64a()
	h.Write([]byte(a.prompt))
	for i := 0; i < n; i++ {
		var seed int64
		if a.seed != nil {
			seed = *a.seed // a fixed seed gives identical images, as upstream
		} else {
			seed = int64((h.Sum64() ^ (f.counter.Add(1) * 0x9E3779B97F4A7C15)) % 2147483648)
		}
		it := wireImage{Prompt: revised, IsImageSafe: true, Seed: seed, StyleType: a.styleType,
			Resolution: fmt.Sprintf("%dx%d", a.size[0], a.size[1])}
		w, hgt := a.size[0], a.size[1]
		if a.upscaledFrom != [2]int{} {
			it.Resolution = fmt.Sprintf("%dx%d", a.upscaledFrom[0], a.upscaledFrom[1])
			it.UpscaledResolution = fmt.Sprintf("%dx%d", w, hgt)
		}
		if i == 0 && strings.Contains(strings.ToLower(a.prompt), UnsafeTrigger) {
			it.IsImageSafe = false
		} else {
			id := fmt.Sprintf("s%d-%dx%d-%d", seed, w, hgt, f.counter.Add(1))
			u := base + imagePathPrefix + id + ".png?exp=" + strconv.FormatInt(exp, 10) + "&sig=" + f.sign(id, exp)
			it.URL = &u
		}
		data = append(data, it)
	}
	return struct {
		Created string      `json:"created"`
		Data    []wireImage `json:"data"`
	}{Created: now.UTC().Format("2006-01-02T15:04:05.000000+00:00"), Data: data}
}

// publicBase is the absolute URL of the fake's root as the client reached it.
func (f *Fake) publicBase(r *http.Request) string {
	if f.public != "" {
		return f.public
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

func (f *Fake) sign(id string, exp int64) string {
	m := hmac.New(sha256.New, f.secret)
	m.Write([]byte(id + "|" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// serveImage answers GET on an image URL the fake made: the PNG while the signature holds and the
// link has not expired, 403 otherwise.
func (f *Fake) serveImage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, imagePathPrefix), ".png")
	exp, err := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(r.URL.Query().Get("sig")), []byte(f.sign(id, exp))) {
		http.Error(w, "invalid signature", http.StatusForbidden)
		return
	}
	if f.now().Unix() >= exp {
		http.Error(w, "this link has expired", http.StatusForbidden)
		return
	}
	var seed int64
	var wd, ht, nonce int
	if _, err := fmt.Sscanf(id, "s%d-%dx%d-%d", &seed, &wd, &ht, &nonce); err != nil || wd <= 0 || ht <= 0 || wd*ht > 64<<20 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	b := f.png(seed, wd, ht)
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "private, max-age=0")
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

// PNG returns the image the fake serves for seed at w×h: deterministic, so tests can compare bytes.
func PNG(seed int64, w, h int) []byte {
	c1 := color.NRGBA{R: uint8(seed), G: uint8(seed >> 8), B: uint8(seed >> 16), A: 0xff}
	c2 := color.NRGBA{R: ^c1.R, G: ^c1.G, B: ^c1.B, A: 0xff}
	img := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{c1, c2})
	stripe := 16 + int(seed%48)
	for y := 0; y < h; y++ {
		if (y/stripe)%2 == 1 {
			row := img.Pix[y*img.Stride : y*img.Stride+w]
			for x := range row {
				row[x] = 1
			}
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&buf, img)
	return buf.Bytes()
}

func (f *Fake) png(seed int64, w, h int) []byte {
	key := fmt.Sprintf("%d-%dx%d", seed, w, h)
	f.cacheMu.Lock()
	b, ok := f.cache[key]
	f.cacheMu.Unlock()
	if ok {
		return b
	}
	b = PNG(seed, w, h)
	f.cacheMu.Lock()
	defer f.cacheMu.Unlock()
	if _, ok := f.cache[key]; !ok {
		f.cache[key] = b
		f.order = append(f.order, key)
		if len(f.order) > 32 {
			delete(f.cache, f.order[0])
			f.order = f.order[1:]
		}
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_ = enc.Encode(v) // escapes & as \u0026 in URLs, as Go servers do
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
