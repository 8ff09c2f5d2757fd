package ark

import (
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
)

// answer2MB is an answer carrying one b64_json image of 2 MB (a PNG header, then noise).
func answer2MB() []byte {
	return []byte(`{"created":1700000000,"data":[{"b64_json":"` + providertest.LargeB64(2<<20) +
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
