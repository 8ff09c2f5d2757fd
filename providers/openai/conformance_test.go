package openai

import (
	"net/http"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/openai/fake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// openAIFaults is OpenAI's own error catalogue (PROVIDERS.md §5.6 and the SDKs' status mapping)
// and the kinds each must become.
func openAIFaults() []providertest.FaultCase {
	j := func(status int, body string) providertest.Fault {
		return providertest.Fault{Status: status, Body: body}
	}
	return []providertest.FaultCase{
		{Name: "401 invalid_api_key", Fault: j(401, `{"error":{"message":"Incorrect API key provided: sk-tes*****************************mnop. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			Kind: providers.KindUpstreamAuth},
		{Name: "401 echoing the whole key", Fault: j(401, `{"error":{"message":"Invalid key `+testKey+`","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			Kind: providers.KindUpstreamAuth},
		{Name: "401 plain text", Fault: providertest.Fault{Status: 401, ContentType: "text/plain", Body: "Unauthorized"}, Kind: providers.KindUpstreamAuth},
		{Name: "403 region", Fault: j(403, `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`),
			Kind: providers.KindUpstreamAuth},
		{Name: "429 rate_limit_exceeded", Fault: providertest.Fault{Status: 429, Header: http.Header{"Retry-After": {"20"}},
			Body: `{"error":{"message":"Rate limit reached for dall-e-3 in organization org-x on images per minute (IPM): Limit 5, Used 5, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
			Kind: providers.KindUpstreamRateLimited, RetryAfter: 20 * time.Second},
		{Name: "429 retry-after-ms", Fault: providertest.Fault{Status: 429, Header: http.Header{"Retry-After-Ms": {"1500"}}, Body: `{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
			Kind: providers.KindUpstreamRateLimited, RetryAfter: 1500 * time.Millisecond},
		{Name: "429 insufficient_quota", Fault: j(429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`),
			Kind: providers.KindUpstreamAuth},
		{Name: "400 billing_hard_limit_reached", Fault: j(400, `{"error":{"code":"billing_hard_limit_reached","message":"Billing hard limit has been reached","param":null,"type":"invalid_request_error"}}`),
			Kind: providers.KindUpstreamAuth},
		{Name: "400 content_policy_violation", Fault: j(400, `{"error":{"code":"content_policy_violation","message":"Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.","param":null,"type":"invalid_request_error"}}`),
			Kind: providers.KindContentPolicy},
		{Name: "400 moderation_blocked", Fault: j(400, `{"error":{"message":"Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID req_123.","type":"image_generation_user_error","param":null,"code":"moderation_blocked","moderation_details":{"categories":[]}}}`),
			Kind: providers.KindContentPolicy},
		{Name: "400 unknown_parameter", Fault: j(400, `{"error":{"message":"Unknown parameter: 'response_format'.","type":"invalid_request_error","param":"response_format","code":"unknown_parameter"}}`),
			Kind: providers.KindUnsupported},
		{Name: "400 invalid_value", Fault: j(400, `{"error":{"message":"Invalid value: '512x512'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.","type":"invalid_request_error","param":"size","code":"invalid_value"}}`),
			Kind: providers.KindInvalidRequest},
		{Name: "400 n=1", Fault: j(400, `{"error":{"code":null,"message":"You must provide n=1 for this model.","param":null,"type":"invalid_request_error"}}`),
			Kind: providers.KindInvalidRequest},
		{Name: "400 bare string", Fault: j(400, `"bad request"`), Kind: providers.KindInvalidRequest},
		{Name: "404 model_not_found", Fault: j(404, `{"error":{"message":"The model 'dall-e-9' does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`),
			Kind: providers.KindModelNotFound},
		{Name: "413 html", Fault: providertest.Fault{Status: 413, ContentType: "text/html", Body: "<html><body>413 Request Entity Too Large</body></html>"}, Kind: providers.KindTooLarge},
		{Name: "500 server_error", Fault: j(500, `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`),
			Kind: providers.KindUpstreamUnavailable},
		{Name: "503 overloaded", Fault: j(503, `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`),
			Kind: providers.KindUpstreamUnavailable},
		{Name: "504 html", Fault: providertest.Fault{Status: 504, HTML: true}, Kind: providers.KindUpstreamTimeout},
		{Name: "200 html", Fault: providertest.Fault{Status: 200, ContentType: "text/html", Body: "<html>maintenance</html>"}, Kind: providers.KindUpstreamBadResponse},
		{Name: "200 without data", Fault: j(200, `{"created":1713833628,"data":[]}`), Kind: providers.KindUpstreamBadResponse},
		{Name: "200 with an error envelope", Fault: j(200, `{"error":{"message":"x","type":"server_error","param":null,"code":null}}`), Kind: providers.KindUpstreamBadResponse},
		{Name: "200 with the wrong shape", Fault: j(200, `{"images":[{"url":"https://x/y.png"}]}`), Kind: providers.KindUpstreamBadResponse},
		{Name: "200 bad base64", Fault: j(200, `{"created":1,"data":[{"b64_json":"%%%"}]}`), Kind: providers.KindUpstreamBadResponse},
		{Name: "200 base64 of text", Fault: j(200, `{"created":1,"data":[{"b64_json":"aGVsbG8gd29ybGQ="}]}`), Kind: providers.KindUpstreamBadResponse},
		{Name: "200 relative url", Fault: j(200, `{"created":1,"data":[{"url":"/img.png"}]}`), Kind: providers.KindUpstreamBadResponse},
	}
}

func runConformance(t *testing.T, p providers.Provider, f *fake.Fake, req func() *providers.Request) {
	t.Helper()
	logs := providertest.NewLogs()
	switch a := p.(type) {
	case *Adapter:
		a.c.log = logs.Logger()
	case *Compatible:
		a.c.log = logs.Logger()
	}
	providertest.Run(t, providertest.Harness{
		Provider: p, Script: f.Script, Request: req, Secret: testKey, MaxResponseBytes: testMaxBytes,
		Faults: openAIFaults(), Logs: logs,
	})
}

func TestConformanceDallE3Generate(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	runConformance(t, a, f, func() *providers.Request {
		return &providers.Request{Operation: providers.OpGenerate, Model: "dall-e-3", Prompt: "a red fox", N: 1,
			Width: 1792, Height: 1024, Quality: "hd", ResponseFormat: "url"}
	})
}

func TestConformanceGPTImageGenerate(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	runConformance(t, a, f, func() *providers.Request {
		return &providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1", Prompt: "a red fox", N: 2,
			Quality: "low", ResponseFormat: "b64_json"}
	})
}

func TestConformanceGPTImageEdit(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	img := pngImage(t, 64, 64, true)
	mask := pngImage(t, 64, 64, true)
	runConformance(t, a, f, func() *providers.Request {
		return &providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "add a hat",
			Images: []providers.Image{img, img}, Mask: &mask, Width: 1024, Height: 1024}
	})
}

func TestConformanceDallE2Variation(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	img := pngImage(t, 64, 64, false)
	runConformance(t, a, f, func() *providers.Request {
		return &providers.Request{Operation: providers.OpVariation, Model: "dall-e-2", N: 2, Width: 256, Height: 256,
			Images: []providers.Image{img}}
	})
}

func TestConformanceCompatible(t *testing.T) {
	c, f, _ := compatibleFake(t, nil)
	runConformance(t, c, f, func() *providers.Request {
		return &providers.Request{Operation: providers.OpGenerate, Model: "flux-dev", Prompt: "a red fox",
			Width: 768, Height: 512, Steps: 20, Seed: ptr(int64(7))}
	})
}
