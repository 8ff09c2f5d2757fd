package ark

import (
	"net/http"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
)

func FuzzDecodeResponse(f *testing.F) {
	arktest.AddResponseSeeds(f)
	f.Add([]byte(`{"data":[{"url":"http://x/y","b64_json":"data:image/png;base64,iVBORw0KGgo=","size":"1x1"}]}`), "b64_json")
	f.Fuzz(func(t *testing.T, body []byte, want string) {
		res, err := translate("ark", body, want, nil, time.Unix(1e9, 0))
		arktest.CheckTranslation(t, res, err)
	})
}

func FuzzErrorFromResponse(f *testing.F) {
	f.Add(400, "application/json", []byte(`{"error":{"code":"InvalidParameter","message":"The parameter `+"`size`"+` x: image size must be at least 3686400 pixels. Request id: 1","param":"","type":""}}`))
	f.Add(401, "application/json", []byte(`{"error":{"code":"AuthenticationError","message":"x","param":"","type":"Unauthorized"}}`))
	f.Add(429, "application/json", []byte(`{"error":{"code":"RateLimitExceeded.EndpointRPMExceeded"}}`))
	f.Add(502, "text/html", []byte(`<html>bad gateway</html>`))
	f.Add(400, "application/json", []byte(`"bare string"`))
	f.Add(400, "application/json", []byte(`{"error":{"code":1,"param":["x"]}}`))
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		if status < 100 || status > 599 {
			status = 400 + (status%100+100)%100
		}
		e := errorFromResponse("ark", status, http.Header{"Content-Type": {ct}, "Retry-After": {"1"}}, body)
		arktest.CheckUpstreamError(t, e, "ark", body)
		if e.Param != "" && e.Param != "prompt" && e.Param != "image" {
			if _, ok := knownParams[e.Param]; !ok {
				t.Fatalf("unknown param %q reached the error", e.Param)
			}
		}
	})
}
