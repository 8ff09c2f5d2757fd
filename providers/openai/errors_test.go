package openai

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func TestClassifyError(t *testing.T) {
	j := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		kind       providers.Kind
		param      string
		code       string
		retryAfter time.Duration
	}{
		{"401 invalid key", 401, j, `{"error":{"message":"Incorrect API key provided: sk-tes***mnop.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			providers.KindUpstreamAuth, "", "invalid_api_key", 0},
		{"403 region", 403, j, `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`,
			providers.KindUpstreamAuth, "", "unsupported_country_region_territory", 0},
		{"429 rate limit", 429, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"20"}},
			`{"error":{"message":"Rate limit reached for images per minute","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			providers.KindUpstreamRateLimited, "", "rate_limit_exceeded", 20 * time.Second},
		{"429 retry-after-ms", 429, http.Header{"Content-Type": {"application/json"}, "Retry-After-Ms": {"1500"}}, `{}`,
			providers.KindUpstreamRateLimited, "", "", 1500 * time.Millisecond},
		{"429 insufficient quota", 429, j, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			providers.KindUpstreamAuth, "", "insufficient_quota", 0},
		{"400 billing hard limit", 400, j, `{"error":{"code":"billing_hard_limit_reached","message":"Billing hard limit has been reached","param":null,"type":"invalid_request_error"}}`,
			providers.KindUpstreamAuth, "", "billing_hard_limit_reached", 0},
		{"400 content policy (S28)", 400, j, `{"error":{"code":"content_policy_violation","message":"Your request was rejected as a result of our safety system.","param":null,"type":"invalid_request_error"}}`,
			providers.KindContentPolicy, "", "content_policy_violation", 0},
		{"400 moderation blocked (S29)", 400, j, `{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","param":null,"code":"moderation_blocked","moderation_details":{}}}`,
			providers.KindContentPolicy, "", "moderation_blocked", 0},
		{"400 unknown parameter (S27)", 400, j, `{"error":{"message":"Unknown parameter: 'response_format'.","type":"invalid_request_error","param":"response_format","code":"unknown_parameter"}}`,
			providers.KindUnsupported, "response_format", "unknown_parameter", 0},
		{"400 compatible unsupported parameter", 400, j, `{"error":{"message":"'num_inference_steps' is not supported","type":"invalid_request_error","param":"num_inference_steps","code":"unsupported_parameter"}}`,
			providers.KindUnsupported, "steps", "unsupported_parameter", 0},
		{"400 invalid size", 400, j, `{"error":{"message":"Invalid value: '512x512'.","type":"invalid_request_error","param":"size","code":"invalid_value"}}`,
			providers.KindInvalidRequest, "size", "invalid_value", 0},
		{"400 image[]", 400, j, `{"error":{"message":"bad file","type":"invalid_request_error","param":"image[]","code":"invalid_image_file"}}`,
			providers.KindInvalidRequest, "image", "invalid_image_file", 0},
		{"400 n=1 without param", 400, j, `{"error":{"code":null,"message":"You must provide n=1 for this model.","param":null,"type":"invalid_request_error"}}`,
			providers.KindInvalidRequest, "", "", 0},
		{"400 integer code", 400, j, `{"error":{"code":20012,"message":"Model does not exist.","param":null,"type":"invalid_request_error"}}`,
			providers.KindInvalidRequest, "", "20012", 0},
		{"400 bare string", 400, j, `"bad request"`, providers.KindInvalidRequest, "", "", 0},
		{"400 error string", 400, j, `{"error":"prompt is required"}`, providers.KindInvalidRequest, "", "", 0},
		{"400 plain text", 400, http.Header{"Content-Type": {"text/plain"}}, `Bad Request`, providers.KindInvalidRequest, "", "", 0},
		{"400 weird param", 400, j, `{"error":{"message":"x","type":"invalid_request_error","param":"<script>","code":"a b"}}`,
			providers.KindInvalidRequest, "", "", 0},
		{"404 model", 404, j, `{"error":{"message":"The model does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}}`,
			providers.KindModelNotFound, "", "model_not_found", 0},
		{"413", 413, http.Header{"Content-Type": {"text/html"}}, `<html>too large</html>`, providers.KindTooLarge, "", "", 0},
		{"500", 500, j, `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`,
			providers.KindUpstreamUnavailable, "", "server_error", 0},
		{"503 retry-after", 503, http.Header{"Retry-After": {"3"}}, ``, providers.KindUpstreamUnavailable, "", "", 3 * time.Second},
		{"502 html", 502, http.Header{"Content-Type": {"text/html"}}, `<html><body>Bad Gateway</body></html>`, providers.KindUpstreamUnavailable, "", "", 0},
		{"504", 504, nil, ``, providers.KindUpstreamTimeout, "", "", 0},
		{"409", 409, j, `{}`, providers.KindUpstreamBadResponse, "", "", 0},
		{"200 error envelope", 200, j, `{"error":{"message":"x","type":"server_error","code":null}}`, providers.KindUpstreamBadResponse, "", "server_error", 0},
		{"200 policy envelope", 200, j, `{"error":{"message":"x","type":"invalid_request_error","code":"content_policy_violation"}}`, providers.KindContentPolicy, "", "content_policy_violation", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			e := classifyError("openai-test", tc.status, h, []byte(tc.body), testKey)
			if e.Kind != tc.kind || e.Param != tc.param || e.Code != tc.code || e.RetryAfter != tc.retryAfter {
				t.Fatalf("got kind=%s param=%q code=%q retry=%v, want %s %q %q %v (%v)",
					e.Kind, e.Param, e.Code, e.RetryAfter, tc.kind, tc.param, tc.code, tc.retryAfter, e)
			}
			if e.Provider != "openai-test" || e.Status != tc.status || e.Message == "" {
				t.Fatalf("incomplete error %+v", e)
			}
			if len(tc.body) > 12 && strings.Contains(e.Message, tc.body) {
				t.Fatalf("the upstream body reached the message: %q", e.Message)
			}
		})
	}
}

func TestClassifyErrorScrubsTheKey(t *testing.T) {
	body := `{"error":{"message":"invalid key ` + testKey + `","type":"invalid_request_error","code":"invalid_api_key"}}`
	e := classifyError("c", 401, http.Header{"Content-Type": {"application/json"}}, []byte(body), testKey)
	if strings.Contains(e.Error(), testKey) {
		t.Fatalf("the key leaked into the error: %v", e)
	}
	if !strings.Contains(e.Error(), "[redacted]") {
		t.Fatalf("the upstream message should stay in the cause for logs: %v", e)
	}
}

func FuzzClassifyError(f *testing.F) {
	f.Add(400, "application/json", []byte(`{"error":{"message":"x","type":"invalid_request_error","param":"size","code":"invalid_value"}}`))
	f.Add(429, "application/json", []byte(`{"error":{"code":"insufficient_quota"}}`))
	f.Add(401, "text/plain", []byte(`"Invalid token"`))
	f.Add(500, "text/html", []byte(`<html></html>`))
	f.Add(400, "", []byte(`{"error":"x","message":"y","code":[1]}`))
	f.Add(200, "application/json", []byte(`{"error":{"code":12.5,"param":{"a":1}}}`))
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		e := classifyError("fuzz", status, http.Header{"Content-Type": {ct}}, body, "sk-secret-key-123")
		if e == nil || e.Kind == "" || e.Message == "" {
			t.Fatalf("incomplete error %+v", e)
		}
		if e.Kind.Fault() != providers.FaultCaller && e.Kind.Fault() != providers.FaultProvider {
			t.Fatalf("kind %s is neither a caller nor a provider fault", e.Kind)
		}
		if strings.Contains(e.Error(), "sk-secret-key-123") {
			t.Fatal("the key leaked")
		}
		if (e.Param != "" && !knownParams[e.Param] && e.Param != "steps") || safeCode(e.Code) != e.Code {
			t.Fatalf("unsafe param %q or code %q", e.Param, e.Code)
		}
	})
}

// TestClassifyErrorAllowlists: a hostile host put the key in param and code (issue 11); the
// client got it back in param and in the message. Only known names pass now.
func TestClassifyErrorAllowlists(t *testing.T) {
	j := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name, param, code string
		wantParam         string
		wantCode          string
	}{
		{"key in both", testKey, testKey, "", ""},
		{"unknown names", "foo_bar", "weird_code", "", ""},
		{"known names", "size", "invalid_value", "size", "invalid_value"},
		{"wire name", "num_inference_steps", "unsupported_value", "steps", "unsupported_value"},
		{"numeric code", "n", "20015", "n", "20015"},
		{"long number", "n", "1234567890", "n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"error":{"message":"the key ` + testKey + ` is wrong","type":"` + testKey + `","param":"` + tc.param + `","code":"` + tc.code + `"}}`
			e := classifyError("c", 400, j, []byte(body), testKey)
			if e.Param != tc.wantParam || e.Code != tc.wantCode {
				t.Fatalf("param %q code %q, want %q %q", e.Param, e.Code, tc.wantParam, tc.wantCode)
			}
			for _, s := range []string{e.Message, e.Error()} {
				if strings.Contains(s, testKey) || strings.Contains(s, "foo_bar") || strings.Contains(s, "weird_code") {
					t.Fatalf("upstream text reached %q", s)
				}
			}
		})
	}
}
