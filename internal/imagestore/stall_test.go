package imagestore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/faultproxy"
)

// storeWithImage opens the store at url with the given timeout and puts one image in it.
func storeWithImage(t *testing.T, url string, timeout time.Duration) (*Store, string) {
	t.Helper()
	s, err := Open(ctx, Options{URL: url, TTL: time.Hour, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	name, err := s.Put(ctx, pngBytes(10), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	return s, name
}

// TestS3PartitionFailsFast: with the object store partitioned (a real TCP proxy that stops
// moving bytes), storing an image fails within the store's timeout instead of holding the
// request, and serving one answers 503 within it; when the partition heals both work again.
func TestS3PartitionFailsFast(t *testing.T) {
	f := newFakeS3(t)
	p, err := faultproxy.Start(strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	const timeout = 300 * time.Millisecond
	s, name := storeWithImage(t, "s3://imgs?endpoint=http://"+p.Addr(), timeout)
	if err := p.SetMode(faultproxy.Blackhole); err != nil {
		t.Fatal(err)
	}
	// Deadline guarantees, not performance claims: without the timeout both calls wait for as
	// long as the partition lasts (the test's own 10 s here).
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := s.Put(bounded, pngBytes(10), "image/png"); err == nil || !strings.Contains(err.Error(), "did not take the image within") {
		t.Errorf("put during a partition: %v; want the store's timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("put during a partition took %v with a %v timeout", d, timeout)
	}
	start = time.Now()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequestWithContext(bounded, http.MethodGet, "/v1/images/files/"+name, nil))
	if resp := rec.Result(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET during a partition: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("GET during a partition took %v with a %v timeout", d, timeout)
	}
	if err := p.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	p.CutExisting()
	if _, err := s.Put(ctx, pngBytes(10), "image/png"); err != nil {
		t.Errorf("put after the partition: %v", err)
	}
	if resp := do(s, http.MethodGet, name); resp.StatusCode != http.StatusOK {
		t.Errorf("GET after the partition: %d", resp.StatusCode)
	}
}

// TestS3StalledBodyEnds: an object store that stops sending in the middle of an image ends the
// client's response (short) once it has paused for the timeout, instead of holding the client and
// the connection for as long as the store hangs; a store that keeps sending slowly is not cut.
func TestS3StalledBodyEnds(t *testing.T) {
	f := newFakeS3(t)
	const timeout = 300 * time.Millisecond
	s, name := storeWithImage(t, f.url("imgs"), timeout)
	const part = 16 << 10
	release := make(chan struct{})
	defer close(release)
	stallAfter := 0 // parts sent before the store hangs; 0: never hangs, sends 8 parts slowly
	f.fault = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, name) {
			return false
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", fmt.Sprint(8*part))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("X-Amz-Meta-Imagegw-Expires", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
		for i := range 8 {
			if stallAfter > 0 && i == stallAfter {
				<-release
				return true
			}
			_, _ = w.Write(bytes.Repeat([]byte{byte(i)}, part))
			w.(http.Flusher).Flush()
			time.Sleep(timeout / 3) // slow, but never paused for the timeout
		}
		return true
	}
	gw := httptest.NewServer(s)
	defer gw.Close()
	get := func() (int, time.Duration) {
		start := time.Now()
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(gw.URL + "/v1/images/files/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, _ := io.Copy(io.Discard, resp.Body)
		return int(n), time.Since(start)
	}
	if n, _ := get(); n != 8*part {
		t.Errorf("a slow but steady store: %d of %d bytes; it must not be cut", n, 8*part)
	}
	stallAfter = 2
	n, d := get()
	if n != 2*part {
		t.Errorf("a store that hung after 2 parts: the client got %d bytes; want the %d sent", n, 2*part)
	}
	if d > 5*time.Second {
		t.Errorf("a store that hung mid-body held the client %v with a %v timeout", d, timeout)
	}
}
