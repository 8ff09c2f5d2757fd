package httpx

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
)

// twoMB is a 2 MiB body that sniffs as PNG (Fetch does not decode).
func twoMB(b *testing.B) []byte {
	img := make([]byte, 2<<20)
	copy(img, testPNG(b))
	for i := 1024; i < len(img); i++ {
		img[i] = byte(i * 7)
	}
	return img
}

func benchmarkFetch(b *testing.B, withLength bool) {
	img := twoMB(b)
	s := server(b, func(w http.ResponseWriter, r *http.Request) {
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		}
		w.Write(img)
	})
	f := NewFetcher(allowing(Options{}, s))
	ctx := context.Background()
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		data, _, err := f.Fetch(ctx, s.URL+"/img.png", 4<<20)
		if err != nil || len(data) != len(img) {
			b.Fatalf("%d bytes, %v", len(data), err)
		}
	}
}

// BenchmarkFetch2MB downloads a 2 MiB image with a Content-Length: one exact allocation.
func BenchmarkFetch2MB(b *testing.B) { benchmarkFetch(b, true) }

// BenchmarkFetch2MBChunked downloads a 2 MiB image without a length: a pooled buffer, one copy.
func BenchmarkFetch2MBChunked(b *testing.B) { benchmarkFetch(b, false) }

// BenchmarkDecodeDataURI2MB decodes a 2 MiB image given as a data URI.
func BenchmarkDecodeDataURI2MB(b *testing.B) {
	img := twoMB(b)
	u := "data:image/png;base64," + base64.StdEncoding.EncodeToString(img)
	b.SetBytes(int64(len(img)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeDataURI(u, 4<<20); err != nil {
			b.Fatal(err)
		}
	}
}
