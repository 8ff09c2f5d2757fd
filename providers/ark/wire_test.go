package ark

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
	"github.com/imagegw/imagegw/providers/providertest"
)

// Tiny stand-ins for input images: the adapter only base64s them.
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
		{"seedream30_full", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "a red fox & a <hare>", N: 1,
			Width: 1024, Height: 768, Seed: i64(42), GuidanceScale: f64(2.5), ResponseFormat: "b64_json"}},
		{"seedream30_minimal", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Prompt: "a fox"}},
		{"seededit_edit", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Prompt: "make the sky pink",
			Images: []providers.Image{png}, Seed: i64(-1), GuidanceScale: f64(5.5), ResponseFormat: "url"}},
		{"seedream45_refs_watermark", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Prompt: "combine them",
			Width: 2560, Height: 1440, Images: []providers.Image{png, jpg},
			Extra: map[string]json.RawMessage{"watermark": json.RawMessage("true")}}},
		{"seedream50_png_one_ref", providers.OpEdit, providers.Request{Model: ModelSeedream50, Prompt: "as a poster",
			Images: []providers.Image{jpg}, OutputFormat: "png"}},
		{"endpoint_passthrough", providers.OpGenerate, providers.Request{Model: "ep-20260101123456-abcde", Prompt: "a fox",
			Width: 1024, Height: 1024, Seed: i64(3)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := toWire(lookup(tc.req.Model), tc.op, &tc.req)
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

// TestResponseGolden translates each testdata/response/*.json fixture (what Ark answers) into a
// Result or an error, compared with testdata/result/<name>.json. Fixtures named *b64* are read
// with the b64_json hint.
func TestResponseGolden(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	arktest.ResponseGolden(t, func(name string, body []byte) (*providers.Result, error) {
		want := "url"
		if strings.Contains(name, "b64") {
			want = "b64_json"
		}
		return translate("ark", body, want, i64(42), now)
	})
}
