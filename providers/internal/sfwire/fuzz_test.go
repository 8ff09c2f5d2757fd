package sfwire

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// FuzzDecodeResponse: arbitrary 2xx bodies and content types never panic; failures are
// *providers.Error with a message of our own, successes carry usable images.
func FuzzDecodeResponse(f *testing.F) {
	f.Add("application/json", `{"images":[{"url":"https://x/y?a=1\u0026b=2"}],"timings":{"inference":1},"seed":9999999999}`)
	f.Add("application/json; charset=utf-8", `{"images":[{"url":"data:image/png;base64,aGk="}],"seed":"7"}`)
	f.Add("application/json", `{"code":20012,"message":"Model does not exist.","data":null}`)
	f.Add("text/html", `<html></html>`)
	f.Add("", `{"images":[{"url":"ftp://x"}]}`)
	f.Fuzz(func(t *testing.T, ct, body string) {
		r, err := DecodeResponse("p", http.Header{"Content-Type": {ct}}, []byte(body), "sk-k")
		if err != nil {
			check(t, err, body)
			return
		}
		outs, err := r.Outputs("p", time.Unix(0, 0), URLTTL, 0, 0)
		if err != nil {
			check(t, err, body)
			return
		}
		if len(outs) == 0 {
			t.Fatal("success without images")
		}
	})
}

// FuzzParseError: any error answer classifies without panicking into one of our messages.
func FuzzParseError(f *testing.F) {
	f.Add(400, "application/json", `{"code":20015,"message":"seed: bad","data":null}`, "")
	f.Add(401, "application/json", `"Invalid token"`, "")
	f.Add(429, "application/json", `{"message":"x","data":null}`, "3")
	f.Add(400, "application/json", `{"error":{"message":"x","code":12}}`, "")
	f.Add(404, "text/html", `<html>`, "")
	f.Fuzz(func(t *testing.T, status int, ct, body, retry string) {
		if status < 100 || status > 999 {
			return
		}
		e := ParseError("p", status, http.Header{"Content-Type": {ct}, "Retry-After": {retry}}, []byte(body), "sk-k")
		check(t, e, body)
		if e.Status != status {
			t.Fatalf("status %d, want %d", e.Status, status)
		}
	})
}

// FuzzDecodeDataURI: never panics; a success is consistent.
func FuzzDecodeDataURI(f *testing.F) {
	f.Add("data:image/png;base64,aGk=")
	f.Add("data:;base64,")
	f.Add("data:image/png,xx")
	f.Fuzz(func(t *testing.T, s string) {
		if _, ct, err := DecodeDataURI(s); err == nil && ct == "" {
			t.Fatal("success without a content type")
		}
	})
}

func check(t *testing.T, err error, body string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("not a *providers.Error: %v", err)
	}
	if pe.Kind == "" || pe.Message == "" || pe.Provider != "p" {
		t.Fatalf("incomplete error %+v", pe)
	}
	if len(body) > 16 && strings.Contains(pe.Message, body) {
		t.Fatalf("the body reached the message: %q", pe.Message)
	}
	if strings.Contains(pe.Error(), "sk-k") {
		t.Fatalf("the key reached the error: %q", pe.Error())
	}
}
