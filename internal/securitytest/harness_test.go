package securitytest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// upstreamKey is the hostile channel's API key: the secret the upstream tries to get echoed.
const upstreamKey = "sk-hostile-4f8e2a9c71d3b605e8f1a2c4d6b8e0f2"

// hostileModel is the hostile channel's model as clients name it.
const hostileModel = "hostile/flux-dev"

// pngBytes is a small valid PNG.
var pngBytes = func() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 64, 64)))
	return b.Bytes()
}()

// bombPNG is a valid PNG header declaring 100,000 × 100,000 pixels: decoding it would take 40 GB.
var bombPNG = func() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	p := b.Bytes()
	// IHDR width and height live at bytes 16..23; the CRC after them is left wrong on purpose
	// only if nothing checks it: recompute it so the header is well-formed.
	binaryPut := func(off int, v uint32) {
		p[off], p[off+1], p[off+2], p[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	binaryPut(16, 100000)
	binaryPut(20, 100000)
	binaryPut(29, crc32.ChecksumIEEE(p[12:29]))
	return p
}()

// upstream is a hostile OpenAI-compatible host. What it does is chosen by the request's prompt:
//
//	echo:STATUS         an OpenAI error envelope with the API key in message, type, param and code
//	raw:STATUS          a non-JSON body carrying the API key
//	redirect            307 to another server (which records what reached it, and answers an image)
//	retry-after:VALUE   429 with Retry-After: VALUE
//	url-trickle         an image URL whose bytes trickle at one byte a second
//	bomb                a b64 PNG declaring 100,000 × 100,000 pixels
//	big                 an endless JSON answer
//	anything else       one valid 64×64 PNG as b64_json
type upstream struct {
	srv    *httptest.Server
	target *httptest.Server
	// targetHits counts requests that reached the redirect target; targetAuth is what
	// credentials they carried.
	targetHits atomic.Int64
	mu         sync.Mutex
	targetAuth []string
	calls      atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.target = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.targetHits.Add(1)
		u.mu.Lock()
		for _, h := range []string{"Authorization", "Api-Key", "X-Api-Key", "Cookie"} {
			if v := r.Header.Get(h); v != "" {
				u.targetAuth = append(u.targetAuth, h+": "+v)
			}
		}
		u.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, ".png") {
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(pngBytes)
			return
		}
		writeImage(w, pngBytes)
	}))
	t.Cleanup(u.target.Close)
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func writeImage(w http.ResponseWriter, img []byte) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"created": time.Now().Unix(),
		"data": []map[string]any{{"b64_json": base64.StdEncoding.EncodeToString(img)}}})
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	switch {
	case strings.HasPrefix(r.URL.Path, "/files/trickle"):
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(len(pngBytes)))
		f, _ := w.(http.Flusher)
		for _, b := range pngBytes {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			f.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
		return
	case r.URL.Path != "/v1/images/generations":
		http.NotFound(w, r)
		return
	}
	var req struct {
		Prompt string `json:"prompt"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	verb, arg, _ := strings.Cut(req.Prompt, ":")
	status, _ := strconv.Atoi(arg)
	switch verb {
	case "echo":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"message": "Incorrect API key provided: " + key, "type": key, "param": key, "code": key}})
	case "raw":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body>bad key %s (Bearer %s)</body></html>", key, key)
	case "redirect":
		w.Header().Set("Location", u.target.URL+"/v1/images/generations")
		w.WriteHeader(http.StatusTemporaryRedirect)
	case "retry-after":
		w.Header().Set("Retry-After", arg)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`)
	case "url-trickle":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"created": time.Now().Unix(),
			"data": []map[string]any{{"url": u.srv.URL + "/files/trickle.png"}}})
	case "url-redirect":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"created": time.Now().Unix(),
			"data": []map[string]any{{"url": u.target.URL + "/files/x.png"}}})
	case "bomb":
		writeImage(w, bombPNG)
	case "big":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"created":1,"data":[{"b64_json":"`)
		chunk := bytes.Repeat([]byte("AAAA"), 16<<10)
		for i := 0; i < 4096; i++ { // 256 MB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}]}`)
	default:
		writeImage(w, pngBytes)
	}
}

// suite is a gateway in front of the hostile upstream, with everything that leaves it recorded:
// its log lines, and every response the suite's clients got.
type suite struct {
	t   *testing.T
	g   *gatewaytest.Gateway
	up  *upstream
	log *syncBuffer
	rec *recorder
	// client records every response.
	client *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Sync() error { return nil }
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder is a RoundTripper keeping every response's headers and (first MB of) body.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen bytes.Buffer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	fmt.Fprintf(&r.seen, "%s %s -> %d\n", req.Method, req.URL.Path, resp.StatusCode)
	_ = resp.Header.Write(&r.seen)
	r.mu.Unlock()
	resp.Body = &recordingBody{rc: resp.Body, r: r}
	return resp, nil
}

type recordingBody struct {
	rc io.ReadCloser
	r  *recorder
	n  int
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && b.n < 1<<20 {
		b.r.mu.Lock()
		b.r.seen.Write(p[:min(n, 1<<20-b.n)])
		b.r.mu.Unlock()
		b.n += n
	}
	return n, err
}
func (b *recordingBody) Close() error { return b.rc.Close() }

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen.String()
}

// options change the suite's gateway configuration.
type options struct {
	configure func(*config.Config)
	env       map[string]string
}

func newSuite(t *testing.T, o options) *suite {
	t.Helper()
	up := newUpstream(t)
	buf := &syncBuffer{}
	enc := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), buf, zap.DebugLevel))
	g := gatewaytest.Start(t, gatewaytest.Options{Logger: logger, Env: o.env, Configure: func(c *config.Config) {
		c.Outbound.Timeout = config.Duration(3 * time.Second)
		for _, srv := range []*httptest.Server{up.srv, up.target} {
			c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, strings.TrimPrefix(srv.URL, "http://"))
		}
		c.Providers = append(c.Providers, config.ChannelConfig{Name: "hostile", Type: "openai-compatible",
			BaseURL: up.srv.URL + "/v1", APIKey: config.Secret(upstreamKey)})
		c.Models = append(c.Models, config.ModelConfig{Target: hostileModel,
			Price: &config.Price{Unit: "image", Currency: "USD", Amount: "0.01"}})
		if o.configure != nil {
			o.configure(c)
		}
	}})
	rec := &recorder{next: &http.Transport{MaxIdleConnsPerHost: 64}}
	s := &suite{t: t, g: g, up: up, log: buf, rec: rec, client: &http.Client{Transport: rec, Timeout: 60 * time.Second}}
	t.Cleanup(s.checkNoSecrets)
	return s
}

// secrets are what must never leave the gateway.
func (s *suite) secrets() []string {
	return []string{upstreamKey, gatewaytest.AdminToken}
}

// checkNoSecrets greps everything the suite saw leave the gateway: responses, log lines and a
// final /metrics scrape.
func (s *suite) checkNoSecrets() {
	t := s.t
	resp, err := s.client.Get(s.g.URL + "/metrics")
	if err != nil {
		t.Errorf("scrape /metrics: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for what, text := range map[string]string{"a response": s.rec.String(), "a log line": s.log.String()} {
		for _, secret := range s.secrets() {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("a secret leaked in %s: …%s…", what, text[max(i-200, 0):min(i+len(secret)+50, len(text))])
			}
			// Also a recognisable part of the upstream key.
			if secret == upstreamKey && strings.Contains(text, upstreamKey[:20]) {
				t.Errorf("part of the upstream key leaked in %s", what)
			}
		}
	}
}

// post sends a JSON request with the suite's key (or key) and returns the response and body.
func (s *suite) post(path, key, body string, hdr ...string) (*http.Response, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.g.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key == "" {
		key = s.g.Key
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// generate asks the hostile model for one image with the given prompt (its script).
func (s *suite) generate(prompt string, hdr ...string) (*http.Response, []byte) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"model": hostileModel, "prompt": prompt, "response_format": "b64_json"})
	return s.post("/v1/images/generations", "", string(body), hdr...)
}

// envelope decodes an OpenAI error envelope, failing the test if the body is not one.
func envelope(t *testing.T, body []byte) (msg, typ, code string, param *string) {
	t.Helper()
	var e struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil || e.Error.Message == "" {
		t.Fatalf("not an OpenAI error envelope: %s", body)
	}
	if e.Error.Code != nil {
		code = *e.Error.Code
	}
	return e.Error.Message, e.Error.Type, code, e.Error.Param
}
