package frontdoor

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

// FuzzDecodeJSON: any body either decodes or fails with a *providers.Error a client can be shown;
// it never panics.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"p","n":2,"size":"512x512","seed":9999999999,"extra":{"a":1},"image":["data:image/png;base64,AA=="]}`,
		`{"model":"m","prompt":"p","rendering_speed":"TURBO","color_palette":{"name":"EMBER"}}`,
		`{"n":"x"}`, `[1,2]`, `{"model":`, `null`, `{}{}`, "{\"prompt\":\"\\u0000\"}", ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/images/generations", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		ar, err := decodeJSON(r, providers.OpGenerate, 1<<20)
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Message == "" {
				t.Fatalf("error is not a client-safe *providers.Error: %v", err)
			}
			return
		}
		if ar == nil {
			t.Fatal("nil request without an error")
		}
	})
}

// FuzzDecodeMultipart: any text fields (and a file part) decode or fail cleanly.
func FuzzDecodeMultipart(f *testing.F) {
	f.Add("model", "m", "n", "2", []byte("\x89PNG"))
	f.Add("extra", `{"x":[1]}`, "image_weight", "50", []byte{})
	f.Add("colour", "red", "stream", "true", []byte("not an image"))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, file []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField(k1, v1)
		_ = mw.WriteField(k2, v2)
		if w, err := mw.CreateFormFile("image", "a.png"); err == nil {
			_, _ = w.Write(file)
		}
		_ = mw.Close()
		r := httptest.NewRequest(http.MethodPost, "/v1/images/edits", &buf)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		_, err := decodeMultipart(r, providers.OpEdit, 1<<20)
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Message == "" {
				t.Fatalf("error is not a client-safe *providers.Error: %v", err)
			}
		}
	})
}

// FuzzParseSize: sizes parse or are refused; a parsed size is positive.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1024x1024", "1024*768", " 8X8 ", "0x5", "-1x2", "99999999999x1", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sz, err := providers.ParseSize(s)
		if err == nil && (sz.W <= 0 || sz.H <= 0) {
			t.Fatalf("%q parsed to %v", s, sz)
		}
	})
}
