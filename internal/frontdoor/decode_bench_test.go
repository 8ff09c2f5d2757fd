package frontdoor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

// BenchmarkDecodeJSON decodes the usual small generation request.
//
//	go test -run '^$' -bench DecodeJSON -count 6 ./internal/frontdoor/
func BenchmarkDecodeJSON(b *testing.B) {
	body := `{"model":"openai-compatible/flux-schnell","prompt":"a lighthouse on a cliff at dusk, oil painting","size":"512x512","n":1,"response_format":"b64_json"}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/images/generations", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if _, err := decodeJSON(r, providers.OpGenerate, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
