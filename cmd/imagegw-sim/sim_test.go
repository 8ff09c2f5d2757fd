package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// startSim serves the simulator on a loopback port and returns the gateway environment for it.
func startSim(t *testing.T) map[string]string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler("http://"+ln.Addr().String(), 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	env := map[string]string{}
	for _, kv := range Env(ln.Addr().String()) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func squarePNG(t *testing.T, n int, hole bool) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			a := uint8(255)
			if hole && x < n/2 && y < n/2 {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 90, a})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// TestEveryProviderThroughTheFrontDoor drives the gateway with the official openai-go SDK against
// every provider's fake in the simulator: each adapter's models answer OpenAI-shaped responses.
func TestEveryProviderThroughTheFrontDoor(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Env: startSim(t)})
	c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(g.Key), option.WithMaxRetries(0))
	ctx := context.Background()

	page, err := c.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]bool{}
	for _, m := range page.Data {
		owners[m.OwnedBy] = true
	}
	for _, p := range []string{"sandbox", "siliconflow", "yunyx", "ark", "modelverse", "openai", "openai-compatible", "ideogram"} {
		if !owners[p] {
			t.Errorf("no model owned by %s is listed", p)
		}
	}

	gen := []struct {
		model  string
		size   string
		n      int64
		format openai.ImageGenerateParamsResponseFormat
	}{
		{"siliconflow/black-forest-labs/FLUX.1-schnell", "1024x1024", 2, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"stabilityai/stable-diffusion-3-5-large-turbo", "768x512", 3, openai.ImageGenerateParamsResponseFormatURL},
		{"yunyx/FLUX.1-schnell", "512x1024", 2, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"doubao-seedream-3-0-t2i-250415", "1024x1024", 2, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"modelverse/black-forest-labs/FLUX.1-dev", "512x512", 2, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"openai/dall-e-3", "1024x1024", 2, openai.ImageGenerateParamsResponseFormatURL},
		{"dall-e-2", "256x256", 2, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"gpt-image-1", "1024x1024", 1, ""},
		{"openai-compatible/flux-schnell", "512x512", 1, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"V_2", "1024x1024", 2, openai.ImageGenerateParamsResponseFormatB64JSON},
		{"V_3", "1024x1024", 1, openai.ImageGenerateParamsResponseFormatURL},
	}
	for _, tc := range gen {
		t.Run("generate "+tc.model, func(t *testing.T) {
			res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{
				Model: openai.ImageModel(tc.model), Prompt: "a lighthouse at dusk", N: openai.Int(tc.n),
				Size: openai.ImageGenerateParamsSize(tc.size), ResponseFormat: tc.format,
			})
			if err != nil {
				var ae *openai.Error
				if errors.As(err, &ae) {
					t.Fatalf("%d %s %s: %s", ae.StatusCode, ae.Type, ae.Code, ae.Message)
				}
				t.Fatal(err)
			}
			if int64(len(res.Data)) != tc.n {
				t.Fatalf("got %d images, want %d", len(res.Data), tc.n)
			}
			for _, d := range res.Data {
				if tc.format == openai.ImageGenerateParamsResponseFormatURL {
					if d.URL == "" {
						t.Fatal("no url")
					}
					continue
				}
				b, err := base64.StdEncoding.DecodeString(d.B64JSON)
				if err != nil || len(b) < 8 {
					t.Fatalf("b64_json does not decode: %v", err)
				}
				if _, _, err := image.DecodeConfig(bytes.NewReader(b)); err != nil {
					t.Fatalf("b64_json is not an image: %v", err)
				}
			}
		})
	}

	t.Run("edit gpt-image-1 with mask", func(t *testing.T) {
		res, err := c.Images.Edit(ctx, openai.ImageEditParams{
			Model: "gpt-image-1", Prompt: "add a moon",
			Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(squarePNG(t, 64, false)), "a.png", "image/png")},
			Mask:  openai.File(bytes.NewReader(squarePNG(t, 64, true)), "m.png", "image/png"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 1 || res.Data[0].B64JSON == "" {
			t.Fatalf("%+v", res)
		}
	})

	t.Run("edit ideogram V_2 with an OpenAI mask", func(t *testing.T) {
		res, err := c.Images.Edit(ctx, openai.ImageEditParams{
			Model: "V_2", Prompt: "add a moon",
			Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(squarePNG(t, 64, false)), "a.png", "image/png")},
			Mask:  openai.File(bytes.NewReader(squarePNG(t, 64, true)), "m.png", "image/png"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 1 {
			t.Fatalf("%+v", res)
		}
	})

	t.Run("variation dall-e-2", func(t *testing.T) {
		res, err := c.Images.NewVariation(ctx, openai.ImageNewVariationParams{
			Model: "dall-e-2", Image: openai.File(bytes.NewReader(squarePNG(t, 64, false)), "a.png", "image/png"), N: openai.Int(2),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 {
			t.Fatalf("%+v", res)
		}
	})

	t.Run("a parameter the model cannot honour is a 400 naming it", func(t *testing.T) {
		_, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "openai/dall-e-3", Prompt: "x", Size: "256x256"})
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Param != "size" || !strings.Contains(ae.Message, "1792x1024") {
			t.Fatalf("got %v", err)
		}
	})
}
