package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/imagegw/imagegw/internal/metrics"
)

// TestMethodLabelsAreClosed: free-form methods cannot create request series; every label of
// imagegw_http_requests_total is from a bounded set.
func TestMethodLabelsAreClosed(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(New(Options{Metrics: m, Mount: newBlockingAPI().mount}).Handler())
	defer srv.Close()
	methods := []string{"GET", "HEAD", "OPTIONS", "PROPFIND", "get", "X-EVIL-1", "X-EVIL-2"}
	for i := range 50 {
		methods = append(methods, "RANDOM"+strconv.Itoa(i))
	}
	for _, method := range methods {
		for _, path := range []string{"/healthz", "/v1/images/files/0123.png", "/no/such/" + method} {
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
	series := 0
	for _, mf := range mfs {
		if mf.GetName() != "imagegw_http_requests_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			series++
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "method":
					if !slices.Contains(allowed, l.GetValue()) {
						t.Errorf("method label %q", l.GetValue())
					}
				case "route":
					if !slices.Contains([]string{"/healthz", "/v1/images/files/{name}", "unmatched"}, l.GetValue()) {
						t.Errorf("route label %q", l.GetValue())
					}
				}
			}
		}
	}
	if series > 20 {
		t.Errorf("%d request series from %d methods", series, len(methods))
	}
	// The 54 free-form methods on 3 paths: chi refuses methods it does not know before routing.
	if got := value(m.Requests.WithLabelValues("unmatched", "other", "405")); got != float64(3*(len(methods)-3)) {
		t.Errorf(`requests{route="unmatched",method="other",status="405"} = %v, want %d`, got, 3*(len(methods)-3))
	}
}

// TestHeadOnGetRoutes: HEAD is answered on every GET route (hosted images, health) with GET's
// headers and no body; a route without GET still answers 405.
func TestHeadOnGetRoutes(t *testing.T) {
	srv := httptest.NewServer(New(Options{Mount: newBlockingAPI().mount}).Handler())
	defer srv.Close()
	for _, c := range []struct {
		path   string
		status int
		length string
	}{
		{"/healthz", 200, "16"},
		{"/v1/images/files/0123.png", 200, "3"},
		{"/v1/images/generations", 405, ""},
		{"/nope", 404, ""},
	} {
		req, _ := http.NewRequest(http.MethodHead, srv.URL+c.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes, want %d and none", c.path, resp.StatusCode, len(body), c.status)
		}
		if c.length != "" && resp.Header.Get("Content-Length") != c.length {
			t.Errorf("HEAD %s: Content-Length %q, want %s", c.path, resp.Header.Get("Content-Length"), c.length)
		}
	}
}
