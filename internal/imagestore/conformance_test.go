package imagestore

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// pngBytes returns n bytes that start like a PNG (what sniffing looks at), the rest random.
func pngBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// do serves one request on s and returns the response.
func do(s *Store, method, name string) *http.Response {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, "/v1/images/files/"+name, nil))
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// conformance runs the checks every backend passes. open returns two stores on one fresh
// location (as two replicas open the same images_url), both with a TTL of an hour.
func conformance(t *testing.T, open func(t *testing.T) (a, b *Store)) {
	t.Run("PutGetHead", func(t *testing.T) {
		a, _ := open(t)
		data := pngBytes(3000)
		name, err := a.Put(ctx, data, "image/png")
		if err != nil {
			t.Fatal(err)
		}
		if !nameRE.MatchString(name) || !strings.HasSuffix(name, ".png") {
			t.Fatalf("name %q", name)
		}
		get := do(a, http.MethodGet, name)
		if got := body(t, get); get.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Fatalf("GET: %d, %d bytes", get.StatusCode, len(got))
		}
		head := do(a, http.MethodHead, name)
		if b := body(t, head); head.StatusCode != 200 || len(b) != 0 {
			t.Fatalf("HEAD: %d with %d body bytes", head.StatusCode, len(b))
		}
		for k, want := range map[string]string{"Content-Type": "image/png", "Content-Length": "3000",
			"Cache-Control": "private, max-age=3600, immutable", "X-Content-Type-Options": "nosniff"} {
			if get.Header.Get(k) != want || head.Header.Get(k) != want {
				t.Errorf("%s: GET %q, HEAD %q, want %q", k, get.Header.Get(k), head.Header.Get(k), want)
			}
		}
		if lm := get.Header.Get("Last-Modified"); lm == "" || lm != head.Header.Get("Last-Modified") {
			t.Errorf("Last-Modified: GET %q, HEAD %q", lm, head.Header.Get("Last-Modified"))
		}
		if link, err := a.Link(ctx, name, "https://gw.example/v1/images/files/"); err != nil || !a.Presigned() && link != "https://gw.example/v1/images/files/"+name {
			t.Errorf("link %q, %v", link, err)
		}
	})
	t.Run("UnknownAndBadNames", func(t *testing.T) {
		a, _ := open(t)
		name, err := a.Put(ctx, pngBytes(10), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{strings.Repeat("0", 32) + ".png", name[:10], "../../etc/passwd", ".x.tmp",
			strings.TrimSuffix(name, ".png") + ".jpg", strings.ToUpper(name)} {
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				if resp := do(a, m, bad); resp.StatusCode != 404 {
					t.Errorf("%s %s: %d", m, bad, resp.StatusCode)
				}
			}
		}
		if resp := do(a, http.MethodPost, name); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("SharedAcrossReplicas", func(t *testing.T) {
		a, b := open(t)
		data := pngBytes(5000)
		name, err := a.Put(ctx, data, "image/png")
		if err != nil {
			t.Fatal(err)
		}
		if resp := do(b, http.MethodGet, name); resp.StatusCode != 200 || !bytes.Equal(body(t, resp), data) {
			t.Fatalf("the other replica answers %d", resp.StatusCode)
		}
	})
	t.Run("ExpireAndSweep", func(t *testing.T) {
		a, b := open(t)
		old, err := a.Put(ctx, pngBytes(100), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		// Two hours on: past the TTL, refused at once, then deleted by a sweep.
		later := func() time.Time { return time.Now().Add(2 * time.Hour) }
		a.now = later
		if resp := do(a, http.MethodGet, old); resp.StatusCode != 404 {
			t.Fatalf("an expired image answers %d", resp.StatusCode)
		}
		if resp := do(a, http.MethodHead, old); resp.StatusCode != 404 {
			t.Fatalf("HEAD of an expired image answers %d", resp.StatusCode)
		}
		if n, err := a.Sweep(ctx); err != nil || n != 1 {
			t.Fatalf("sweep = %d, %v; want 1", n, err)
		}
		// Deleted, not only refused: now is now again for the other replica.
		if resp := do(b, http.MethodGet, old); resp.StatusCode != 404 {
			t.Fatalf("a swept image answers %d", resp.StatusCode)
		}
		a.now = time.Now
		fresh, err := a.Put(ctx, pngBytes(100), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := b.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep of fresh images = %d, %v; want 0", n, err)
		}
		if resp := do(b, http.MethodGet, fresh); resp.StatusCode != 200 {
			t.Fatalf("a fresh image answers %d after a sweep", resp.StatusCode)
		}
	})
	t.Run("ContentTypes", func(t *testing.T) {
		a, _ := open(t)
		jpeg := append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), pngBytes(50)[8:]...)
		webp := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), pngBytes(50)[8:]...)
		for _, c := range []struct {
			data          []byte
			declared, ext string
			want          string
		}{
			{pngBytes(40), "image/png", ".png", "image/png"},
			{pngBytes(40), "", ".png", "image/png"},                           // sniffed
			{jpeg, "application/octet-stream", ".jpg", "image/jpeg"},          // sniffed
			{jpeg, "image/jpeg; charset=binary", ".jpg", "image/jpeg"},        // parameters dropped
			{webp, "image/webp", ".webp", "image/webp"},                       // declared
			{[]byte("not an image at all"), "text/html", ".png", "image/png"}, // the default
		} {
			name, err := a.Put(ctx, c.data, c.declared)
			if err != nil {
				t.Fatal(err)
			}
			resp := do(a, http.MethodGet, name)
			if !strings.HasSuffix(name, c.ext) || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.want {
				t.Errorf("declared %q: name %s, %d %q; want %s, %s", c.declared, name, resp.StatusCode, resp.Header.Get("Content-Type"), c.ext, c.want)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		a, b := open(t)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					data := pngBytes(1000 + 100*w + i)
					name, err := a.Put(ctx, data, "image/png")
					if err != nil {
						t.Error(err)
						return
					}
					rec := httptest.NewRecorder()
					b.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/images/files/"+name, nil))
					if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), data) {
						t.Errorf("worker %d image %d: %d", w, i, rec.Code)
					}
				}
			}()
		}
		wg.Wait()
	})
}

// TestDiskConformance: two stores on one directory (a shared volume).
func TestDiskConformance(t *testing.T) {
	conformance(t, func(t *testing.T) (*Store, *Store) {
		dir := t.TempDir()
		a, err := Open(ctx, Options{URL: "file://" + dir, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(ctx, Options{Dir: dir, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if a.Kind() != "file" || a.String() != "file:"+dir {
			t.Fatalf("kind %q, %q", a.Kind(), a.String())
		}
		return a, b
	})
}

// TestFakeS3Conformance: two stores on one bucket and prefix of the Go fake.
func TestFakeS3Conformance(t *testing.T) {
	n := 0
	conformance(t, func(t *testing.T) (*Store, *Store) {
		n++
		return replicas(t, newFakeS3(t).url(fmt.Sprintf("images/run%d", n)))
	})
}

// replicas opens two stores on the images URL u, as two replicas do, with a TTL of an hour;
// they are closed when the test ends.
func replicas(t *testing.T, u string) (a, b *Store) {
	t.Helper()
	a, err := Open(ctx, Options{URL: u, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err = Open(ctx, Options{URL: u, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}
