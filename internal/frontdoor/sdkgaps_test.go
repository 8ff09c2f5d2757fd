package frontdoor_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

// dall-e-3 offered by OpenAI and by an OpenAI-compatible host is one model over both channels:
// existing OpenAI code keeps working when a second channel is added, and "<channel>/dall-e-3"
// pins one.
func TestSDKDallE3OverTwoChannels(t *testing.T) {
	oa := httptest.NewServer(fake.New(fake.Options{}))
	t.Cleanup(oa.Close)
	compat := httptest.NewServer(fake.NewCompatible(fake.Options{}))
	t.Cleanup(compat.Close)
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		for _, s := range []*httptest.Server{oa, compat} {
			c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, strings.TrimPrefix(s.URL, "http://"))
		}
		c.Providers = append(c.Providers,
			config.ChannelConfig{Name: "oa", Type: "openai", BaseURL: oa.URL + "/v1", APIKey: config.Secret(fake.DefaultKey)},
			config.ChannelConfig{Name: "compat", Type: "openai-compatible", BaseURL: compat.URL + "/v1", APIKey: config.Secret(fake.DefaultCompatibleKey)})
	}})
	c := sdk(g, g.Key)
	ctx := context.Background()
	m, err := c.Models.Get(ctx, "dall-e-3")
	if err != nil || m.ID != "dall-e-3" {
		t.Fatalf("models.retrieve dall-e-3: %v %+v", err, m)
	}
	for _, model := range []string{"dall-e-3", "oa/dall-e-3", "compat/dall-e-3"} {
		res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: openai.ImageModel(model), Prompt: "a lighthouse",
			Size: "1024x1024", ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
		if err != nil || len(res.Data) != 1 || res.Data[0].B64JSON == "" {
			t.Fatalf("images.generate %s: %v", model, err)
		}
	}
}

// The SDKs' defaults that ask for nothing pass on any model: background and moderation "auto",
// quality "auto", and a user id the provider does not take.
func TestSDKAutoDefaults(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := sdk(g, g.Key)
	res, err := c.Images.Generate(context.Background(), openai.ImageGenerateParams{Model: "sandbox-steps", Prompt: "a fox",
		Background: openai.ImageGenerateParamsBackgroundAuto, Moderation: openai.ImageGenerateParamsModerationAuto,
		Quality: openai.ImageGenerateParamsQualityAuto, User: openai.String("end-user-7"), Size: "512x512"})
	if err != nil || len(res.Data) != 1 {
		t.Fatalf("images.generate with SDK auto defaults: %v", err)
	}
}
