package frontdoor

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
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

// FuzzDecodeJSONPaths: a small body decodes the same whether its length is known (read whole,
// decodeSmallJSON) or not (the streaming decoder): the same request, or errors of the same kind,
// parameter and message.
func FuzzDecodeJSONPaths(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","prompt":"p","n":2,"size":"512x512","seed":9999999999,"extra":{"a":[1,"]"]}}`,
		`{"model":"m","prompt":"p\"\\","rendering_speed":"TURBO","color_palette":{"name":"EMBER"}}`,
		`{"model":"m","model":"n"}`, `{"mod\u0065l":"m"}`, `{"colour":"red"}`, `{"n":"x"}`, `{"n":2.5}`,
		`{ "prompt" : "p" , "n" : 1 }`, `{"image":"https://x/y.png","model":"m"}`, `{}`, `[1,2]`, `{"model":`, `null`,
		`{}{}`, "{\"prompt\":\"\\u0000\"}", ``, `{"stream":true,"partial_images":2}`, `{"seed":-1e3}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		decode := func(known bool) (*apiRequest, error) {
			r := httptest.NewRequest(http.MethodPost, "/v1/images/generations", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if !known {
				r.ContentLength = -1
			}
			return decodeJSON(r, providers.OpGenerate, 1<<20)
		}
		a, errA := decode(true)
		b, errB := decode(false)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("%s: known length: %v; streamed: %v", body, errA, errB)
		}
		if errA != nil {
			var pa, pb *providers.Error
			errors.As(errA, &pa)
			errors.As(errB, &pb)
			if pa == nil || pb == nil || pa.Kind != pb.Kind || pa.Param != pb.Param || pa.Message != pb.Message {
				t.Fatalf("%s: known length: %v; streamed: %v", body, errA, errB)
			}
			return
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s:\nknown length %+v\nstreamed     %+v", body, a, b)
		}
	})
}

// FuzzDecodeValue: decodeValue makes of a JSON value what json.Unmarshal makes of it, for every
// kind of field apiRequest.set fills, errors included.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{
		`"a lighthouse"`, `"caf\u00e9"`, `"é"`, "\"\xff\"", `"a\"b"`, `""`, `null`, `1`, `-1`, `-0`, `007`,
		`123456789012345678`, `1234567890123456789`, `-9223372036854775808`, `1.5`, `1e3`, `true`, `false`,
		`"1"`, `[1]`, `{"a":1}`, `2147483648`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return // set only ever gets valid JSON
		}
		check := func(dst, want any) {
			t.Helper()
			err := decodeValue(json.RawMessage(raw), dst)
			wantErr := json.Unmarshal([]byte(raw), want)
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("%s into %T: %v, json.Unmarshal: %v", raw, dst, err, wantErr)
			}
			if !reflect.DeepEqual(dst, want) {
				t.Fatalf("%s into %T: %#v, json.Unmarshal: %#v", raw, dst, dst, want)
			}
		}
		var s1, s2 string
		check(&s1, &s2)
		var ps1, ps2 *string
		check(&ps1, &ps2)
		var i1, i2 *int
		check(&i1, &i2)
		var l1, l2 *int64
		check(&l1, &l2)
		var b1, b2 bool
		check(&b1, &b2)
		var pb1, pb2 *bool
		check(&pb1, &pb2)
		var f1, f2 *float64
		check(&f1, &f2)
	})
}
