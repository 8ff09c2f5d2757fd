package fake

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOfficialSDK drives the fake with the official openai-go SDK, the client users point at
// OpenAI-shaped APIs: its requests must pass the fake's checks and its decoder must take the
// fake's answers.
func TestOfficialSDK(t *testing.T) {
	srv := newServer(t, New(Options{}))
	client := openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey(DefaultKey), option.WithMaxRetries(0),
		option.WithHTTPClient(srv.Client()))
	ctx := context.Background()

	res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a red fox", Model: openai.ImageModelDallE3,
		Size: openai.ImageGenerateParamsSize1792x1024, ResponseFormat: openai.ImageGenerateParamsResponseFormatURL})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 1 || res.Data[0].URL == "" || res.Data[0].RevisedPrompt == "" {
		t.Fatalf("generate: %+v", res.Data)
	}

	sq := makePNG(t, 64, 64, true)
	res, err = client.Images.Edit(ctx, openai.ImageEditParams{Prompt: "a picnic", Model: "gpt-image-1",
		Image: openai.ImageEditParamsImageUnion{OfFileArray: []io.Reader{
			openai.File(bytes.NewReader(sq), "a.png", "image/png"), openai.File(bytes.NewReader(sq), "b.png", "image/png")}},
		Mask: openai.File(bytes.NewReader(sq), "mask.png", "image/png"), N: openai.Int(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || res.Data[0].B64JSON == "" || res.Usage.TotalTokens == 0 {
		t.Fatalf("edit: %d images, usage %+v", len(res.Data), res.Usage)
	}

	res, err = client.Images.NewVariation(ctx, openai.ImageNewVariationParams{Image: openai.File(bytes.NewReader(sq), "a.png", "image/png"),
		Model: openai.ImageModelDallE2, N: openai.Int(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 {
		t.Fatalf("variation: %+v", res.Data)
	}

	_, err = client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a red fox", Model: "gpt-image-1",
		ResponseFormat: openai.ImageGenerateParamsResponseFormatURL})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "unknown_parameter" || apiErr.Param != "response_format" {
		t.Fatalf("gpt-image-1 with response_format: %v", err)
	}
}
