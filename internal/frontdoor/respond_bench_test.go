package frontdoor

import (
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"testing"
)

// discardWriter is a ResponseWriter that throws the body away.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkWriteImages2MB writes a response with one 2 MB image: from raw bytes (encoded on the
// way out, as for images downloaded from a URL) and from an upstream's base64 text (written as
// it came).
//
//	go test -run '^$' -bench WriteImages2MB -count 6 ./internal/frontdoor/
func BenchmarkWriteImages2MB(b *testing.B) {
	data := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	text := []byte(base64.StdEncoding.EncodeToString(data))
	for _, tc := range []struct {
		name string
		it   item
	}{{"encode", item{data: data, size: "1024x1024"}}, {"passthrough", item{b64: text, size: "1024x1024"}}} {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			items := []item{tc.it}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if err := writeImages(w, 1700000000, items); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
