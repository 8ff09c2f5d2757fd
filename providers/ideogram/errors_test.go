package ideogram

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func TestClassify(t *testing.T) {
	jsonCT := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
		op     providers.Operation
		kind   providers.Kind
		param  string
		code   string
		logged string // a fragment the cause (for logs) must carry; "" = no cause
	}{
		{"422 safety", 422, jsonCT, `{"error":"Prompt provided failed safety check due to the inclusion of prohibited content."}`,
			providers.OpGenerate, providers.KindContentPolicy, "", "", "failed safety check"},
		{"422 describe", 422, jsonCT, `{"error":"Image failed the safety check."}`, providers.OpDescribe, providers.KindContentPolicy, "", "", "Image failed"},
		{"401", 401, jsonCT, `{"error":"Not authorized"}`, providers.OpGenerate, providers.KindUpstreamAuth, "", "", "Not authorized"},
		{"403 remix", 403, http.Header{}, ``, providers.OpRemix, providers.KindUpstreamAuth, "", "", ""},
		{"429", 429, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"3"}}, `{"error":"Too many requests"}`,
			providers.OpGenerate, providers.KindUpstreamRateLimited, "", "", "Too many"},
		{"400 names resolution", 400, jsonCT, `{"error":"image_request.resolution: 'RESOLUTION_1_1' is not one of the allowed values"}`,
			providers.OpGenerate, providers.KindInvalidRequest, "size", "", "RESOLUTION_1_1"},
		{"400 names num_images", 400, jsonCT, `{"error":"num_images: 9 is not between 1 and 8"}`, providers.OpEdit, providers.KindInvalidRequest, "n", "", ""},
		{"400 names negative_prompt, not prompt", 400, jsonCT, `{"error":"negative_prompt: not supported by model V_2A"}`,
			providers.OpGenerate, providers.KindInvalidRequest, "negative_prompt", "", ""},
		{"400 names image_file", 400, jsonCT, `{"error":"image_file: only JPEG, PNG and WebP images are supported"}`,
			providers.OpRemix, providers.KindInvalidRequest, "image", "", ""},
		{"400 problem json", 400, http.Header{"Content-Type": {"application/problem+json"}},
			`{"detail":"'V_9' is not one of ['V_1', 'V_2'] - 'model'","status":400,"title":"Bad Request","type":"about:blank"}`,
			providers.OpGenerate, providers.KindInvalidRequest, "model", "Bad Request", "V_9"},
		{"400 nested error object", 400, jsonCT, `{"error":{"message":"mask: must not be all white","code":"invalid_mask"}}`,
			providers.OpEdit, providers.KindInvalidRequest, "mask", "invalid_mask", "all white"},
		{"400 bare string", 400, jsonCT, `"seed is out of range"`, providers.OpGenerate, providers.KindInvalidRequest, "seed", "", "out of range"},
		{"400 plain text", 400, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, "style_type: nope", providers.OpGenerate,
			providers.KindInvalidRequest, "style_type", "", "nope"},
		{"400 unnamed", 400, jsonCT, `{"error":"Invalid input provided."}`, providers.OpGenerate, providers.KindInvalidRequest, "", "", "Invalid input"},
		{"400 html is not read", 400, http.Header{"Content-Type": {"text/html"}}, `<html><body>seed</body></html>`, providers.OpGenerate,
			providers.KindInvalidRequest, "", "", ""},
		{"500", 500, jsonCT, `{"error":"boom"}`, providers.OpGenerate, providers.KindUpstreamUnavailable, "", "", "boom"},
		{"502 html", 502, http.Header{"Content-Type": {"text/html"}}, `<html>Bad Gateway</html>`, providers.OpGenerate, providers.KindUpstreamUnavailable, "", "", ""},
		{"504", 504, http.Header{}, ``, providers.OpGenerate, providers.KindUpstreamTimeout, "", "", ""},
		{"404", 404, jsonCT, `{"error":"Not found"}`, providers.OpGenerate, providers.KindUpstreamUnavailable, "", "", ""},
		{"413", 413, http.Header{}, ``, providers.OpEdit, providers.KindTooLarge, "", "", ""},
		{"409", 409, jsonCT, `{}`, providers.OpGenerate, providers.KindUpstreamBadResponse, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := classify(tc.status, tc.header, []byte(tc.body), tc.op, "sk-secret")
			if e.Kind != tc.kind || e.Param != tc.param || e.Code != tc.code || e.Status != tc.status || e.Provider != Name {
				t.Fatalf("got kind %s param %q code %q status %d provider %q", e.Kind, e.Param, e.Code, e.Status, e.Provider)
			}
			if e.Message == "" || (tc.body != "" && len(tc.body) > 12 && strings.Contains(e.Message, tc.body)) {
				t.Fatalf("message %q", e.Message)
			}
			if strings.Contains(strings.ToLower(e.Message), "<html") {
				t.Fatalf("HTML in the message: %q", e.Message)
			}
			switch {
			case tc.logged == "" && e.Err != nil && strings.Contains(tc.body, "<html"):
				t.Fatalf("an HTML page was read: %v", e.Err)
			case tc.logged != "" && (e.Err == nil || !strings.Contains(e.Err.Error(), tc.logged)):
				t.Fatalf("cause %v, want it to carry %q", e.Err, tc.logged)
			}
		})
	}
	if e := classify(429, http.Header{"Retry-After": {"3"}}, nil, providers.OpGenerate, ""); e.RetryAfter != 3*time.Second {
		t.Errorf("RetryAfter = %v", e.RetryAfter)
	}
}

func TestClassifyRedactsTheKey(t *testing.T) {
	e := classify(401, http.Header{"Content-Type": {"application/json"}}, []byte(`{"error":"key sk-secret-123 is invalid"}`), providers.OpGenerate, "sk-secret-123")
	if strings.Contains(e.Error(), "sk-secret-123") {
		t.Fatalf("the key leaked: %v", e)
	}
	long := strings.Repeat("é", 400)
	e = classify(400, http.Header{"Content-Type": {"application/json"}}, []byte(`{"error":"`+long+`"}`), providers.OpGenerate, "")
	if len(e.Err.Error()) > 400 {
		t.Fatalf("the cause was not truncated: %d bytes", len(e.Err.Error()))
	}
}
