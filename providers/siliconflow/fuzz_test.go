package siliconflow

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// FuzzResponse feeds arbitrary 2xx bodies through the decoder and the translation: they must
// never panic, and must either fail with a *providers.Error or carry only usable images.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		`{"images":[{"url":"https://x.example/a.png?a=1\u0026b=2"}],"timings":{"inference":1.5},"seed":9999999999}`,
		`{"images":[{"url":"data:image/png;base64,iVBORw0KGgo="}],"seed":1e3}`,
		`{"images":[],"seed":1}`, `{"code":20012,"message":"x","data":null}`, `"Invalid token"`, `<html>`, ``, `null`,
		`{"images":[{"url":""}]}`, `{"images":[{"url":"ftp://x/y"}],"seed":"abc"}`, `{"images":null,"seed":-5}`,
	} {
		f.Add(s, 0)
	}
	models := Catalog()
	f.Fuzz(func(t *testing.T, body string, mi int) {
		var m *providers.Model
		if mi >= 0 && mi < len(models) {
			m = &models[mi]
		}
		h := http.Header{"Content-Type": {"application/json"}}
		r, err := sfwire.DecodeResponse("sf", h, []byte(body), "sk-key")
		if err != nil {
			checkErr(t, err, body)
			return
		}
		res, err := fromWire("sf", m, &providers.Request{Model: "m"}, r, "", goldenNow)
		if err != nil {
			checkErr(t, err, body)
			return
		}
		if len(res.Images) == 0 {
			t.Fatal("success without images")
		}
		for _, im := range res.Images {
			if (im.URL == "") == (im.Data == nil) {
				t.Fatalf("image with neither or both of URL and bytes: %+v", im)
			}
			if im.Seed != nil && (*im.Seed < 0 || *im.Seed > sfwire.MaxSeed) {
				t.Fatalf("seed %d out of range", *im.Seed)
			}
		}
	})
}

// FuzzParseError: any status, content type and body classify without panicking, into a message
// of our own.
func FuzzParseError(f *testing.F) {
	f.Add(400, "application/json", `{"code":20015,"message":"image_size: bad","data":null}`)
	f.Add(401, "application/json", `"Invalid token"`)
	f.Add(401, "text/plain", `Api key is invalid`)
	f.Add(429, "application/json", `{"message":"rate","data":null}`)
	f.Add(502, "text/html", `<html></html>`)
	f.Add(404, "", ``)
	f.Fuzz(func(t *testing.T, status int, ct, body string) {
		if status < 100 || status > 999 {
			return
		}
		e := parseError("sf", status, http.Header{"Content-Type": {ct}}, []byte(body), "sk-key")
		checkErr(t, e, body)
	})
}

func checkErr(t *testing.T, err error, body string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("not a *providers.Error: %v", err)
	}
	if pe.Kind == "" || pe.Message == "" || pe.Provider == "" {
		t.Fatalf("incomplete error %+v", pe)
	}
	if len(body) > 16 && strings.Contains(pe.Message, body) {
		t.Fatalf("the body reached the message: %q", pe.Message)
	}
	if strings.Contains(pe.Error(), "sk-key") {
		t.Fatalf("the key reached the error: %q", pe.Error())
	}
}
