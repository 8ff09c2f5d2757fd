package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/metrics"
)

// serve runs s on a loopback listener (the real Serve: connection tracking, ConnState, body
// deadlines on real connections) until the test ends, and returns its host:port.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// echoAPI mounts POST /v1/echo, which reads the whole body the way the front door does (a read
// error is a 400 in the envelope) and, after waitAfterRead, answers 200 with the byte count if
// the request's context is still live; and POST /v1/reject, which answers 401 without reading.
func echoAPI(waitAfterRead time.Duration) func(chi.Router) {
	return func(r chi.Router) {
		r.Post("/v1/echo", func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":{"message":"The request body could not be read.","type":"invalid_request_error","param":null,"code":null}}`))
				return
			}
			select {
			case <-time.After(waitAfterRead):
			case <-r.Context().Done():
				w.WriteHeader(499)
				return
			}
			_, _ = fmt.Fprintf(w, "%d", len(b))
		})
		r.Post("/v1/reject", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"no key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`))
		})
	}
}

// readResponse reads one response from c, failing the test past the timeout.
func readResponse(t *testing.T, c net.Conn, br *bufio.Reader, timeout time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, body
}

// expectClosed asserts that the server closes c (EOF or reset) within timeout.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader, timeout time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	_, err := br.ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the connection is still open (%v)", err)
	}
}

// TestBodyStallGets408: a body that stops arriving is cut once the grace has passed: the handler's
// read fails, the client gets a 408 in the OpenAI envelope in place of the handler's 400, and the
// connection is closed.
func TestBodyStallGets408(t *testing.T) {
	const grace = 300 * time.Millisecond
	m := metrics.New()
	addr := serve(t, New(Options{Metrics: m, BodyMinRate: 1000, BodyReadGrace: grace, Mount: echoAPI(0)}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("a", 100))
	br := bufio.NewReader(c)
	resp, body := readResponse(t, c, br, 10*time.Second)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", resp.StatusCode, body)
	}
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Type != "invalid_request_error" || env.Error.Code == nil ||
		*env.Error.Code != "request_timeout" || env.Error.Param != nil || !strings.Contains(env.Error.Message, "1000 bytes/s") {
		t.Errorf("envelope %s (%v)", body, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the 408")
	}
	// Not before the grace (the deadline lags what the bytes earned by less than a step, a
	// quarter of the grace); the upper bound is only a hang check.
	if took < grace*3/4 {
		t.Errorf("cut after %v, before the %v grace", took, grace)
	}
	expectClosed(t, c, br, 5*time.Second)
	if got := value(m.BodyTimeouts); got != 1 {
		t.Errorf("body timeouts = %v, want 1", got)
	}
	if got := value(m.Requests.WithLabelValues("/v1/echo", "POST", "408")); got != 1 {
		t.Errorf(`requests{route="/v1/echo",status="408"} = %v, want 1`, got)
	}
}

// TestBodyAtRateIsNotCut: a body that takes several graces to arrive but keeps above the minimum
// rate is read in full; the cleared deadline does not cancel the request while its handler works
// on after the body (net/http's background read of the connection would otherwise hit it); and
// the next request on the kept-alive connection starts afresh.
func TestBodyAtRateIsNotCut(t *testing.T) {
	const grace = 200 * time.Millisecond
	// The handler works on 1.2 s after the body, past the 0.8 s the body's bytes had left on
	// the deadline when they were all in.
	addr := serve(t, New(Options{BodyMinRate: 1000, BodyReadGrace: grace, Mount: echoAPI(1200 * time.Millisecond)}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for round := range 2 {
		// 1,800 bytes over ~1.2 s: 1,500 bytes/s, above the minimum, in bursts 100 ms apart.
		fmt.Fprintf(c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1800\r\n\r\n")
		for range 12 {
			time.Sleep(100 * time.Millisecond)
			if _, err := c.Write([]byte(strings.Repeat("b", 150))); err != nil {
				t.Fatalf("round %d: write: %v", round, err)
			}
		}
		resp, body := readResponse(t, c, br, 10*time.Second)
		if resp.StatusCode != http.StatusOK || string(body) != "1800" {
			t.Fatalf("round %d: status %d %s, want 200 1800", round, resp.StatusCode, body)
		}
		// Idle past the grace: the next request gets its own deadline.
		time.Sleep(2 * grace)
	}
}

// TestBodyUnreadTrickleIsCut: a handler that answers without reading the body (no key) is not
// held up by a trickling client: net/http's read of the rest is bounded, the answer goes out and
// the connection is closed.
func TestBodyUnreadTrickleIsCut(t *testing.T) {
	addr := serve(t, New(Options{Mount: echoAPI(0)}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/reject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	br := bufio.NewReader(c)
	resp, _ := readResponse(t, c, br, 10*time.Second)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want the handler's 401", resp.StatusCode)
	}
	// bodyDiscardWindow (1 s) bounds the wait, instead of the 10 s default grace.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the 401 took %v behind a trickling body", took)
	}
	expectClosed(t, c, br, 5*time.Second)
}

// TestBodyWholeTimeout: with no minimum rate, the whole-body bound still cuts a body.
func TestBodyWholeTimeout(t *testing.T) {
	addr := serve(t, New(Options{BodyMinRate: -1, BodyReadTimeout: 300 * time.Millisecond, Mount: echoAPI(0)}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
	br := bufio.NewReader(c)
	resp, body := readResponse(t, c, br, 10*time.Second)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "in full within 300ms") {
		t.Fatalf("status %d %s, want 408", resp.StatusCode, body)
	}
	expectClosed(t, c, br, 5*time.Second)
}

func TestBodyPolicyDefaults(t *testing.T) {
	p := newBodyPolicy(0, 0, 0)
	if p.rate != DefaultBodyMinRate || p.grace != DefaultBodyReadGrace || p.timeout != DefaultBodyReadTimeout || p.step != time.Second {
		t.Errorf("defaults: %+v", p)
	}
	if p := newBodyPolicy(-1, 0, -1); !p.off() {
		t.Errorf("negative rate and timeout: %+v, want off", p)
	}
}
