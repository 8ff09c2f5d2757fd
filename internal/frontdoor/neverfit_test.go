package frontdoor_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/store"
)

// countRequests counts the HTTP requests an SDK makes (its retries included).
func countRequests(n *atomic.Int64) option.RequestOption {
	return option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		n.Add(1)
		return next(r)
	})
}

// A request that can never fit a limit (n=8 against 5 images a minute on the key; a call of 4
// images against a channel's 3 a minute) is a 429 with x-should-retry: false and no Retry-After, so the SDK does not retry it.
func TestNeverFitIsNotRetriedBySDK(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Providers = append(c.Providers, config.ChannelConfig{Name: "sb-small", Type: "sandbox", IPM: 3})
	}})
	keyLimited := g.NewKey(t, &store.Key{Name: "ipm5", IPM: intp(5)})
	for _, tc := range []struct {
		name, key, model string
		n                int64
	}{
		{"key limit", keyLimited, "sandbox-image", 8},
		{"channel limit", g.Key, "sb-small/sandbox-image", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(tc.key), option.WithMaxRetries(2), countRequests(&calls))
			_, err := c.Images.Generate(context.Background(), openai.ImageGenerateParams{
				Model: openai.ImageModel(tc.model), Prompt: "x", N: openai.Int(tc.n), Size: "256x256"})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
				t.Fatalf("error %v, want a 429", err)
			}
			if calls.Load() != 1 {
				t.Errorf("the SDK sent %d requests, want 1 (no retries)", calls.Load())
			}
			h := apiErr.Response.Header
			if h.Get("x-should-retry") != "false" || h.Get("Retry-After") != "" || h.Get("retry-after-ms") != "" {
				t.Errorf("headers %v, want x-should-retry: false and no Retry-After", h)
			}
		})
	}
}

func intp(v int) *int { return &v }
