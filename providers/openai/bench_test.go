package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/imagegw/imagegw/internal/httpx"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/providertest"
)

// answer2MB is an images answer carrying one b64_json image of 2 MB (a PNG header, then noise).
func answer2MB() []byte {
	return []byte(`{"created":1700000000,"data":[{"b64_json":"` + providertest.LargeB64(2<<20) +
		`","revised_prompt":"a lighthouse"}],"usage":{"input_tokens":10,"output_tokens":4160,"total_tokens":4170}}`)
}

// BenchmarkDecodeB64Answer2MB is the translation of an answer with a 2 MB b64_json image
// (decodeImages and toResult), without the read of the body.
//
//	go test -run '^$' -bench 'B64Answer2MB' -count 6 ./providers/openai/
func BenchmarkDecodeB64Answer2MB(b *testing.B) {
	body := answer2MB()
	req := &providers.Request{Model: "gpt-image-1", Width: 1024, Height: 1024}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := decodeImages(body)
		if err != nil {
			b.Fatal(err)
		}
		res, err := toResult("openai", r, req, resultOptions{})
		if err != nil || len(res.Images) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswerB64Answer2MB is the whole answer path of one call with a 2 MB b64_json image:
// the read of the body (its Content-Length given, as upstreams send it) and its translation;
// the result is released as the front door does once the response is written.
func BenchmarkAnswerB64Answer2MB(b *testing.B) {
	body := answer2MB()
	b.SetBytes(int64(len(body)))
	benchAnswer(b, body, &providers.Request{Model: "gpt-image-1", Width: 1024, Height: 1024})
}

// BenchmarkAnswerSmall is the answer path of one call with a ~1 KB b64_json image, the lean
// path's usual answer.
func BenchmarkAnswerSmall(b *testing.B) {
	img := base64.StdEncoding.EncodeToString(pngImage(b, 8, 8, false).Data)
	body := []byte(`{"created":1700000000,"data":[{"b64_json":"` + img + `"}]}`)
	benchAnswer(b, body, &providers.Request{Model: "flux-schnell", Width: 512, Height: 512})
}

// benchAnswer reads and translates body as an upstream's 200 answer to req (its Content-Length
// given, as upstreams send it), releasing each result as the front door does.
func benchAnswer(b *testing.B, body []byte, req *providers.Request) {
	c, err := newClient(Name, providers.Config{APIKey: testKey}, DefaultBaseURL)
	if err != nil {
		b.Fatal(err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(body))}}
	b.ReportAllocs()
	for b.Loop() {
		resp := &http.Response{StatusCode: 200, Header: hdr, ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body))}
		res, err := c.answer(context.Background(), req, resp, resultOptions{})
		if err != nil || len(res.Images) != 1 {
			b.Fatal(err)
		}
		release(res)
	}
}

// BenchmarkGenerateSmall is one whole call of an OpenAI-compatible channel as the gateway makes
// it (providers.Do, through the gateway's outbound client: SSRF guard, body rate check,
// redirect refusal, call deadline) to a loopback upstream answering with a ~1 KB b64_json image,
// the lean path's call. allocs/op counts the upstream server's allocations too.
//
//	go test -run '^$' -bench GenerateSmall -benchmem -count 6 ./providers/openai/
func BenchmarkGenerateSmall(b *testing.B) {
	img := base64.StdEncoding.EncodeToString(pngImage(b, 8, 8, false).Data)
	answer := []byte(`{"created":1700000000,"data":[{"b64_json":"` + img + `"}]}`)
	length := strconv.Itoa(len(answer))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{length}
		_, _ = w.Write(answer)
	}))
	defer up.Close()
	client := httpx.New(httpx.Options{AllowHosts: []string{"127.0.0.1"}})
	defer client.CloseIdleConnections()
	a, err := NewCompatible(providers.Config{APIKey: testKey, BaseURL: up.URL + "/v1", HTTP: client})
	if err != nil {
		b.Fatal(err)
	}
	req := &providers.Request{Operation: providers.OpGenerate, Model: "flux-schnell", Prompt: "a lighthouse",
		N: 1, Width: 512, Height: 512, ResponseFormat: "b64_json"}
	b.ReportAllocs()
	for b.Loop() {
		res, err := providers.Do(context.Background(), a, req)
		if err != nil || len(res.Images) != 1 {
			b.Fatal(err)
		}
		release(res)
	}
}
