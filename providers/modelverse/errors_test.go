package modelverse

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func TestErrorFromResponse(t *testing.T) {
	jsonH := http.Header{"Content-Type": {"application/json"}}
	env := func(code, msg string) string {
		return `{"error":{"message":"` + msg + `","type":"invalid_request_error","param":"b4a7b49c-203c-43c9-88ce-9e636e77ace8","code":"` + code + `"}}`
	}
	cases := []struct {
		name   string
		status int
		h      http.Header
		body   string
		kind   providers.Kind
		param  string
		code   string
		retry  time.Duration
	}{
		{"param_error keeps no param", 400, jsonH, env("param_error", "Invalid param"), providers.KindInvalidRequest, "", "param_error", 0},
		{"tokens_too_long", 400, jsonH, env("tokens_too_long", "Prompt tokens too long"), providers.KindInvalidRequest, "prompt", "tokens_too_long", 0},
		{"sensitive", 400, jsonH, env("sensitive_check_error", "Sensitive"), providers.KindContentPolicy, "", "sensitive_check_error", 0},
		{"websearch", 400, jsonH, env("websearch_error", "x"), providers.KindUpstreamUnavailable, "", "websearch_error", 0},
		{"model_error", 400, jsonH, env("model_error", "No permission to use the model"), providers.KindModelNotFound, "", "model_error", 0},
		{"auth_error", 401, jsonH, env("auth_error", "Validate Certification failed"), providers.KindUpstreamAuth, "", "auth_error", 0},
		{"timeout", 408, jsonH, env("timeout", "Request timeout"), providers.KindUpstreamTimeout, "", "timeout", 0},
		{"rate_limit", 429, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"9"}}, env("rate_limit", "Rate limit exceeded"), providers.KindUpstreamRateLimited, "", "rate_limit", 9 * time.Second},
		{"internal_error", 500, jsonH, env("internal_error", "Internal Server Error"), providers.KindUpstreamUnavailable, "", "internal_error", 0},
		{"gateway_timeout_error", 504, jsonH, env("gateway_timeout_error", "Gateway timeout"), providers.KindUpstreamTimeout, "", "gateway_timeout_error", 0},
		{"unknown code falls back on status and is not kept", 403, jsonH, env("forbidden_thing", "x"), providers.KindUpstreamAuth, "", "", 0},
		{"html 502", 502, http.Header{"Content-Type": {"text/html"}}, "<html>502</html>", providers.KindUpstreamUnavailable, "", "", 0},
		{"json body, text content type", 401, http.Header{"Content-Type": {"text/plain"}}, env("param_error", "x"), providers.KindUpstreamAuth, "", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := errorFromResponse("modelverse", tc.status, tc.h, []byte(tc.body))
			if e.Kind != tc.kind || e.Param != tc.param || e.Code != tc.code || e.Status != tc.status || e.RetryAfter != tc.retry {
				t.Fatalf("got kind %s param %q code %q status %d retry %v", e.Kind, e.Param, e.Code, e.Status, e.RetryAfter)
			}
			if e.Message == "" || strings.Contains(e.Message, "b4a7b49c") || strings.Contains(e.Message, "<") {
				t.Fatalf("bad client message %q", e.Message)
			}
		})
	}
}

func TestRequestIDGoesToTheLogErrorOnly(t *testing.T) {
	body := `{"error":{"message":"Invalid param","type":"invalid_request_error","param":"b4a7b49c-203c-43c9-88ce-9e636e77ace8","code":"param_error"}}`
	e := errorFromResponse("modelverse", 400, http.Header{"Content-Type": {"application/json"}}, []byte(body))
	if e.Param != "" || !strings.Contains(e.Err.Error(), "b4a7b49c-203c-43c9-88ce-9e636e77ace8") {
		t.Fatalf("param %q, log error %v", e.Param, e.Err)
	}
	// Without an id in param, the X-Request-Id header is used.
	e = errorFromResponse("modelverse", 400, http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-1"}}, []byte(`{"error":{"code":"param_error","param":"not an id!"}}`))
	if !strings.Contains(e.Err.Error(), `"req-1"`) {
		t.Fatalf("log error %v", e.Err)
	}
}
