package ark

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func TestErrorFromResponse(t *testing.T) {
	jsonH := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name    string
		status  int
		h       http.Header
		body    string
		kind    providers.Kind
		param   string
		code    string
		message string
		retry   time.Duration
	}{
		{"pixel floor with empty param and type", 400, jsonH(),
			`{"error":{"code":"InvalidParameter","message":"The parameter ` + "`size`" + ` specified in the request is not valid: image size must be at least 3686400 pixels. Request id: 0217abc","param":"","type":""}}`,
			providers.KindInvalidRequest, "size", "InvalidParameter", "size must be at least 3686400 pixels for this model", 0},
		{"size vocabulary on 4.5", 400, jsonH(),
			`{"error":{"code":"InvalidParameter","message":"The parameter ` + "`size`" + ` specified in the request is not valid: the specified size is not supported for model doubao-seedream-4-5. Request id: 1","param":"","type":""}}`,
			providers.KindInvalidRequest, "size", "InvalidParameter", "this size is not supported by this model", 0},
		{"image not supported", 400, jsonH(),
			`{"error":{"code":"InvalidParameter","message":"The parameter ` + "`image`" + ` specified in the request is not valid: the parameter ` + "`image`" + ` is not supported by the current model. Request id: 1","param":"image","type":"BadRequest"}}`,
			providers.KindInvalidRequest, "image", "InvalidParameter", "this model does not support image", 0},
		{"InvalidParameter.seed variant", 400, jsonH(), `{"error":{"code":"InvalidParameter.seed","message":"bad","type":"BadRequest"}}`,
			providers.KindInvalidRequest, "seed", "InvalidParameter.seed", "the provider refused the value of seed", 0},
		{"param we do not know is dropped", 400, jsonH(), `{"error":{"code":"InvalidParameter","message":"x","param":"<script>","type":"BadRequest"}}`,
			providers.KindInvalidRequest, "", "InvalidParameter", "the provider refused a parameter of the request", 0},
		{"missing prompt", 400, jsonH(), `{"error":{"code":"MissingParameter","message":"x","param":"prompt","type":"BadRequest"}}`,
			providers.KindInvalidRequest, "prompt", "MissingParameter", "the parameter prompt is required", 0},
		{"input image filtered", 400, jsonH(), `{"error":{"code":"InputImageSensitiveContentDetected","message":"x","param":"","type":"BadRequest"}}`,
			providers.KindContentPolicy, "image", "InputImageSensitiveContentDetected", "an input image was rejected by the provider's content filter", 0},
		{"risk detection", 400, jsonH(), `{"error":{"code":"InputTextRiskDetection","message":"x"}}`,
			providers.KindContentPolicy, "prompt", "InputTextRiskDetection", "", 0},
		{"auth", 401, jsonH(), `{"error":{"code":"AuthenticationError","message":"x","param":"","type":"Unauthorized"}}`,
			providers.KindUpstreamAuth, "", "AuthenticationError", "the provider refused the gateway's credentials", 0},
		{"overdue", 403, jsonH(), `{"error":{"code":"AccountOverdueError","message":"x","type":"Forbidden"}}`,
			providers.KindUpstreamAuth, "", "AccountOverdueError", "the gateway's account with the provider is overdue", 0},
		{"model not open", 404, jsonH(), `{"error":{"code":"ModelNotOpen","message":"x","type":"NotFound"}}`,
			providers.KindModelNotFound, "", "ModelNotOpen", "", 0},
		{"rpm", 429, jsonH("Retry-After", "12"), `{"error":{"code":"RateLimitExceeded.EndpointTPMExceeded","message":"x","type":"TooManyRequests"}}`,
			providers.KindUpstreamRateLimited, "", "RateLimitExceeded.EndpointTPMExceeded", "", 12 * time.Second},
		{"503 html", 503, http.Header{"Content-Type": {"text/html"}}, `<html><body>503</body></html>`,
			providers.KindUpstreamUnavailable, "", "", "the provider is unavailable (HTTP 503)", 0},
		{"json body with a text content type is not decoded", 400, http.Header{"Content-Type": {"text/plain"}}, `{"error":{"code":"AuthenticationError"}}`,
			providers.KindInvalidRequest, "", "", "", 0},
		{"504", 504, http.Header{}, ``, providers.KindUpstreamTimeout, "", "", "", 0},
		{"413", 413, jsonH(), `{}`, providers.KindTooLarge, "", "", "", 0},
		{"unknown 418: an undocumented code is not kept", 418, jsonH(), `{"error":{"code":"Teapot"}}`, providers.KindUpstreamBadResponse, "", "", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := errorFromResponse("ark", tc.status, tc.h, []byte(tc.body))
			if e.Kind != tc.kind || e.Param != tc.param || e.Code != tc.code || e.Status != tc.status || e.Provider != "ark" {
				t.Fatalf("got kind %s param %q code %q status %d, want %s %q %q", e.Kind, e.Param, e.Code, e.Status, tc.kind, tc.param, tc.code)
			}
			if tc.message != "" && e.Message != tc.message {
				t.Fatalf("message %q, want %q", e.Message, tc.message)
			}
			if e.RetryAfter != tc.retry {
				t.Fatalf("RetryAfter %v, want %v", e.RetryAfter, tc.retry)
			}
			if e.Message == "" || strings.Contains(e.Message, "Request id") || strings.Contains(e.Message, "<") {
				t.Fatalf("bad client message %q", e.Message)
			}
		})
	}
}

func TestErrorKeepsRequestIDForLogs(t *testing.T) {
	body := `{"error":{"code":"InvalidParameter","message":"bad. Request id: 0217deadbeef","param":"size","type":"BadRequest"}}`
	e := errorFromResponse("ark", 400, http.Header{"Content-Type": {"application/json"}}, []byte(body))
	if !strings.Contains(e.Err.Error(), "0217deadbeef") {
		t.Fatalf("request id missing from the log error: %v", e.Err)
	}
	e = errorFromResponse("ark", 400, http.Header{"Content-Type": {"application/json"}, "X-Client-Request-Id": {"imagegw-1"}}, []byte(body))
	if !strings.Contains(e.Err.Error(), `"imagegw-1"`) {
		t.Fatalf("header request id missing from the log error: %v", e.Err)
	}
}
