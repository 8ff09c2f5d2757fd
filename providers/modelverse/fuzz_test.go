package modelverse

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func FuzzDecodeResponse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "response", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, "url")
			f.Add(b, "b64_json")
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, want string) {
		res, err := translate("modelverse", body, hints{want: want}, time.Unix(1e9, 0))
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind == "" || pe.Message == "" {
				t.Fatalf("error %v is not a classified *providers.Error", err)
			}
			return
		}
		if len(res.Images) == 0 {
			t.Fatal("success without images")
		}
		for _, im := range res.Images {
			if im.URL == "" && (len(im.Data) == 0 || !strings.HasPrefix(im.ContentType, "image/")) {
				t.Fatalf("image without URL or typed bytes: %+v", im)
			}
			if im.URL != "" && im.Expires.IsZero() {
				t.Fatal("URL without expiry")
			}
		}
	})
}

func FuzzErrorFromResponse(f *testing.F) {
	f.Add(400, "application/json", []byte(`{"error":{"message":"Invalid param","type":"invalid_request_error","param":"b4a7b49c-203c-43c9-88ce-9e636e77ace8","code":"param_error"}}`))
	f.Add(401, "application/json", []byte(`{"error":{"message":"Validate Certification failed","type":"invalid_request_error","param":"x","code":"auth_error"}}`))
	f.Add(429, "application/json", []byte(`{"error":{"code":"rate_limit"}}`))
	f.Add(502, "text/html", []byte(`<html>bad gateway</html>`))
	f.Add(400, "application/json", []byte(`"bare string"`))
	f.Add(400, "application/json", []byte(`{"error":{"code":1,"param":["x"]}}`))
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		if status < 100 || status > 599 {
			status = 400 + (status%100+100)%100
		}
		e := errorFromResponse("modelverse", status, http.Header{"Content-Type": {ct}, "Retry-After": {"1"}}, body)
		if e.Kind == "" || e.Message == "" || e.Provider != "modelverse" {
			t.Fatalf("unclassified error %+v", e)
		}
		if len(body) > 12 && strings.Contains(e.Message, string(body)) {
			t.Fatalf("body reached the message: %q", e.Message)
		}
		if e.Param != "" && e.Param != "prompt" {
			t.Fatalf("param %q reached the error (Modelverse's param is a request id)", e.Param)
		}
	})
}
