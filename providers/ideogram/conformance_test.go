package ideogram_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/ideogram"
	"github.com/imagegw/imagegw/providers/ideogram/fake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// ideogramFaults is Ideogram's own error catalogue (PROVIDERS.md §2.5) and the kinds it must map to.
func ideogramFaults(authStatus int, describe bool) []providertest.FaultCase {
	j := func(status int, body string) providertest.Fault {
		return providertest.Fault{Status: status, Body: body}
	}
	fc := []providertest.FaultCase{
		{Name: "bad key", Fault: j(authStatus, `{"error":"Not authorized: a valid Api-Key header is required."}`), Kind: providers.KindUpstreamAuth},
		{Name: "401 without a body", Fault: providertest.Fault{Status: 401, ContentType: "text/plain"}, Kind: providers.KindUpstreamAuth},
		{Name: "403 as problem json", Fault: providertest.Fault{Status: 403, ContentType: "application/problem+json",
			Body: `{"detail":"Forbidden","status":403,"title":"Forbidden","type":"about:blank"}`}, Kind: providers.KindUpstreamAuth},
		{Name: "safety 422", Fault: j(422, `{"error":"`+fake.SafetyMessage+`"}`), Kind: providers.KindContentPolicy},
		{Name: "invalid 400", Fault: j(400, `{"error":"image_request.resolution: 'RESOLUTION_1_1' is not one of the allowed values"}`), Kind: providers.KindInvalidRequest},
		{Name: "400 as a bare string", Fault: j(400, `"num_images must be at most 8"`), Kind: providers.KindInvalidRequest},
		{Name: "400 as plain text", Fault: providertest.Fault{Status: 400, ContentType: "text/plain", Body: "Bad Request: seed out of range"}, Kind: providers.KindInvalidRequest},
		{Name: "429 without retry-after", Fault: j(429, `{"error":"Too many requests in flight."}`), Kind: providers.KindUpstreamRateLimited},
		{Name: "429 with an http date", Fault: providertest.Fault{Status: 429, Body: `{}`,
			Header: http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}}, Kind: providers.KindUpstreamRateLimited},
		{Name: "500", Fault: j(500, `{"error":"Internal server error"}`), Kind: providers.KindUpstreamUnavailable},
		{Name: "504 html", Fault: providertest.Fault{Status: 504, HTML: true}, Kind: providers.KindUpstreamTimeout},
		{Name: "404 wrong layout", Fault: j(404, `{"error":"Not found"}`), Kind: providers.KindUpstreamUnavailable},
		{Name: "413", Fault: providertest.Fault{Status: 413, ContentType: "text/html", Body: "<html>too large</html>"}, Kind: providers.KindTooLarge},
		{Name: "200 html", Fault: providertest.Fault{Status: 200, ContentType: "text/html", Body: "<html>maintenance</html>"}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 with the wrong shape", Fault: j(200, `{"images":[{"url":"https://x/y.png"}]}`), Kind: providers.KindUpstreamBadResponse},
	}
	if describe {
		return append(fc, providertest.FaultCase{Name: "200 without descriptions", Fault: j(200, `{"descriptions":[]}`), Kind: providers.KindUpstreamBadResponse})
	}
	return append(fc,
		providertest.FaultCase{Name: "200 without data", Fault: j(200, `{"created":"2025-01-01T00:00:00Z","data":[]}`), Kind: providers.KindUpstreamBadResponse},
		providertest.FaultCase{Name: "200 every image unsafe", Fault: j(200, `{"created":"2025-01-01T00:00:00Z","data":[{"prompt":"p","resolution":"1024x1024","is_image_safe":false,"seed":1,"url":null}]}`),
			Kind: providers.KindContentPolicy})
}

func conformance(t *testing.T, aihubmix bool, req func() *providers.Request, authStatus int) {
	t.Helper()
	f := fake.New(fake.Options{APIKey: testKey})
	var h http.Handler = f
	opts := map[string]string(nil)
	if aihubmix {
		mux := http.NewServeMux()
		mux.Handle("/ideogram/", http.StripPrefix("/ideogram", f))
		h = mux
		opts = map[string]string{ideogram.OptionLayout: ideogram.LayoutAiHubMix}
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	const maxBytes = 1 << 20
	logs := providertest.NewLogs()
	p, err := providers.New(ideogram.Name, providers.Config{Name: "ideogram-test", Logger: logs.Logger(), BaseURL: srv.URL, APIKey: testKey,
		HTTP: srv.Client(), MaxResponseBytes: maxBytes, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, providertest.Harness{
		Provider: p, Script: f.Script, Request: req, Secret: testKey, MaxResponseBytes: maxBytes,
		Faults: ideogramFaults(authStatus, req().Operation == providers.OpDescribe), Logs: logs,
	})
}

func TestConformanceV3Generate(t *testing.T) {
	conformance(t, false, func() *providers.Request {
		return &providers.Request{Operation: providers.OpGenerate, Model: "V_3", Prompt: "a red fox", Quality: "low", N: 2}
	}, http.StatusUnauthorized)
}

func TestConformanceLegacyGenerate(t *testing.T) {
	conformance(t, true, func() *providers.Request {
		return &providers.Request{Operation: providers.OpGenerate, Model: "V_2_TURBO", Prompt: "a red fox", Width: 1024, Height: 1024}
	}, http.StatusUnauthorized)
}

func TestConformanceLegacyRemix(t *testing.T) {
	src := srcImage(t, 48, 48)
	conformance(t, false, func() *providers.Request {
		return &providers.Request{Operation: providers.OpRemix, Model: "V_2", Prompt: "a red fox", Images: []providers.Image{src}}
	}, http.StatusForbidden)
}

func TestConformanceDescribe(t *testing.T) {
	src := srcImage(t, 48, 48)
	conformance(t, true, func() *providers.Request {
		return &providers.Request{Operation: providers.OpDescribe, Model: "V_3", Images: []providers.Image{src}}
	}, http.StatusUnauthorized)
}
