package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a redirect target that records the requests it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []byte // what it answers
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r)
	rc.mu.Unlock()
	w.Write(rc.body)
}

func (rc *recorder) requests() []*http.Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*http.Request(nil), rc.reqs...)
}

// credentials are headers a hostile redirect must never see again.
var credentials = http.Header{
	"Authorization":       {"Bearer sk-secret-key-0123456789"},
	"Api-Key":             {"ideogram-secret-key-0123456789"},
	"X-Api-Key":           {"another-secret-0123456789"},
	"Cookie":              {"session=secret-cookie-0123456789"},
	"Proxy-Authorization": {"Basic c2VjcmV0"},
	"Openai-Organization": {"org-secret"},
}

// hostileRedirector answers every request with a 307 to target+path.
func hostileRedirector(t *testing.T, target string) *httptest.Server {
	return server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+"/landed?from=hostile", http.StatusTemporaryRedirect)
	})
}

func TestRedirectHopsCarryNoCredentials(t *testing.T) {
	img := testPNG(t)
	target := &recorder{body: img}
	ts := server(t, target.ServeHTTP)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	// The same host with another port, and another host name for the same address.
	for name, to := range map[string]string{
		"other port": ts.URL,
		"other host": "http://localhost:" + port,
	} {
		t.Run(name, func(t *testing.T) {
			origin := hostileRedirector(t, to)
			c := allowing(Options{AllowHosts: []string{"localhost"}}, origin, ts)
			req, _ := http.NewRequest(http.MethodGet, origin.URL+"/img.png?sig=signed-query-0123", nil)
			for k, vs := range credentials {
				req.Header[k] = vs
			}
			req.Header.Set("Accept", "image/png")
			req.AddCookie(&http.Cookie{Name: "c", Value: "secret-cookie-2"})
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := target.requests()
			if len(got) == 0 {
				t.Fatal("the redirect was not followed")
			}
			last := got[len(got)-1]
			for k := range credentials {
				if v := last.Header.Get(k); v != "" {
					t.Errorf("the redirect target got %s: %q", k, v)
				}
			}
			if v := last.Header.Get("Referer"); v != "" {
				t.Errorf("the redirect target got a Referer: %q", v)
			}
			if len(last.Cookies()) != 0 {
				t.Errorf("the redirect target got cookies: %v", last.Cookies())
			}
			if last.Header.Get("Accept") != "image/png" || last.UserAgent() != DefaultUserAgent {
				t.Errorf("harmless headers were dropped: %v", last.Header)
			}
		})
	}

	// The Fetcher follows the redirect and gets the image; the hop carries nothing it should not.
	origin := hostileRedirector(t, ts.URL)
	data, _, err := NewFetcher(allowing(Options{}, origin, ts)).Fetch(context.Background(), origin.URL+"/x.png", 1<<20)
	if err != nil || !bytes.Equal(data, img) {
		t.Fatalf("Fetch through a redirect: %d bytes, %v", len(data), err)
	}
	got := target.requests()
	if h := got[len(got)-1].Header; h.Get("Authorization") != "" || h.Get("Referer") != "" {
		t.Fatalf("the Fetcher's hop carried %v", h)
	}
}

func TestAPICallsDoNotFollowRedirects(t *testing.T) {
	target := &recorder{body: []byte(`{"data":[{"url":"https://evil.example/x.png"}]}`)}
	ts := server(t, target.ServeHTTP)
	origin := hostileRedirector(t, ts.URL)
	c := allowing(Options{}, origin, ts)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		req, _ := http.NewRequest(method, origin.URL+"/v1/images/generations", strings.NewReader(`{"prompt":"a cat"}`))
		req.Header.Set("Authorization", "Bearer sk-secret-key-0123456789")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("%s: status %d, want the 307 itself", method, resp.StatusCode)
		}
	}
	if n := len(target.requests()); n != 0 {
		t.Fatalf("the redirect target was reached %d times", n)
	}
}

// trickle serves a PNG-looking body of n bytes, one byte per every.
func trickle(t *testing.T, n int, every time.Duration) *httptest.Server {
	img := testPNG(t)
	body := append(img, make([]byte, max(0, n-len(img)))...)
	return server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(every):
			case <-r.Context().Done():
				return
			}
		}
	})
}

func TestTrickledBodyFailsWithinTheTimeout(t *testing.T) {
	s := trickle(t, 600, time.Second) // 1 byte/s: ten minutes for the whole body
	f := NewFetcher(allowing(Options{Timeout: time.Second, MinBodyRate: -1}, s))
	start := time.Now()
	_, _, err := f.Fetch(context.Background(), s.URL, 1<<20)
	took := time.Since(start)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if took > 3*time.Second {
		t.Fatalf("the fetch took %v with a 1 s timeout", took)
	}
}

func TestMinBodyRate(t *testing.T) {
	s := trickle(t, 600, 20*time.Millisecond) // 50 bytes/s
	f := NewFetcher(allowing(Options{MinBodyRate: 1000, BodyRateWindow: 200 * time.Millisecond}, s))
	start := time.Now()
	_, _, err := f.Fetch(context.Background(), s.URL, 1<<20)
	took := time.Since(start)
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("err = %v, want ErrTooSlow", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ErrTooSlow is not a timeout: %v", err)
	}
	if took > 3*time.Second {
		t.Fatalf("the fetch took %v with a 200 ms window", took)
	}

	// A body that keeps up passes, over several windows.
	s = trickle(t, 300, time.Millisecond)
	f = NewFetcher(allowing(Options{MinBodyRate: 10, BodyRateWindow: 100 * time.Millisecond}, s))
	if _, _, err := f.Fetch(context.Background(), s.URL, 1<<20); err != nil {
		t.Fatalf("a body at the allowed rate failed: %v", err)
	}
}

// TestMinBodyRateCutsOffAWaitingRead holds the rate check to cutting off a read that is
// blocked on the network, over HTTP/1 (the connection is closed under it) and HTTP/2 (the
// stream is reset), and then to the connection pool still serving a new request.
func TestMinBodyRateCutsOffAWaitingRead(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			stall := make(chan struct{})
			t.Cleanup(func() { close(stall) })
			s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ok" {
					w.Write([]byte("fine"))
					return
				}
				w.Header().Set("Content-Length", "1000")
				w.Write([]byte("the first bytes, then nothing"))
				w.(http.Flusher).Flush()
				select {
				case <-stall:
				case <-r.Context().Done():
				}
			}))
			s.EnableHTTP2 = h2
			s.StartTLS()
			t.Cleanup(s.Close)
			c := allowing(Options{MinBodyRate: 1000, BodyRateWindow: 200 * time.Millisecond,
				TLSClientConfig: s.Client().Transport.(*http.Transport).TLSClientConfig}, s)
			resp, err := c.Get(s.URL + "/stall")
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
				t.Fatalf("protocol %s, want HTTP/%d", resp.Proto, want)
			}
			start := time.Now()
			_, err = io.ReadAll(resp.Body)
			took := time.Since(start)
			resp.Body.Close()
			if !errors.Is(err, ErrTooSlow) {
				t.Fatalf("err = %v, want ErrTooSlow", err)
			}
			if took > 3*time.Second {
				t.Fatalf("the read was cut off after %v with a 200 ms window", took)
			}
			resp, err = c.Get(s.URL + "/ok")
			if err != nil {
				t.Fatalf("the next request: %v", err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "fine" {
				t.Fatalf("the next request: %q, %v", b, err)
			}
		})
	}
}
