package modelverse

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
	"github.com/imagegw/imagegw/providers/providertest"
)

var (
	pngBytes  = []byte("\x89PNG\r\n\x1a\nfake-png")
	jpegBytes = []byte("\xff\xd8\xff\xe0fake-jpeg")
)

func TestRequestGolden(t *testing.T) {
	png := providers.Image{Data: pngBytes, ContentType: "image/png", Width: 640, Height: 480}
	jpg := providers.Image{Data: jpegBytes, ContentType: "image/jpeg", Width: 800, Height: 600}
	cases := []struct {
		name string
		op   providers.Operation
		req  providers.Request
	}{
		{"flux_dev_full", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "a cute cat & a <dog>", N: 4,
			Width: 1536, Height: 256, Steps: 28, Seed: i64(-1), GuidanceScale: f64(2.5), ResponseFormat: "b64_json"}},
		{"flux_dev_minimal_n1", providers.OpGenerate, providers.Request{Model: fluxDevNew, Prompt: "a cat", N: 1}},
		{"flux_dev_img2img", providers.OpGenerate, providers.Request{Model: fluxDevID, Prompt: "watercolour", Images: []providers.Image{jpg},
			Strength: f64(0.8), ResponseFormat: "url"}},
		{"kontext_pro_edit", providers.OpEdit, providers.Request{Model: kontextPro, Prompt: "add a hat", Images: []providers.Image{png},
			Seed: i64(2147483647), GuidanceScale: f64(10), ResponseFormat: "b64_json"}},
		{"kontext_max_multi", providers.OpEdit, providers.Request{Model: kontextMaxM, Prompt: "put them together", Images: []providers.Image{png, jpg},
			AspectRatio: "21:9"}},
		{"kontext_text2image", providers.OpGenerate, providers.Request{Model: kontextT2IN, Prompt: "a cat", N: 2, AspectRatio: "3:4"}},
		{"step1x_edit", providers.OpEdit, providers.Request{Model: step1xID, Prompt: "make the cat wear a hat", NegativePrompt: "blurry, low quality",
			Steps: 50, Images: []providers.Image{png}}},
		// The upstream's defaults written out: steps 28 on Step1X, aspect_ratio 1:1 and n 1 on text2image.
		{"step1x_edit_defaults", providers.OpEdit, providers.Request{Model: step1xNew, Prompt: "a hat", Images: []providers.Image{png}}},
		{"kontext_text2image_defaults", providers.OpGenerate, providers.Request{Model: kontextT2I, Prompt: "a cat"}},
		{"passthrough_two_images", providers.OpEdit, providers.Request{Model: "doubao-seedream-4.5", Prompt: "mix", Width: 2560, Height: 1440,
			Images: []providers.Image{png, jpg}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, k := lookup(tc.req.Model)
			w, err := toWire(m, k, tc.op, &tc.req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := encodeRequest(w)
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, filepath.Join("request", tc.name+".json"), body)
		})
	}
}

// TestResponseGolden translates each testdata/response/*.json fixture into a Result or an error,
// compared with testdata/result/<name>.json. Fixtures named *b64* are read with the b64_json
// hint; *fluxdev* ones with FLUX.1-dev's known size 1024x1024; *seedream* ones as a model
// outside the catalog (24-hour URLs).
func TestResponseGolden(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	arktest.ResponseGolden(t, func(name string, body []byte) (*providers.Result, error) {
		h := hints{want: "url", seed: i64(7), ttl: URLTTL}
		if strings.Contains(name, "seedream") {
			h.ttl = 0 // a model outside the catalog
		}
		if strings.Contains(name, "b64") {
			h.want = "b64_json"
		}
		if strings.Contains(name, "fluxdev") {
			h.size = providers.Size{W: 1024, H: 1024}
		}
		return translate("modelverse", body, h, now)
	})
}
