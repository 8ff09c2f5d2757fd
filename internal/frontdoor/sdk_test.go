package frontdoor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// pngOf returns a w×h PNG; when holeAlpha is true, the left half is fully transparent.
func pngOf(t testing.TB, w, h int, holeAlpha bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := uint8(255)
			if holeAlpha && x < w/2 {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 200, A: a})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sdk(g *gatewaytest.Gateway, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img
}

func TestOpenAISDKAgainstTheFrontDoor(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	c := sdk(g, g.Key)
	ctx := context.Background()

	t.Run("models.list", func(t *testing.T) {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
			if m.OwnedBy != "sandbox" || m.Object != "model" {
				t.Errorf("model %+v", m)
			}
		}
		if !strings.Contains(strings.Join(ids, ","), "sandbox-image") {
			t.Fatalf("sandbox-image not listed: %v", ids)
		}
		m, err := c.Models.Get(ctx, "sandbox-image")
		if err != nil || m.ID != "sandbox-image" {
			t.Fatalf("models.retrieve: %v %+v", err, m)
		}
		// Ids with '/' are percent-encoded by the SDK.
		m, err = c.Models.Get(ctx, "sandbox/sandbox-image")
		if err != nil || m.ID != "sandbox/sandbox-image" {
			t.Fatalf("models.retrieve of an id with '/': %v %+v", err, m)
		}
	})

	t.Run("images.generate url", func(t *testing.T) {
		res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{
			Model: "sandbox-image", Prompt: "a lighthouse at dusk", N: openai.Int(2),
			Size: "512x512", ResponseFormat: openai.ImageGenerateParamsResponseFormatURL,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 || res.Created == 0 {
			t.Fatalf("response %+v", res)
		}
		for _, d := range res.Data {
			if !strings.HasPrefix(d.URL, g.URL+"/v1/images/files/") {
				t.Fatalf("url %q is not gateway-hosted", d.URL)
			}
			resp, err := http.Get(d.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if img := decodePNG(t, body); img.Bounds().Dx() != 512 || img.Bounds().Dy() != 512 {
				t.Fatalf("hosted image is %v", img.Bounds())
			}
		}
	})

	t.Run("images.generate b64_json fan-out", func(t *testing.T) {
		res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{
			Model: "sandbox-image", Prompt: "seven cats", N: openai.Int(7), Size: "256x256",
			ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 7 {
			t.Fatalf("got %d images, want 7 (n above the per-call maximum fans out)", len(res.Data))
		}
		for _, d := range res.Data {
			b, err := base64.StdEncoding.DecodeString(d.B64JSON)
			if err != nil {
				t.Fatal(err)
			}
			if img := decodePNG(t, b); img.Bounds().Dx() != 256 {
				t.Fatalf("image is %v", img.Bounds())
			}
		}
	})

	t.Run("images.edit with mask", func(t *testing.T) {
		src, mask := pngOf(t, 128, 128, false), pngOf(t, 128, 128, true)
		res, err := c.Images.Edit(ctx, openai.ImageEditParams{
			Model:          "sandbox-image",
			Prompt:         "paint the left half",
			Image:          openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "src.png", "image/png")},
			Mask:           openai.File(bytes.NewReader(mask), "mask.png", "image/png"),
			ResponseFormat: openai.ImageEditParamsResponseFormatB64JSON,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := base64.StdEncoding.DecodeString(res.Data[0].B64JSON)
		out := decodePNG(t, b)
		// The right half is outside the mask's transparent area: kept from the source.
		want := decodePNG(t, src).At(100, 64)
		if r1, g1, b1, _ := out.At(100, 64).RGBA(); func() bool { r2, g2, b2, _ := want.RGBA(); return r1 != r2 || g1 != g2 || b1 != b2 }() {
			t.Fatal("the unmasked half of the image changed")
		}
	})

	t.Run("images.edit with several images", func(t *testing.T) {
		a, b := pngOf(t, 64, 64, false), pngOf(t, 64, 64, false)
		res, err := c.Images.Edit(ctx, openai.ImageEditParams{
			Model:  "sandbox-image",
			Prompt: "combine",
			Image: openai.ImageEditParamsImageUnion{OfFileArray: []io.Reader{
				openai.File(bytes.NewReader(a), "a.png", "image/png"), openai.File(bytes.NewReader(b), "b.png", "image/png")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 1 || res.Data[0].URL == "" {
			t.Fatalf("response %+v", res)
		}
	})

	t.Run("images.createVariation", func(t *testing.T) {
		res, err := c.Images.NewVariation(ctx, openai.ImageNewVariationParams{
			Model: "sandbox-image", Image: openai.File(bytes.NewReader(pngOf(t, 96, 96, false)), "in.png", "image/png"),
			N: openai.Int(3), ResponseFormat: openai.ImageNewVariationParamsResponseFormatB64JSON,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 3 {
			t.Fatalf("got %d variations", len(res.Data))
		}
	})

	t.Run("errors decode as openai.Error", func(t *testing.T) {
		cases := []struct {
			name   string
			client openai.Client
			params openai.ImageGenerateParams
			status int
			typ    string
			code   string
			param  string
		}{
			{"bad key", sdk(g, "igw_not_a_real_key_at_all"), openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x"}, 401, "invalid_request_error", "invalid_api_key", ""},
			{"unknown model", c, openai.ImageGenerateParams{Model: "nope", Prompt: "x"}, 404, "invalid_request_error", "model_not_found", "model"},
			{"n out of range", c, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x", N: openai.Int(11)}, 400, "invalid_request_error", "invalid_value", "n"},
			{"size not supported", c, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x", Size: "1000x1001"}, 400, "invalid_request_error", "unsupported_parameter", "size"},
			{"provider failure", c, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x [sandbox:fail=upstream_unavailable]"}, 502, "server_error", "upstream_unavailable", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := tc.client.Images.Generate(ctx, tc.params)
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("want *openai.Error, got %T %v", err, err)
				}
				if apiErr.StatusCode != tc.status || apiErr.Type != tc.typ || apiErr.Code != tc.code || apiErr.Param != tc.param || apiErr.Message == "" {
					t.Fatalf("got status=%d type=%q code=%q param=%q message=%q", apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Param, apiErr.Message)
				}
			})
		}
	})

	t.Run("key restricted to other models is refused", func(t *testing.T) {
		g2key := g.NewKey(t, keyFor("sandbox-steps"))
		restricted := sdk(g, g2key)
		_, err := restricted.Images.Generate(ctx, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x"})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
			t.Fatalf("want 403, got %v", err)
		}
		page, err := restricted.Models.List(ctx)
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != "sandbox-steps" {
			t.Fatalf("a restricted key lists %+v (%v)", page, err)
		}
	})
}
