package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// upstreamKey is the API key the fake upstream expects and the gateways are configured with.
const upstreamKey = "sk-load-fake"

// slowMarker in a prompt makes the fake upstream wait its delay before answering.
const slowMarker = "[slow]"

// largeMarker in a prompt makes the fake upstream answer with its large image.
const largeMarker = "[large]"

// fakeUpstream answers POST /v1/images/generations the way an OpenAI-compatible host does,
// with one b64_json image of about imageBytes (largeBytes when the body contains largeMarker),
// at once, or after delay when the body contains slowMarker. It is deliberately minimal (no validation, one precomputed answer) so
// that the upstream costs as little CPU as possible: every setup shares it and the cores.
// (providers/openai/fake is strict and renders images; that is right for tests and wrong here.)
type fakeUpstream struct {
	answer, large []byte
	delay         time.Duration
}

func newFakeUpstream(imageBytes, largeBytes int, delay time.Duration) (*fakeUpstream, error) {
	answer, err := b64Answer(imageBytes)
	if err != nil {
		return nil, err
	}
	large, err := b64Answer(largeBytes)
	if err != nil {
		return nil, err
	}
	return &fakeUpstream{answer: answer, large: large, delay: delay}, nil
}

// b64Answer is an images answer carrying one b64_json PNG of about n bytes.
func b64Answer(n int) ([]byte, error) {
	img, err := noisePNG(n)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"created": time.Now().Unix(),
		"data":    []map[string]string{{"b64_json": base64.StdEncoding.EncodeToString(img)}},
	})
}

// noisePNG returns a valid PNG of about n bytes: random pixels do not compress.
func noisePNG(n int) ([]byte, error) {
	side := 1
	for (side+1)*(side+1)*3 < n {
		side++
	}
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255
	}
	img.Set(0, 0, color.NRGBA{A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/images/generations" {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+upstreamKey {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}}`)
		return
	}
	var buf [512]byte
	body := buf[:0]
	for {
		n, err := r.Body.Read(buf[len(body):cap(buf)])
		body = buf[:len(body)+n]
		if err != nil || len(body) == cap(buf) {
			break
		}
	}
	_, _ = io.Copy(io.Discard, r.Body)
	if f.delay > 0 && bytes.Contains(body, []byte(slowMarker)) {
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	answer := f.answer
	if bytes.Contains(body, []byte(largeMarker)) {
		answer = f.large
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(answer))}
	_, _ = w.Write(answer)
}

// server is an HTTP server on a loopback port.
type server struct {
	URL  string // http://127.0.0.1:port
	Host string // 127.0.0.1:port
	srv  *http.Server
	done chan struct{}
}

func serve(addr string, h http.Handler) (*server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln := abortListener{l}
	s := &server{URL: "http://" + ln.Addr().String(), Host: ln.Addr().String(), done: make(chan struct{}),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			ErrorLog: discardLog}}
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) Close() {
	_ = s.srv.Close()
	<-s.done
}

// closeIdle closes the server's idle keep-alive connections (with a reset: see abort), so that
// the clients' ends of them (a gateway's pool to the fake upstream) go away without TIME_WAIT.
func (s *server) closeIdle() {
	s.srv.SetKeepAlivesEnabled(false)
	s.srv.SetKeepAlivesEnabled(true)
}

// abort makes closing c send a reset instead of a FIN, so that neither end of it lingers in
// TIME_WAIT. A run closes tens of thousands of loopback connections; left in TIME_WAIT for a
// minute they fill the ephemeral port range (28,232 ports here), and every later dial then
// searches it for a free port: in back-to-back runs the setups measured later were slower
// (in-flight: 2,235-2,258 req/s in second runs against 2,336-2,365 in first ones).
func abort(c net.Conn) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c
}

// abortListener accepts connections that close with a reset (abort).
type abortListener struct{ net.Listener }

func (l abortListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return abort(c), nil
}

// newReverseProxy is the bare baseline: httputil.ReverseProxy with a transport that keeps
// enough idle connections for the scenario's concurrency, nothing else.
func newReverseProxy(upstream string, maxConns int) (*httputil.ReverseProxy, *http.Transport, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, nil, err
	}
	tr := newTransport(maxConns)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	rp.ErrorLog = discardLog
	return rp, tr, nil
}

// newTransport is the load generator's (and the bare proxy's) transport: no idle-connection
// churn at the scenario's concurrency, no compression, connections closed with a reset (abort).
func newTransport(maxConns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return abort(c), nil
		},
		MaxIdleConns:        0, // no total cap
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}
