package imagestore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ctx is the tests' context.
var ctx = context.Background()

// diskOf returns a file store's backend.
func diskOf(s *Store) *disk { return s.Backend().(*disk) }

// gauge and counter stand in for the Prometheus collectors.
type gauge struct{ v atomic.Int64 }

func (g *gauge) Set(v float64) { g.v.Store(int64(v)) }

type counter struct{ v atomic.Int64 }

func (c *counter) Add(v float64) { c.v.Add(int64(v)) }

func get(s *Store, name string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/images/files/"+name, nil))
	return rec
}

// onDisk returns the total size and count of the image files in dir, and the other files.
func onDisk(t *testing.T, dir string) (total int64, n int, other []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !nameRE.MatchString(e.Name()) {
			other = append(other, e.Name())
			continue
		}
		total += info.Size()
		n++
	}
	return total, n, other
}

func TestPutServeExpire(t *testing.T) {
	g := &gauge{}
	s, err := Open(ctx, Options{Dir: t.TempDir(), TTL: time.Hour, Bytes: g})
	if err != nil {
		t.Fatal(err)
	}
	name, err := s.Put(ctx, []byte("\x89PNG fake"), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if diskOf(s).Bytes() != 9 || g.v.Load() != 9 || diskOf(s).Len() != 1 {
		t.Fatalf("bytes = %d, gauge = %d, len = %d; want 9, 9, 1", diskOf(s).Bytes(), g.v.Load(), diskOf(s).Len())
	}
	if rec := get(s, name); rec.Code != 200 || rec.Body.String() != "\x89PNG fake" || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("serve: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	for _, bad := range []string{"../../etc/passwd", name[:10], ".x.tmp"} {
		if rec := get(s, bad); rec.Code != 404 {
			t.Fatalf("%s served with %d", bad, rec.Code)
		}
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if rec := get(s, name); rec.Code != 404 {
		t.Fatalf("expired image served: %d", rec.Code)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	if diskOf(s).Bytes() != 0 || g.v.Load() != 0 || diskOf(s).Len() != 0 {
		t.Fatalf("after the sweep: bytes = %d, gauge = %d, len = %d; want 0", diskOf(s).Bytes(), g.v.Load(), diskOf(s).Len())
	}
}

func TestCapEvictsOldestFirst(t *testing.T) {
	g, c := &gauge{}, &counter{}
	s, err := Open(ctx, Options{Dir: t.TempDir(), TTL: time.Hour, MaxBytes: 300, Bytes: g, Evictions: c})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 5 {
		name, err := s.Put(ctx, bytes.Repeat([]byte{byte(i)}, 100), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if diskOf(s).Bytes() != 300 || g.v.Load() != 300 || diskOf(s).Len() != 3 || c.v.Load() != 2 {
		t.Fatalf("bytes = %d, gauge = %d, len = %d, evicted = %d; want 300, 300, 3, 2", diskOf(s).Bytes(), g.v.Load(), diskOf(s).Len(), c.v.Load())
	}
	for i, name := range names {
		want := http.StatusOK
		if i < 2 {
			want = http.StatusNotFound // evicted, as an expired image
		}
		if rec := get(s, name); rec.Code != want {
			t.Errorf("image %d: %d, want %d", i, rec.Code, want)
		}
	}
	if total, n, other := onDisk(t, diskOf(s).dir); total != 300 || n != 3 || len(other) != 0 {
		t.Fatalf("on disk: %d bytes in %d images, others %v", total, n, other)
	}

	// An image larger than the whole cap is kept (its URL works) and pushes out everything older.
	big, err := s.Put(ctx, bytes.Repeat([]byte{9}, 500), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if rec := get(s, big); rec.Code != 200 || diskOf(s).Bytes() != 500 || diskOf(s).Len() != 1 || c.v.Load() != 5 {
		t.Fatalf("big image: %d; bytes = %d, len = %d, evicted = %d", rec.Code, diskOf(s).Bytes(), diskOf(s).Len(), c.v.Load())
	}
	// The next write evicts it.
	if _, err := s.Put(ctx, bytes.Repeat([]byte{10}, 100), "image/png"); err != nil {
		t.Fatal(err)
	}
	if rec := get(s, big); rec.Code != 404 || diskOf(s).Bytes() != 100 {
		t.Fatalf("big image after the next write: %d; bytes = %d", rec.Code, diskOf(s).Bytes())
	}
}

func TestCapConcurrentWrites(t *testing.T) {
	const maxBytes = 20_000
	g, c := &gauge{}, &counter{}
	s, err := Open(ctx, Options{Dir: t.TempDir(), MaxBytes: maxBytes, Bytes: g, Evictions: c})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				data := bytes.Repeat([]byte{byte(w)}, 100+(w*60+i)*7%900)
				if _, err := s.Put(ctx, data, "image/webp"); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
				if b := diskOf(s).Bytes(); b > maxBytes+1000 {
					t.Errorf("bytes = %d during writes, over the cap plus one image", b)
				}
			}
		}()
	}
	// Readers and a sweeper run meanwhile.
	stop := make(chan struct{})
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_, _ = s.Sweep(ctx)
				_ = diskOf(s).Len()
			}
		}
	}()
	wg.Wait()
	close(stop)
	rg.Wait()

	total, n, other := onDisk(t, diskOf(s).dir)
	if diskOf(s).Bytes() > maxBytes || diskOf(s).Bytes() != total || int64(diskOf(s).Len()) != int64(n) || g.v.Load() != total {
		t.Fatalf("bytes = %d (gauge %d), len = %d; on disk %d bytes in %d images; cap %d", diskOf(s).Bytes(), g.v.Load(), diskOf(s).Len(), total, n, maxBytes)
	}
	if len(other) != 0 {
		t.Fatalf("files left besides images: %v", other)
	}
	if got := c.v.Load() + int64(n); got != written.Load() {
		t.Fatalf("evicted %d + kept %d = %d, want the %d written", c.v.Load(), n, got, written.Load())
	}
}

func TestReopenRestoresTotalAndOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(ctx, Options{Dir: dir, MaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if diskOf(s).MaxBytes() != math.MaxInt64 {
		t.Fatalf("max bytes = %d, want unlimited", diskOf(s).MaxBytes())
	}
	base := time.Now().Add(-time.Hour)
	var names []string
	for i := range 4 {
		name, err := s.Put(ctx, bytes.Repeat([]byte{byte(i)}, 100*(i+1)), "image/jpeg")
		if err != nil {
			t.Fatal(err)
		}
		// Written a minute apart, newest first in name order would be arbitrary: the file times decide.
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(filepath.Join(dir, name), mt, mt); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	// A write interrupted by a crash leaves a temporary file; Open removes it.
	tmp := filepath.Join(dir, ".0123.png.tmp")
	if err := os.WriteFile(tmp, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, base, base); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not an image"), 0o640); err != nil {
		t.Fatal(err)
	}

	g := &gauge{}
	r, err := Open(ctx, Options{Dir: dir, Bytes: g})
	if err != nil {
		t.Fatal(err)
	}
	if diskOf(r).Bytes() != 1000 || g.v.Load() != 1000 || diskOf(r).Len() != 4 {
		t.Fatalf("reopened: bytes = %d, gauge = %d, len = %d; want 1000, 1000, 4", diskOf(r).Bytes(), g.v.Load(), diskOf(r).Len())
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}

	// Reopening with a smaller cap evicts the oldest (by file time) until it fits: 100+200 go.
	c := &counter{}
	r, err = Open(ctx, Options{Dir: dir, MaxBytes: 700, Bytes: g, Evictions: c})
	if err != nil {
		t.Fatal(err)
	}
	if diskOf(r).Bytes() != 700 || g.v.Load() != 700 || c.v.Load() != 2 {
		t.Fatalf("reopened with a cap of 700: bytes = %d, gauge = %d, evicted = %d", diskOf(r).Bytes(), g.v.Load(), c.v.Load())
	}
	for i, name := range names {
		want := http.StatusOK
		if i < 2 {
			want = http.StatusNotFound
		}
		if rec := get(r, name); rec.Code != want {
			t.Errorf("image %d: %d, want %d", i, rec.Code, want)
		}
	}
	// A write then evicts the next oldest.
	if _, err := r.Put(ctx, bytes.Repeat([]byte{7}, 300), "image/png"); err != nil {
		t.Fatal(err)
	}
	if rec := get(r, names[2]); rec.Code != 404 || diskOf(r).Bytes() != 700 {
		t.Fatalf("after a write: image 2 answers %d, bytes = %d", rec.Code, diskOf(r).Bytes())
	}
}

func TestSweepKeepsTotal(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(ctx, Options{Dir: dir, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.Put(ctx, make([]byte, 100), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(50 * time.Minute) }
	fresh, err := s.Put(ctx, make([]byte, 200), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(50 * time.Minute)
	if err := os.Chtimes(filepath.Join(dir, fresh), mt, mt); err != nil {
		t.Fatal(err)
	}
	// A file this process did not write (another replica's, in a shared directory), expired.
	other := filepath.Join(dir, fmt.Sprintf("%032x.png", 1))
	if err := os.WriteFile(other, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(90 * time.Minute) }
	if n, err := s.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want 2", n, err)
	}
	if diskOf(s).Bytes() != 200 || diskOf(s).Len() != 1 || get(s, old).Code != 404 || get(s, fresh).Code != 200 {
		t.Fatalf("after the sweep: bytes = %d, len = %d", diskOf(s).Bytes(), diskOf(s).Len())
	}
}

// TestHead: HEAD on a hosted image answers GET's headers (type, length, caching) and no body,
// over a real connection; an unknown or expired name is a 404; other methods a 405.
func TestHead(t *testing.T) {
	s, err := Open(ctx, Options{Dir: t.TempDir(), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("\x89PNG fake image bytes")
	name, err := s.Put(ctx, data, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	do := func(method, name string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/v1/images/files/"+name, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	get, getBody := do(http.MethodGet, name)
	head, headBody := do(http.MethodHead, name)
	if head.StatusCode != http.StatusOK || len(headBody) != 0 {
		t.Fatalf("HEAD: %d with %d body bytes, want 200 and none", head.StatusCode, len(headBody))
	}
	if head.ContentLength != int64(len(data)) || head.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Errorf("HEAD Content-Length %q, want %d", head.Header.Get("Content-Length"), len(data))
	}
	if string(getBody) != string(data) {
		t.Errorf("GET body %q", getBody)
	}
	for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control", "Last-Modified", "X-Content-Type-Options"} {
		if head.Header.Get(h) == "" || head.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("%s: HEAD %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
		}
	}
	if resp, body := do(http.MethodHead, strings.Repeat("0", 32)+".png"); resp.StatusCode != http.StatusNotFound || len(body) != 0 {
		t.Errorf("HEAD of an unknown image: %d, %d body bytes", resp.StatusCode, len(body))
	}
	if resp, _ := do(http.MethodPost, name); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
