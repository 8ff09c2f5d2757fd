package providers_test

import (
	"compress/gzip"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/imagegw/imagegw/internal/httpx"
	"github.com/imagegw/imagegw/providers"
)

// TestSharedHeader sends one shared header on many concurrent calls, over HTTP/1.1 and HTTP/2,
// through the gateway's client: every call arrives with it (User-Agent and
// "Accept-Encoding: identity" added), an upstream that compresses when asked does not, and the
// header is unchanged afterwards (the race detector watches the concurrent reads).
func TestSharedHeader(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			var mu sync.Mutex
			var got []http.Header
			s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Header.Clone())
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
					w.Header().Set("Content-Encoding", "gzip")
					zw := gzip.NewWriter(w)
					zw.Write([]byte(`{"data":[]}`))
					zw.Close()
					return
				}
				w.Write([]byte(`{"data":[]}`))
			}))
			s.EnableHTTP2 = h2
			s.StartTLS()
			defer s.Close()
			c := providers.NoRedirects(httpx.New(httpx.Options{AllowHosts: []string{s.Listener.Addr().String()},
				TLSClientConfig: s.Client().Transport.(*http.Transport).TLSClientConfig}))

			h := providers.Header("Authorization", "Bearer sk-test", "content-type", "application/json", "Accept", "application/json")
			want := http.Header{"Authorization": {"Bearer sk-test"}, "Content-Type": {"application/json"},
				"Accept": {"application/json"}, "User-Agent": {httpx.DefaultUserAgent}, "Accept-Encoding": {"identity"}}
			if !equalHeader(h, want) {
				t.Fatalf("Header = %v, want %v", h, want)
			}
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL, strings.NewReader(`{}`))
					req.Header = h
					resp, err := providers.Send(c, req)
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					if err != nil || string(b) != `{"data":[]}` || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
						t.Errorf("answer %q over %s, %v", b, resp.Proto, err)
					}
				})
			}
			wg.Wait()
			if !equalHeader(h, want) {
				t.Fatalf("the shared header changed: %v", h)
			}
			if len(got) != 32 {
				t.Fatalf("%d calls arrived, want 32", len(got))
			}
			for _, g := range got {
				for k, vs := range want {
					if !slices.Equal(g[k], vs) {
						t.Fatalf("a call arrived with %s: %q, want %q", k, g[k], vs)
					}
				}
			}
		})
	}

	// WithHeader copies: the shared header keeps its fields.
	h := providers.Header("Content-Type", "application/json")
	c := providers.WithHeader(h, "content-type", "multipart/form-data; boundary=x", "X-Extra", "1")
	if c.Get("Content-Type") != "multipart/form-data; boundary=x" || c.Get("X-Extra") != "1" || c.Get("User-Agent") != httpx.DefaultUserAgent {
		t.Fatalf("WithHeader = %v", c)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("X-Extra") != "" {
		t.Fatalf("WithHeader changed the shared header: %v", h)
	}
}

func equalHeader(a, b http.Header) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}
