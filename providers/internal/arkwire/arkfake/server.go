package arkfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxRequestBytes caps a request body (inline images make them large).
const MaxRequestBytes = 64 << 20

// Options configure a fake.
type Options struct {
	// APIKey is the only key accepted; "" means the vendor's DefaultKey.
	APIKey string
	// PublicURL is the absolute URL where this fake is reachable (for example
	// "http://127.0.0.1:9090/ark"); it is the base of the image URLs the fake returns. "" derives
	// it from the request's Host and the path prefix stripped in front of the fake.
	PublicURL string
	// URLTTL is how long image URLs stay valid; 0 means the vendor's DefaultURLTTL.
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

// Server is the state of one fake: its key, clock, URL signing key and the last API call.
type Server struct {
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

// New returns a server configured by o, with the vendor's defaults for the key and the URL
// lifetime, and a fresh random key for signing image URLs.
func New(o Options, defaultKey string, defaultTTL time.Duration) *Server {
	s := &Server{key: o.APIKey, publicURL: strings.TrimRight(o.PublicURL, "/"),
		ttl: o.URLTTL, now: o.Now, latency: o.Latency, secret: make([]byte, 32)}
	if s.key == "" {
		s.key = defaultKey
	}
	if s.ttl <= 0 {
		s.ttl = defaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	_, _ = rand.Read(s.secret)
	return s
}

// Now is the time on the fake's clock.
func (s *Server) Now() time.Time { return s.now() }

// TTL is how long the fake's image URLs stay valid.
func (s *Server) TTL() time.Duration { return s.ttl }

// Record reads an API call's body (at most MaxRequestBytes and one byte more, so that a larger
// body can be refused) and records the call for LastRequest. The error is the body's read error.
func (s *Server) Record(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	s.mu.Lock()
	s.last = Recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.mu.Unlock()
	return body, err
}

// LastRequest returns the last API call received (zero before the first).
func (s *Server) LastRequest() Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.last
	rec.Header = rec.Header.Clone()
	rec.Body = bytes.Clone(rec.Body)
	return rec
}

// Refusal is why Check refused a request.
type Refusal int

// The refusals, in the order Check tries them.
const (
	// BadMethod is anything but POST; Check has set the Allow header.
	BadMethod Refusal = iota
	// BadKey is a missing or wrong "Authorization: Bearer <key>".
	BadKey
	// NotJSON is a body whose Content-Type is not application/json.
	NotJSON
	// TooLarge is a body over MaxRequestBytes.
	TooLarge
	// WrongType is a field of the wrong JSON type; the detail is the field's path.
	WrongType
	// UnknownField is a field the vendor's request type lacks; the detail is its name as
	// encoding/json quotes it (with the quotes).
	UnknownField
	// Unreadable is a body that is not JSON.
	Unreadable
)

// Check refuses a request that is not a POST with the fake's key and a JSON body of at most
// MaxRequestBytes that decodes into v with no unknown field. refuse writes the vendor's answer for
// the first check that fails; Check reports whether the request passed them all.
func (s *Server) Check(w http.ResponseWriter, r *http.Request, body []byte, v any, refuse func(why Refusal, detail string)) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(BadMethod, "")
		return false
	}
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		refuse(BadKey, "")
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		refuse(NotJSON, "")
		return false
	}
	if len(body) > MaxRequestBytes {
		refuse(TooLarge, "")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			refuse(WrongType, te.Field)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			refuse(UnknownField, strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			refuse(Unreadable, "")
		}
		return false
	}
	return true
}

// Wait applies the configured latency. It reports false when the client went away first, and
// the call should then be dropped.
func (s *Server) Wait(r *http.Request) bool {
	if s.latency <= 0 {
		return true
	}
	t := time.NewTimer(s.latency)
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		t.Stop()
		return false
	}
}

// Base is the absolute URL the fake is reachable at: Options.PublicURL, or the request's scheme
// and Host with the path prefix a mux stripped in front of the fake.
func (s *Server) Base(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
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

// NextSeq numbers image URLs, so no two are the same.
func (s *Server) NextSeq() uint64 { return s.seq.Add(1) }

// Sign is the hex HMAC-SHA256, under the fake's key, of fields joined by newlines.
func (s *Server) Sign(fields ...string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(strings.Join(fields, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is Sign(fields...), in constant time.
func (s *Server) Verify(sig string, fields ...string) bool {
	return hmac.Equal([]byte(sig), []byte(s.Sign(fields...)))
}

// WriteJSON answers with status and v encoded by encoding/json (so a URL's "&" arrives as
// \u0026, as it does from the real upstreams).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ImageSeed is the seed of the i-th image of a request: seed+i when the request fixes a seed of
// at least zero, a random one below 2^31 otherwise.
func ImageSeed(seed *int64, i int) int64 {
	if seed == nil || *seed < 0 {
		return mrand.Int64N(2147483648)
	}
	return *seed + int64(i)
}

// ServeImage answers GET and HEAD on an image URL with the bytes and type open returns. open
// checks the URL (signature, expiry) and, when it refuses, writes the answer itself and returns
// ok false. Any other method is a 405.
func ServeImage(w http.ResponseWriter, r *http.Request, open func() (body []byte, contentType string, ok bool)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, ct, ok := open()
	if !ok {
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
