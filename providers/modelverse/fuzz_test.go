package modelverse

import (
	"net/http"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
)

func FuzzDecodeResponse(f *testing.F) {
	arktest.AddResponseSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, want string) {
		res, err := translate("modelverse", body, hints{want: want}, time.Unix(1e9, 0))
		arktest.CheckTranslation(t, res, err)
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
		arktest.CheckUpstreamError(t, e, "modelverse", body)
		if e.Param != "" && e.Param != "prompt" {
			t.Fatalf("param %q reached the error (Modelverse's param is a request id)", e.Param)
		}
	})
}
