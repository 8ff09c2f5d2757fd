package providertest

import (
	"encoding/base64"
	"math/rand/v2"
)

// LargeB64 is the base64 text of an image of about n bytes, as the decoder benchmarks of the
// adapters carry it in a b64_json answer: a PNG signature and IHDR declaring 1024x1024, then n
// bytes of noise (which no compression shortens; the same noise every call).
func LargeB64(n int) string {
	img := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00\x00\x00\x04\x00\x08\x02\x00\x00\x00")
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		img = append(img, byte(r.Uint32()))
	}
	return base64.StdEncoding.EncodeToString(img)
}
