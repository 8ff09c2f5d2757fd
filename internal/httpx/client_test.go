package httpx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(ctx context.Context, c *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestBlockedByDefault(t *testing.T) {
	var hits atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	c := New(Options{DialTimeout: 2 * time.Second})

	urls := []string{
		s.URL,
		"http://localhost:" + port + "/",           // checked after resolution
		"http://0.0.0.0:" + port + "/",             // reaches the local host on Linux
		"http://127.1.2.3:" + port + "/",           // all of 127/8
		"http://[::ffff:127.0.0.1]:" + port + "/",  // IPv4-mapped IPv6
		"http://169.254.169.254/latest/meta-data/", // AWS/GCP/Azure metadata
		"http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.0.1/", "http://100.64.0.1/",
		"http://[::1]:" + port + "/",
		"http://[::]:" + port + "/",
		"http://[fd00:ec2::254]/latest/meta-data/", // AWS IPv6 metadata
		"http://[fe80::1]/",
		"http://[64:ff9b::a9fe:a9fe]/", // NAT64 spelling of 169.254.169.254
	}
	for _, u := range urls {
		_, err := get(context.Background(), c, u)
		if err == nil {
			t.Errorf("GET %s succeeded, want ErrBlockedAddress", u)
			continue
		}
		if strings.Contains(u, "[") && !errors.Is(err, ErrBlockedAddress) && noIPv6(err) {
			t.Logf("GET %s: no IPv6 on this machine: %v", u, err)
			continue
		}
		if !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("GET %s: %v, want ErrBlockedAddress", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was reached %d times", n)
	}
}

func TestAllowHostsForms(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, port, _ := net.SplitHostPort(s.Listener.Addr().String())
	cases := []struct {
		allow []string
		url   string
	}{
		{[]string{"127.0.0.1"}, s.URL},
		{[]string{"127.0.0.1:" + port}, s.URL},
		{[]string{"127.0.0.0/8"}, s.URL},
		{[]string{"::ffff:127.0.0.1"}, s.URL},
		{[]string{"localhost"}, "http://localhost:" + port},
		{[]string{"LOCALHOST:" + port}, "http://localhost:" + port},
	}
	for _, tc := range cases {
		body, err := get(context.Background(), New(Options{AllowHosts: tc.allow}), tc.url)
		if err != nil || body != "ok" {
			t.Errorf("allow %v, GET %s = %q, %v", tc.allow, tc.url, body, err)
		}
	}
	// The port must match when the entry has one.
	_, err := get(context.Background(), New(Options{AllowHosts: []string{"127.0.0.1:1"}}), s.URL)
	if !errors.Is(err, ErrBlockedAddress) {
		t.Errorf("allow 127.0.0.1:1, GET %s: %v, want ErrBlockedAddress", s.URL, err)
	}
}

func TestRedirects(t *testing.T) {
	var hitsB atomic.Int32
	b := server(t, func(w http.ResponseWriter, r *http.Request) { hitsB.Add(1); io.WriteString(w, "internal") })
	var a *httptest.Server
	a = server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-blocked":
			http.Redirect(w, r, b.URL+"/secret", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://example.com/x.png", http.StatusMovedPermanently)
		case "/to-gopher":
			http.Redirect(w, r, "gopher://127.0.0.1:70/", http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/to-self":
			http.Redirect(w, r, a.URL+"/final", http.StatusFound)
		case "/final":
			io.WriteString(w, "final")
		}
	})
	c := allowing(Options{MaxRedirects: 3}, a)

	for path, want := range map[string]error{
		"/to-blocked":  ErrBlockedAddress,
		"/to-metadata": ErrBlockedAddress,
		"/to-file":     ErrBlockedScheme,
		"/to-ftp":      ErrBlockedScheme,
		"/to-gopher":   ErrBlockedScheme,
		"/loop":        ErrTooManyRedirects,
	} {
		_, err := get(context.Background(), c, a.URL+path)
		if !errors.Is(err, want) {
			t.Errorf("GET %s: %v, want %v", path, err, want)
		}
	}
	if n := hitsB.Load(); n != 0 {
		t.Errorf("the blocked server was reached %d times", n)
	}
	if body, err := get(context.Background(), c, a.URL+"/to-self"); err != nil || body != "final" {
		t.Errorf("allowed redirect: %q, %v", body, err)
	}

	// Negative MaxRedirects: the 3xx comes back as is.
	resp, err := allowing(Options{MaxRedirects: -1}, a).Get(a.URL + "/to-blocked")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("MaxRedirects -1: status %d, want 302", resp.StatusCode)
	}
}

func TestRedirectCount(t *testing.T) {
	var hits atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/again", http.StatusFound)
	})
	_, err := get(context.Background(), allowing(Options{MaxRedirects: 2}, s), s.URL)
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("err = %v, want ErrTooManyRedirects", err)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (the original and 2 redirects)", n)
	}
}

func TestSchemes(t *testing.T) {
	c := New(Options{})
	for _, u := range []string{"ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "unix:///var/run/docker.sock"} {
		_, err := get(context.Background(), c, u)
		if !errors.Is(err, ErrBlockedScheme) {
			t.Errorf("GET %s: %v, want ErrBlockedScheme", u, err)
		}
	}
}

func TestHTTPSOnly(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Redirect(w, r, "http://example.com/", http.StatusFound)
			return
		}
		io.WriteString(w, "secure")
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	ts.StartTLS()
	t.Cleanup(ts.Close)
	tlsConf := ts.Client().Transport.(*http.Transport).TLSClientConfig
	c := allowing(Options{HTTPSOnly: true, TLSClientConfig: tlsConf}, ts)

	if body, err := get(context.Background(), c, ts.URL); err != nil || body != "secure" {
		t.Fatalf("https GET = %q, %v", body, err)
	}
	if _, err := get(context.Background(), c, strings.Replace(ts.URL, "https:", "http:", 1)); !errors.Is(err, ErrBlockedScheme) {
		t.Errorf("http GET: %v, want ErrBlockedScheme", err)
	}
	if _, err := get(context.Background(), c, ts.URL+"/down"); !errors.Is(err, ErrBlockedScheme) {
		t.Errorf("redirect to http: %v, want ErrBlockedScheme", err)
	}
	// Without the test CA the certificate is refused: TLSClientConfig really is used.
	if _, err := get(context.Background(), allowing(Options{}, ts), ts.URL); err == nil {
		t.Error("a self-signed certificate was accepted without the test CA")
	}
}

// slowServer answers after delay, or when the client goes away.
func slowServer(t *testing.T, delay time.Duration) *httptest.Server {
	return server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	})
}

func TestTimeouts(t *testing.T) {
	s := slowServer(t, 5*time.Second)
	for name, o := range map[string]Options{
		"Timeout":               {Timeout: 100 * time.Millisecond},
		"ResponseHeaderTimeout": {ResponseHeaderTimeout: 100 * time.Millisecond},
	} {
		start := time.Now()
		_, err := get(context.Background(), allowing(o, s), s.URL)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: err = %v, want a timeout", name, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: returned after %v", name, d)
		}
	}
}

func TestContextCancel(t *testing.T) {
	s := slowServer(t, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := get(ctx, allowing(Options{}, s), s.URL)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = get(ctx, allowing(Options{}, s), s.URL)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestUserAgentAndTransport(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.UserAgent()) })
	c := allowing(Options{UserAgent: "imagegw-test/1"}, s)
	if ua, _ := get(context.Background(), c, s.URL); ua != "imagegw-test/1" {
		t.Errorf("default User-Agent = %q", ua)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL, nil)
	req.Header.Set("User-Agent", "caller/2")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "caller/2" || req.Header.Get("User-Agent") != "caller/2" {
		t.Errorf("caller's User-Agent = %q", b)
	}
	// The default is added to a copy: the caller's request keeps its own headers.
	req, _ = http.NewRequest(http.MethodGet, s.URL, nil)
	req.Header.Set("Accept", "image/png")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "imagegw-test/1" || len(req.Header) != 1 || req.Header.Get("Accept") != "image/png" {
		t.Errorf("User-Agent sent %q; caller's headers after the call: %v", b, req.Header)
	}

	tr := New(Options{}).Transport.(*guard).base
	if tr.Proxy != nil {
		t.Error("the transport uses a proxy")
	}
	if tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || tr.MaxIdleConns != DefaultMaxIdleConns ||
		tr.TLSHandshakeTimeout != DefaultTLSHandshakeTimeout || tr.ResponseHeaderTimeout != DefaultResponseHeaderTimeout {
		t.Errorf("defaults not applied: %+v", tr)
	}
	if c := New(Options{Timeout: -1}); c.Timeout != 0 {
		t.Errorf("negative Timeout gave %v, want none", c.Timeout)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	c := allowing(Options{}, s)
	for i := 0; i < 20; i++ {
		if _, err := get(context.Background(), c, fmt.Sprintf("%s/%d", s.URL, i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential requests, want 1", n)
	}
}
