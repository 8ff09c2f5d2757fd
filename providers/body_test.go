package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

func response(body string, contentLength int64) *http.Response {
	return &http.Response{StatusCode: 200, ContentLength: contentLength, Body: io.NopCloser(strings.NewReader(body))}
}

func TestReadResponse(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	for _, tc := range []struct {
		name, body string
		cl, max    int64
		kind       Kind
	}{
		{"sized", long, 100_000, 0, ""},
		{"chunked", long, -1, 0, ""},
		{"empty", "", 0, 0, ""},
		{"chunked at the cap", long, -1, 100_000, ""},
		{"chunked over the cap", long, -1, 99_999, KindUpstreamBadResponse},
		{"announced over the cap", long, 100_000, 99_999, KindUpstreamBadResponse},
		{"shorter than announced", long, 100_001, 0, KindUpstreamUnavailable},
	} {
		body, release, err := ReadResponse(context.Background(), "p", response(tc.body, tc.cl), tc.max)
		if tc.kind != "" {
			var pe *Error
			if !errors.As(err, &pe) || pe.Kind != tc.kind {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.kind)
			}
			release()
			continue
		}
		if err != nil || string(body) != tc.body {
			t.Errorf("%s: %d bytes, %v", tc.name, len(body), err)
		}
		release()
		release() // a second call does nothing
	}
}

// TestReadResponseReusesBuffers: a released buffer serves the next answer of its size class,
// so a steady flow of large answers does not allocate (nor fault in) a buffer each.
func TestReadResponseReusesBuffers(t *testing.T) {
	body := strings.Repeat("b", 3<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		b, release, err := ReadResponse(context.Background(), "p", response(body, int64(len(body))), 0)
		if err != nil || len(b) != len(body) {
			t.Fatal(err)
		}
		release()
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 3*(4<<20) && !raceEnabled { // a GC may empty the pool once or twice
		t.Errorf("20 reads of 3 MB allocated %d MB", n>>20)
	}
	if cap(*getBuffer(5000)) != 8192 || cap(*getBuffer(1)) != minPooled || cap(*getBuffer(200 << 20)) != 200<<20 {
		t.Error("size classes")
	}
}
