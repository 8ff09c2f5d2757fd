package yunyx

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// FuzzResponse: arbitrary 2xx bodies through the decoder and the translation never panic, and
// either fail with a *providers.Error or carry usable images.
func FuzzResponse(f *testing.F) {
	f.Add(`{"images":[{"url":"https://example.com/images/xxx.png"}],"timings":{"inference":123},"seed":123}`)
	f.Add(`{"images":[{"url":"https://x/y?a=1\u0026b=2"}],"seed":9999999999}`)
	f.Add(`{"images":[]}`)
	f.Add(`{"code":20015,"message":"seed: bad","data":null}`)
	f.Add(`"Invalid token"`)
	f.Fuzz(func(t *testing.T, body string) {
		r, err := sfwire.DecodeResponse("yunyx", http.Header{"Content-Type": {"application/json"}}, []byte(body), "sk-key")
		if err == nil {
			var res *providers.Result
			res, err = fromWire("yunyx", nil, &providers.Request{}, r, time.Unix(0, 0))
			if err == nil {
				for _, im := range res.Images {
					if im.URL == "" && im.Data == nil {
						t.Fatal("an image without URL or bytes")
					}
				}
				return
			}
		}
		checkErr(t, err, body)
	})
}

// FuzzParseError: any error answer classifies without panicking.
func FuzzParseError(f *testing.F) {
	f.Add(404, "application/json", `{"code":20012,"message":"x","data":null}`)
	f.Add(401, "text/plain", `认证失败`)
	f.Fuzz(func(t *testing.T, status int, ct, body string) {
		if status < 100 || status > 999 {
			return
		}
		checkErr(t, parseError("yunyx", status, http.Header{"Content-Type": {ct}}, []byte(body), "sk-key"), body)
	})
}

func checkErr(t *testing.T, err error, body string) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind == "" || pe.Message == "" || pe.Provider != "yunyx" {
		t.Fatalf("bad error %v", err)
	}
	if len(body) > 16 && strings.Contains(pe.Message, body) {
		t.Fatalf("the body reached the message: %q", pe.Message)
	}
	if strings.Contains(pe.Error(), "sk-key") {
		t.Fatalf("the key reached the error: %q", pe.Error())
	}
}
