package fake

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzRequests throws arbitrary bodies at every endpoint: the fake must answer (200 or an
// OpenAI envelope), never panic.
func FuzzRequests(f *testing.F) {
	f.Add("/v1/images/generations", "application/json", []byte(`{"prompt":"cat","model":"gpt-image-1","n":2,"size":"auto"}`))
	f.Add("/v1/images/generations", "application/json", []byte(`{"prompt":"cat","n":1.5,"model":null}`))
	f.Add("/v1/images/edits", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\ncat\r\n--x--\r\n"))
	f.Add("/v1/images/variations", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--x--\r\n"))
	f.Add("/compat/v1/images/generations", "application/json", []byte(`{"model":"flux-dev","prompt":"cat","width":512,"height":512,"seed":1}`))
	oa, compat := New(Options{}), NewCompatible(Options{})
	f.Fuzz(func(t *testing.T, path, ct string, body []byte) {
		h, key := http.Handler(oa), DefaultKey
		if p, ok := bytes.CutPrefix([]byte(path), []byte("/compat")); ok {
			h, key, path = compat, DefaultCompatibleKey, string(p)
		}
		if len(path) == 0 || path[0] != '/' || bytes.HasPrefix([]byte(path), []byte("/private/")) || bytes.HasPrefix([]byte(path), []byte("/files/")) {
			return // not an API path, or an image URL (answered in the blob store's XML)
		}
		req := httptest.NewRequest(http.MethodPost, "http://fake"+"/", bytes.NewReader(body))
		req.URL.Path = path
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"error":{`)) {
			t.Fatalf("%d without an error envelope: %s", rec.Code, rec.Body.Bytes())
		}
	})
}
