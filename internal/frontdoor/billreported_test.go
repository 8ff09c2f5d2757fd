package frontdoor_test

import (
	"testing"

	"github.com/imagegw/imagegw/providers/openai/fake"
)

// gpt-image with size or quality "auto" (the SDK default) is billed at what OpenAI reports it
// made, not at the worst case held for it. OpenAI's list prices per image for gpt-image-1
// (USD): high 1024x1024 $0.167, high 1536x1024 $0.25; low 1024x1024 $0.011, low 1536x1024
// $0.016. The fake, like OpenAI, makes 1024x1024 at "high" for "auto".
func TestGPTImageAutoBilledAtWhatWasMade(t *testing.T) {
	g := openAIGateway(t, fake.Options{})
	for _, tc := range []struct {
		name, body, cost string
	}{
		{"size and quality auto", `{"model":"gpt-image-1","prompt":"a fox","size":"auto","quality":"auto"}`, "0.167"},
		{"nothing said", `{"model":"gpt-image-1","prompt":"a fox"}`, "0.167"},
		{"size auto, low quality", `{"model":"gpt-image-1","prompt":"a fox","quality":"low"}`, "0.011"},
		{"two images, auto", `{"model":"gpt-image-1","prompt":"a fox","n":2}`, "0.334"},
		{"an explicit size", `{"model":"gpt-image-1","prompt":"a fox","size":"1536x1024","quality":"low"}`, "0.016"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, g, jsonReq(tc.body))
			if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != tc.cost {
				t.Fatalf("%d cost %q, want %s: %.300s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), tc.cost, body)
			}
			e := waitUsage(t, g, resp.Header.Get("X-Request-Id"))
			if e.Cost.String() != tc.cost {
				t.Errorf("ledger cost %s, want %s", e.Cost, tc.cost)
			}
			if tc.cost != "0.016" && (e.Width != 1024 || e.Height != 1024) {
				t.Errorf("ledger size %dx%d, want what was made, 1024x1024", e.Width, e.Height)
			}
		})
	}
}
