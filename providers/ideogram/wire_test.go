package ideogram

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/providertest"
)

// wirePart is one multipart part in a golden file: text fields verbatim, files by size and hash.
type wirePart struct {
	Name        string `json:"name"`
	Value       string `json:"value,omitempty"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Bytes       int    `json:"bytes,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
}

type wireCall struct {
	Path        string          `json:"path"`
	ContentType string          `json:"content_type"`
	JSON        json.RawMessage `json:"json,omitempty"`
	Parts       []wirePart      `json:"parts,omitempty"`
}

// render encodes c exactly as the adapter sends it and decodes it back into a golden-friendly form.
func render(t *testing.T, c *call) []byte {
	t.Helper()
	body, n, ct := c.body("golden-boundary")
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != n {
		t.Fatalf("announced length %d, body has %d bytes", n, len(b))
	}
	out := wireCall{Path: c.path}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatal(err)
	}
	out.ContentType = mt
	if mt == "application/json" {
		out.JSON = b
	} else {
		r := multipart.NewReader(bytes.NewReader(b), params["boundary"])
		for {
			p, err := r.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("the multipart body does not parse: %v", err)
			}
			data, _ := io.ReadAll(p)
			wp := wirePart{Name: p.FormName()}
			if p.FileName() != "" {
				sum := sha256.Sum256(data)
				wp.Filename, wp.ContentType, wp.Bytes = p.FileName(), p.Header.Get("Content-Type"), len(data)
				wp.SHA256 = hex.EncodeToString(sum[:8])
			} else {
				wp.Value = string(data)
			}
			out.Parts = append(out.Parts, wp)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRequestTranslationGolden(t *testing.T) {
	src := testImage(t, 64, 64)
	ref := testImage(t, 32, 48)
	ref.Filename = ""
	mask := &providers.Image{Data: testMask(t, 64, 64, true), ContentType: "image/png"}
	cases := []struct {
		name string
		op   providers.Operation
		req  providers.Request
	}{
		{"legacy_generate_resolution", providers.OpGenerate, providers.Request{Model: ModelV2, Prompt: `A "cat" & <dog>`,
			NegativePrompt: "blurry", N: 2, Width: 1280, Height: 720, Seed: ptr[int64](42), PromptEnhancement: ptr(true),
			Extra: map[string]json.RawMessage{"style_type": raw("realistic"), "color_palette": raw("EMBER")}}},
		{"legacy_generate_v1_aspect", providers.OpGenerate, providers.Request{Model: ModelV1Turbo, Prompt: "a lighthouse",
			AspectRatio: "16:10", Extra: map[string]json.RawMessage{"magic_prompt": raw("AUTO")}}},
		{"legacy_remix", providers.OpRemix, providers.Request{Model: ModelV2A, Prompt: "watercolor", Images: []providers.Image{src},
			AspectRatio: "10:16", Extra: map[string]json.RawMessage{"image_weight": raw("60")}}},
		// What Ideogram would choose itself, written out: resolution 1024x1024, num_images 1 and,
		// on 3.0, rendering_speed DEFAULT.
		{"legacy_generate_defaults", providers.OpGenerate, providers.Request{Model: ModelV2A, Prompt: "a lighthouse"}},
		{"v3_generate_defaults", providers.OpGenerate, providers.Request{Model: ModelV3, Prompt: "a lighthouse"}},
		{"legacy_variation", providers.OpVariation, providers.Request{Model: ModelV1, Images: []providers.Image{src}, N: 3}},
		{"legacy_edit", providers.OpEdit, providers.Request{Model: ModelV2Turbo, Prompt: "a red hat", Images: []providers.Image{src},
			Mask: mask, N: 1, Seed: ptr[int64](7), Width: 64, Height: 64, Extra: map[string]json.RawMessage{"style_type": raw("DESIGN")}}},
		{"legacy_reframe", providers.OpReframe, providers.Request{Model: ModelV2, Images: []providers.Image{src}, Width: 1536, Height: 640, N: 2}},
		{"upscale", providers.OpUpscale, providers.Request{Model: ModelV2, Images: []providers.Image{src},
			Extra: map[string]json.RawMessage{"resemblance": raw(80), "detail": raw(20)}}},
		{"upscale_defaults", providers.OpUpscale, providers.Request{Model: ModelV3, Images: []providers.Image{src}}},
		{"describe", providers.OpDescribe, providers.Request{Model: ModelV3, Images: []providers.Image{src},
			Extra: map[string]json.RawMessage{"describe_model_version": raw("V_2")}}},
		{"v3_generate", providers.OpGenerate, providers.Request{Model: ModelV3, Prompt: "poster", Quality: "high", N: 4,
			AspectRatio: "4:5", NegativePrompt: "text", Images: []providers.Image{ref},
			Extra: map[string]json.RawMessage{"magic_prompt": raw(false), "style_preset": raw("ART_DECO"),
				"color_palette": raw(map[string]any{"members": []map[string]any{{"color_hex": "#ff0000", "color_weight": 0.6}, {"color_hex": "#00FF00"}}})}}},
		{"v3_generate_resolution_codes", providers.OpGenerate, providers.Request{Model: ModelV3, Prompt: "logo", Width: 800, Height: 1280,
			Extra: map[string]json.RawMessage{"rendering_speed": raw("turbo"), "style_codes": raw([]string{"0a1b2c3d", "DEADBEEF"})}}},
		{"v3_remix", providers.OpRemix, providers.Request{Model: ModelV3, Prompt: "in snow", Images: []providers.Image{src, ref},
			Seed: ptr[int64](2147483647), Extra: map[string]json.RawMessage{"style_reference_images": raw(1), "image_weight": raw(35), "aspect_ratio": raw("16x9"), "style_type": raw("AUTO")}}},
		{"v3_edit", providers.OpEdit, providers.Request{Model: ModelV3, Prompt: "remove text", Images: []providers.Image{src}, Mask: mask,
			Quality: "low", Extra: map[string]json.RawMessage{"magic_prompt": raw("OFF")}}},
		{"v3_reframe", providers.OpReframe, providers.Request{Model: ModelV3, Images: []providers.Image{src},
			Extra: map[string]json.RawMessage{"resolution": raw("RESOLUTION_1344_768"), "style_preset": raw("WATERCOLOR")}}},
		{"v3_replace_background", providers.OpReplaceBackground, providers.Request{Model: ModelV3, Prompt: "on a beach",
			Images: []providers.Image{src}, PromptEnhancement: ptr(true), N: 2}},
	}
	models := Catalog()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := lookupModel(models, tc.req.Model)
			if !ok {
				t.Fatalf("no model %s", tc.req.Model)
			}
			c, err := buildCall(m, tc.op, &tc.req)
			if err != nil {
				t.Fatalf("buildCall: %v", err)
			}
			providertest.Golden(t, filepath.Join("requests", tc.name+".json"), render(t, c))
		})
	}
}

func TestResponseTranslationGolden(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	files, err := filepath.Glob(filepath.Join("testdata", "upstream", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no upstream fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var res *providers.Result
			if strings.HasPrefix(name, "describe") {
				res, err = decodeDescribe(body)
			} else {
				res, err = decodeImages(body, now)
			}
			out := map[string]any{"result": res}
			if err != nil {
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("not a *providers.Error: %v", err)
				}
				out = map[string]any{"error": map[string]any{"kind": pe.Kind, "message": pe.Message}}
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(out); err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, filepath.Join("responses", name+".json"), buf.Bytes())
		})
	}
}
