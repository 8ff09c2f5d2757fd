package ark

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"
	"time"
)

// answer2MB is an answer carrying one b64_json image of 2 MB (a PNG header, then noise).
func answer2MB() []byte {
	img := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00\x00\x00\x04\x00\x08\x02\x00\x00\x00")
	noise := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	img = append(img, noise...)
	return []byte(`{"created":1700000000,"data":[{"b64_json":"` + base64.StdEncoding.EncodeToString(img) +
		`","size":"1024x1024"}],"usage":{"generated_images":1,"output_tokens":4096,"total_tokens":4096}}`)
}

// BenchmarkDecodeB64Answer2MB is the translation of an answer with a 2 MB b64_json image.
//
//	go test -run '^$' -bench 'B64Answer2MB' -count 6 ./providers/ark/
func BenchmarkDecodeB64Answer2MB(b *testing.B) {
	body := answer2MB()
	now := time.Unix(1700000000, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := translate("ark", body, "b64_json", nil, now)
		if err != nil || len(res.Images) != 1 {
			b.Fatal(err)
		}
	}
}
