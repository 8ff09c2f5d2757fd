package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/providers"
	ideogramfake "github.com/imagegw/imagegw/providers/ideogram/fake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// The Ideogram end-to-end tests: a whole gateway in front of the simulator's strict Ideogram fake,
// driven through the front door — the openai-go SDK for generate, edit and variations, plain
// multipart HTTP for the extension endpoints (remix, upscale, describe, reframe,
// replace-background) and for fields the SDK cannot send. Every answer is checked for its
// OpenAI shape, its number of images, their sizes and the X-Imagegw-Cost of seed 002's list
// prices (USD, the deployment currency, so no conversion). TestIdeogramWhatTheFakeReceives and the
// AiHubMix test serve the simulator with an Ideogram fake they hold, to check what reached
// Ideogram: the endpoint, the wire spelling of each knob, the converted mask.

// ideoGW is a gateway in front of the simulator.
type ideoGW struct {
	url  string
	key  string
	sdk  openai.Client
	http *http.Client
}

func startIdeogramGateway(t *testing.T, o gatewaytest.Options) *ideoGW {
	t.Helper()
	g := gatewaytest.Start(t, o)
	return &ideoGW{
		url:  g.URL,
		key:  g.Key,
		sdk:  openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(g.Key), option.WithMaxRetries(0)),
		http: &http.Client{Timeout: time.Minute},
	}
}

func (g *ideoGW) do(t *testing.T, path, contentType string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.key)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// postJSON sends a JSON generation request.
func (g *ideoGW) postJSON(t *testing.T, path string, body map[string]any, header ...string) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return g.do(t, path, "application/json", b, header...)
}

// file is one file part of a multipart request.
type file struct {
	field, filename string
	data            []byte
}

// postForm sends a multipart request: text fields in order (name, value, name, value, …), then files.
func (g *ideoGW) postForm(t *testing.T, path string, fields []string, files ...file) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := mw.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.filename))
		h.Set("Content-Type", http.DetectContentType(f.data))
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	mw.Close()
	return g.do(t, path, mw.FormDataContentType(), buf.Bytes())
}

// imageItem is one image of an answer: OpenAI's fields plus the gateway's seed and size.
type imageItem struct {
	URL           string `json:"url"`
	B64JSON       string `json:"b64_json"`
	RevisedPrompt string `json:"revised_prompt"`
	Seed          *int64 `json:"seed"`
	Size          string `json:"size"`
}

type imagesBody struct {
	Created *int64      `json:"created"`
	Data    []imageItem `json:"data"`
}

// want is what a successful image answer must carry. Empty partial and adjusted mean the header
// must be absent; an empty size is not checked.
type want struct {
	n        int
	size     string
	cost     string
	partial  string
	adjusted string
}

// checkImages checks an OpenAI-shaped images answer and returns it.
func checkImages(t *testing.T, resp *http.Response, body []byte, w want) imagesBody {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var ib imagesBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ib); err != nil {
		t.Fatalf("the answer is not OpenAI's images shape: %v: %s", err, body)
	}
	// Ideogram's created is an ISO-8601 string; the answer must carry Unix seconds.
	if ib.Created == nil || time.Since(time.Unix(*ib.Created, 0)).Abs() > time.Hour {
		t.Errorf("created is not the current time in Unix seconds: %s", body[:min(len(body), 200)])
	}
	if len(ib.Data) != w.n {
		t.Fatalf("got %d images, want %d: %s", len(ib.Data), w.n, truncated(body))
	}
	for i, d := range ib.Data {
		switch {
		case (d.URL == "") == (d.B64JSON == ""):
			t.Errorf("data[%d] must carry exactly one of url and b64_json", i)
		case d.URL != "":
			u, err := url.Parse(d.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Errorf("data[%d].url %q is not an absolute URL", i, d.URL)
			}
		default:
			b, err := base64.StdEncoding.DecodeString(d.B64JSON)
			if err != nil {
				t.Fatalf("data[%d].b64_json does not decode: %v", i, err)
			}
			cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("data[%d].b64_json is not an image: %v", i, err)
			}
			if got := fmt.Sprintf("%dx%d", cfg.Width, cfg.Height); w.size != "" && got != w.size {
				t.Errorf("data[%d] decodes to %s, want %s", i, got, w.size)
			}
		}
		if w.size != "" && d.Size != w.size {
			t.Errorf("data[%d].size = %q, want %q", i, d.Size, w.size)
		}
		if d.Seed == nil || *d.Seed < 0 || *d.Seed > 2147483647 {
			t.Errorf("data[%d].seed = %v, want Ideogram's seed", i, d.Seed)
		}
	}
	checkHeader(t, resp, "X-Imagegw-Cost", w.cost)
	if w.cost != "" {
		checkHeader(t, resp, "X-Imagegw-Currency", "USD")
	}
	checkHeader(t, resp, "X-Imagegw-Partial", w.partial)
	checkHeader(t, resp, "X-Imagegw-Adjusted", w.adjusted)
	return ib
}

func checkHeader(t *testing.T, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func truncated(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// checkError checks OpenAI's error envelope: the status, param (empty: null), code and words the
// message must contain. It refuses Ideogram's own {"error": "string"} body.
func checkError(t *testing.T, resp *http.Response, body []byte, status int, param, code string, words ...string) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, truncated(body))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || len(top) != 1 || !bytes.HasPrefix(bytes.TrimSpace(top["error"]), []byte("{")) {
		t.Fatalf("the error is not OpenAI's envelope {\"error\":{…}}: %s", body)
	}
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("error envelope: %v: %s", err, body)
	}
	e := env.Error
	if e.Message == "" || e.Type == "" {
		t.Errorf("the error needs a message and a type: %s", body)
	}
	gotParam := ""
	if e.Param != nil {
		gotParam = *e.Param
	}
	if gotParam != param {
		t.Errorf("param = %q, want %q: %s", gotParam, param, body)
	}
	if code != "" && (e.Code == nil || *e.Code != code) {
		t.Errorf("code is not %q: %s", code, body)
	}
	for _, w := range words {
		if !strings.Contains(e.Message, w) {
			t.Errorf("message %q does not contain %q", e.Message, w)
		}
	}
	return e.Message
}

// Test images. opaque is a source image; alphaMask is an OpenAI mask whose top-left quadrant is
// transparent (= change); bwMask is a ready Ideogram mask, black (= change) top-left, white
// elsewhere, or all white.
func opaque(t *testing.T, n int) []byte    { return squarePNG(t, n, false) }
func alphaMask(t *testing.T, n int) []byte { return squarePNG(t, n, true) }

func bwMask(t *testing.T, n int, black bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			c := color.RGBA{255, 255, 255, 255}
			if black && x < n/2 && y < n/2 {
				c = color.RGBA{0, 0, 0, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gifImage(t *testing.T, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, image.NewPaletted(image.Rect(0, 0, n, n), color.Palette{color.Black, color.White}), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func dataURI(b []byte) string { return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b) }

// sdkErr checks an error the openai-go SDK raised.
func sdkErr(t *testing.T, err error, status int, param, code string, words ...string) {
	t.Helper()
	var ae *openai.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want an *openai.Error %d %s, got %v", status, param, err)
	}
	if ae.StatusCode != status || ae.Param != param || (code != "" && ae.Code != code) {
		t.Fatalf("got %d param=%q code=%q type=%q: %s; want %d param=%q code=%q", ae.StatusCode, ae.Param, ae.Code, ae.Type, ae.Message, status, param, code)
	}
	for _, w := range words {
		if !strings.Contains(ae.Message, w) {
			t.Errorf("message %q does not contain %q", ae.Message, w)
		}
	}
}

// TestIdeogramEveryOperationThroughTheFrontDoor covers issue 4: every Ideogram model and operation
// through the OpenAI-shaped front door, against the simulator's strict fake.
func TestIdeogramEveryOperationThroughTheFrontDoor(t *testing.T) {
	g := startIdeogramGateway(t, gatewaytest.Options{Env: startSim(t)})
	ctx := context.Background()
	src := opaque(t, 64)

	t.Run("models", func(t *testing.T) {
		page, err := g.sdk.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			if m.OwnedBy == "ideogram" {
				ids = append(ids, m.ID)
			}
		}
		for _, id := range []string{"V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO", "V_3"} {
			if !slices.Contains(ids, id) {
				t.Errorf("model %s is not listed (ideogram models: %v)", id, ids)
			}
		}
		m, err := g.sdk.Models.Get(ctx, "V_3")
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Operations []string `json:"operations"`
			Sizes      []string `json:"sizes"`
		}
		if err := json.Unmarshal([]byte(m.RawJSON()), &obj); err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"generate", "edit", "variation", "remix", "upscale", "describe", "reframe", "replace_background"} {
			if !slices.Contains(obj.Operations, op) {
				t.Errorf("V_3 does not list operation %s: %v", op, obj.Operations)
			}
		}
		if len(obj.Sizes) != 69 || slices.Contains(obj.Sizes, "1280x720") || !slices.Contains(obj.Sizes, "800x1280") {
			t.Errorf("V_3 sizes are not the 69 3.0 resolutions: %v", obj.Sizes)
		}
	})

	// generate with the SDK; provider knobs ride along with option.WithJSONSet.
	t.Run("generate", func(t *testing.T) {
		cases := []struct {
			name   string
			params openai.ImageGenerateParams
			extra  map[string]any
			want   want
			check  func(t *testing.T, ib imagesBody)
		}{
			{name: "V_1 aspect ratio", params: openai.ImageGenerateParams{Model: "V_1", N: openai.Int(2)},
				extra: map[string]any{"aspect_ratio": "16:9"}, want: want{n: 2, size: "1312x736", cost: "0.12"}},
			{name: "V_1_TURBO aspect ratio in Ideogram's spelling", params: openai.ImageGenerateParams{Model: "V_1_TURBO"},
				extra: map[string]any{"aspect_ratio": "3x1", "negative_prompt": "blur"}, want: want{n: 1, size: "1536x512", cost: "0.02"}},
			{name: "V_2 legacy-only resolution as size, b64_json",
				params: openai.ImageGenerateParams{Model: "V_2", N: openai.Int(2), Size: "1280x720", ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON},
				want:   want{n: 2, size: "1280x720", cost: "0.16"}},
			{name: "V_2 resolution field", params: openai.ImageGenerateParams{Model: "V_2"},
				extra: map[string]any{"resolution": "RESOLUTION_1024_768"}, want: want{n: 1, size: "1024x768", cost: "0.08"}},
			{name: "V_2_TURBO with negative prompt, style, palette, magic prompt", params: openai.ImageGenerateParams{Model: "V_2_TURBO", Size: "1024x1024"},
				extra: map[string]any{"negative_prompt": "text", "style_type": "ANIME", "color_palette": map[string]any{"name": "EMBER"}, "magic_prompt": "OFF"},
				want:  want{n: 1, size: "1024x1024", cost: "0.05"}},
			{name: "V_2A", params: openai.ImageGenerateParams{Model: "V_2A", N: openai.Int(3), Size: "1024x1024"},
				extra: map[string]any{"style_type": "DESIGN"}, want: want{n: 3, size: "1024x1024", cost: "0.12"}},
			{name: "V_2A_TURBO", params: openai.ImageGenerateParams{Model: "V_2A_TURBO", Size: "1536x640"},
				want: want{n: 1, size: "1536x640", cost: "0.025"}},
			{name: "V_3 TURBO", params: openai.ImageGenerateParams{Model: "V_3", N: openai.Int(2), Size: "1024x1024"},
				extra: map[string]any{"rendering_speed": "TURBO"}, want: want{n: 2, size: "1024x1024", cost: "0.06"}},
			{name: "V_3 rendering speed in lower case", params: openai.ImageGenerateParams{Model: "V_3"},
				extra: map[string]any{"rendering_speed": "turbo"}, want: want{n: 1, size: "1024x1024", cost: "0.03"}},
			{name: "V_3 DEFAULT (no speed)", params: openai.ImageGenerateParams{Model: "V_3", Size: "800x1280"},
				want: want{n: 1, size: "800x1280", cost: "0.06"}},
			{name: "V_3 QUALITY", params: openai.ImageGenerateParams{Model: "V_3"},
				extra: map[string]any{"rendering_speed": "QUALITY"}, want: want{n: 1, size: "1024x1024", cost: "0.09"}},
			{name: "V_3 quality=high is QUALITY", params: openai.ImageGenerateParams{Model: "V_3", N: openai.Int(2), Quality: openai.ImageGenerateParamsQualityHigh},
				want: want{n: 2, size: "1024x1024", cost: "0.18"}},
			{name: "V_3 quality=low is TURBO", params: openai.ImageGenerateParams{Model: "V_3", Quality: openai.ImageGenerateParamsQualityLow},
				want: want{n: 1, cost: "0.03"}},
			{name: "V_3 quality=medium is DEFAULT", params: openai.ImageGenerateParams{Model: "V_3", Quality: openai.ImageGenerateParamsQualityMedium},
				want: want{n: 1, cost: "0.06"}},
			{name: "V_3 knobs: magic prompt, style type, negative prompt, seed, aspect ratio, palette members",
				params: openai.ImageGenerateParams{Model: "V_3", N: openai.Int(2)},
				extra: map[string]any{"magic_prompt": "ON", "style_type": "REALISTIC", "negative_prompt": "fog", "seed": 42, "aspect_ratio": "16:9",
					"color_palette": map[string]any{"members": []any{map[string]any{"color_hex": "#ff0000", "color_weight": 0.5}}}},
				want: want{n: 2, size: "1312x736", cost: "0.12"},
				check: func(t *testing.T, ib imagesBody) {
					for i, d := range ib.Data {
						// A seed repeats across an Ideogram call: the front door makes one-image calls, seeds 42, 43.
						if *d.Seed != 42+int64(i) {
							t.Errorf("data[%d].seed = %d, want %d", i, *d.Seed, 42+i)
						}
						if d.RevisedPrompt != "Enhanced: a lighthouse at dusk" {
							t.Errorf("revised_prompt %q: the magic-prompt rewrite is not carried", d.RevisedPrompt)
						}
					}
				}},
			{name: "V_3 prompt_enhancement, style preset, style codes", params: openai.ImageGenerateParams{Model: "V_3", Size: "1536x640"},
				extra: map[string]any{"prompt_enhancement": true, "style_preset": "BAUHAUS", "style_codes": []string{"0a1b2c3d"}},
				want:  want{n: 1, size: "1536x640", cost: "0.06"}},
			{name: "V_3 seed at the maximum", params: openai.ImageGenerateParams{Model: "V_3"},
				extra: map[string]any{"seed": 2147483647}, want: want{n: 1, cost: "0.06"},
				check: func(t *testing.T, ib imagesBody) {
					if *ib.Data[0].Seed != 2147483647 {
						t.Errorf("seed %d", *ib.Data[0].Seed)
					}
				}},
			{name: "V_3 n=10 with a seed fans out into ten one-image calls, seeds 7 to 16", params: openai.ImageGenerateParams{Model: "V_3", N: openai.Int(10)},
				extra: map[string]any{"seed": 7, "rendering_speed": "TURBO"}, want: want{n: 10, size: "1024x1024", cost: "0.3"},
				check: func(t *testing.T, ib imagesBody) {
					for i, d := range ib.Data {
						if *d.Seed != 7+int64(i) {
							t.Errorf("data[%d].seed = %d, want %d", i, *d.Seed, 7+i)
						}
					}
				}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.params.Prompt = "a lighthouse at dusk"
				opts := []option.RequestOption{}
				for k, v := range tc.extra {
					opts = append(opts, option.WithJSONSet(k, v))
				}
				var resp *http.Response
				opts = append(opts, option.WithResponseInto(&resp))
				res, err := g.sdk.Images.Generate(ctx, tc.params, opts...)
				if err != nil {
					sdkErr(t, err, 200, "", "")
				}
				ib := checkImages(t, resp, []byte(res.RawJSON()), tc.want)
				if tc.check != nil {
					tc.check(t, ib)
				}
			})
		}
	})

	t.Run("generate refusals", func(t *testing.T) {
		cases := []struct {
			name  string
			body  map[string]any
			param string
			words []string
		}{
			{"negative_prompt on V_2A", map[string]any{"model": "V_2A", "negative_prompt": "blur"}, "negative_prompt", []string{"V_2A", "negative_prompt"}},
			{"negative_prompt on V_2A_TURBO", map[string]any{"model": "V_2A_TURBO", "negative_prompt": "blur"}, "negative_prompt", []string{"V_2A_TURBO"}},
			{"seed above Ideogram's range", map[string]any{"model": "V_3", "seed": 2147483648}, "seed", []string{"2147483648", "2147483647"}},
			{"negative seed", map[string]any{"model": "V_2", "seed": -1}, "seed", []string{"0 to 2147483647"}},
			{"size not in the V3 list", map[string]any{"model": "V_3", "size": "1280x720"}, "size", []string{"1280x720", "1312x736", "1024x1024", "800x1280", "map_nearest"}},
			{"size not in the legacy list", map[string]any{"model": "V_2", "size": "800x1280"}, "size", []string{"800x1280", "1280x720"}},
			{"size on V_1 (aspect ratios only)", map[string]any{"model": "V_1", "size": "1024x1024"}, "size", []string{"aspect ratio", "16:9"}},
			{"resolution on V_1", map[string]any{"model": "V_1", "resolution": "1024x1024"}, "resolution", []string{"V_1"}},
			{"style_type on V_1", map[string]any{"model": "V_1", "style_type": "GENERAL"}, "style_type", []string{"V_1"}},
			{"color_palette on V_2A", map[string]any{"model": "V_2A", "color_palette": map[string]any{"name": "EMBER"}}, "color_palette", []string{"V_2A"}},
			{"quality on a legacy model", map[string]any{"model": "V_2", "quality": "high"}, "quality", []string{"V_2"}},
			{"a 3.0 aspect ratio on V_2", map[string]any{"model": "V_2", "aspect_ratio": "4:5"}, "aspect_ratio", []string{"4:5"}},
			{"an aspect ratio Ideogram lacks", map[string]any{"model": "V_3", "aspect_ratio": "7:3"}, "aspect_ratio", []string{"7:3"}},
			{"a legacy style type on V_3", map[string]any{"model": "V_3", "style_type": "ANIME"}, "style_type", nil},
			{"an unknown rendering speed", map[string]any{"model": "V_3", "rendering_speed": "WARP"}, "rendering_speed", []string{"TURBO", "QUALITY"}},
			{"rendering speed on a legacy model", map[string]any{"model": "V_2", "rendering_speed": "TURBO"}, "rendering_speed", []string{"V_2"}},
			{"quality conflicting with rendering_speed", map[string]any{"model": "V_3", "quality": "high", "rendering_speed": "TURBO"}, "quality", []string{"TURBO"}},
			{"an unknown magic prompt", map[string]any{"model": "V_3", "magic_prompt": "MAYBE"}, "magic_prompt", nil},
			{"prompt_enhancement conflicting with magic_prompt", map[string]any{"model": "V_3", "prompt_enhancement": false, "magic_prompt": "ON"}, "prompt_enhancement", nil},
			{"style codes with a style type", map[string]any{"model": "V_3", "style_codes": []string{"0a1b2c3d"}, "style_type": "GENERAL"}, "style_codes", nil},
			{"an unknown palette preset", map[string]any{"model": "V_3", "color_palette": map[string]any{"name": "NEON"}}, "color_palette", []string{"EMBER"}},
			{"n above the per-request maximum", map[string]any{"model": "V_3", "n": 11}, "n", nil},
			{"steps", map[string]any{"model": "V_3", "steps": 20}, "steps", nil},
			{"image_weight on generate", map[string]any{"model": "V_3", "image_weight": 50}, "image_weight", []string{"generate"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.body["prompt"] = "a lighthouse at dusk"
				resp, body := g.postJSON(t, "/v1/images/generations", tc.body)
				checkError(t, resp, body, 400, tc.param, "", tc.words...)
			})
		}
		t.Run("through the SDK", func(t *testing.T) {
			_, err := g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_2A", Prompt: "x"}, option.WithJSONSet("negative_prompt", "blur"))
			sdkErr(t, err, 400, "negative_prompt", "", "V_2A")
			_, err = g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_3", Prompt: "x", Size: "1280x720"})
			sdkErr(t, err, 400, "size", "", "1312x736")
		})
	})

	t.Run("map_nearest", func(t *testing.T) {
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a fox", "size": "1280x720", "map_nearest": true})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06", adjusted: "size=1280x720->1312x736"})

		resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a fox", "size": "1000x1000", "rendering_speed": "TURBO"},
			"X-Imagegw-Map-Nearest", "true")
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.03", adjusted: "size=1000x1000->1024x1024"})

		// V_1 takes aspect ratios only: a size maps to the nearest ratio.
		resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_1", "prompt": "a fox", "size": "1600x900", "map_nearest": true})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06", adjusted: "size=1600x900->16:9"})

		// The SDK, with the header.
		var raw *http.Response
		res, err := g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_2", Prompt: "a fox", Size: "1024x1000"},
			option.WithHeader("X-Imagegw-Map-Nearest", "true"), option.WithResponseInto(&raw))
		if err != nil {
			sdkErr(t, err, 200, "", "")
		}
		checkImages(t, raw, []byte(res.RawJSON()), want{n: 1, size: "1024x1024", cost: "0.08", adjusted: "size=1024x1000->1024x1024"})
	})

	t.Run("style reference images on generate", func(t *testing.T) {
		ref := dataURI(opaque(t, 32))
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a fox in this style",
			"image": []string{ref, ref}, "rendering_speed": "QUALITY"})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.09"})

		resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a fox", "image": []string{ref, ref, ref, ref, ref}})
		checkError(t, resp, body, 400, "image", "", "at most 4")

		resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_2", "prompt": "a fox", "image": ref})
		checkError(t, resp, body, 400, "image", "", "V_2")

		resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a fox", "image": ref, "style_codes": "0a1b2c3d"})
		checkError(t, resp, body, 400, "style_codes", "")

		// /v1/images/generations is JSON only (as OpenAI's): style reference files are sent as
		// data URIs in "image"; a multipart generate is refused with 415, not misread.
		resp, body = g.postForm(t, "/v1/images/generations", []string{"model", "V_3", "prompt", "a fox"},
			file{"style_reference_images[]", "s.png", opaque(t, 32)})
		checkError(t, resp, body, 415, "", "unsupported_media_type")
	})

	t.Run("edit", func(t *testing.T) {
		edit := func(t *testing.T, p openai.ImageEditParams, w want) {
			t.Helper()
			p.Prompt = "add a moon"
			p.Image = openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "a.png", "image/png")}
			var raw *http.Response
			res, err := g.sdk.Images.Edit(ctx, p, option.WithResponseInto(&raw))
			if err != nil {
				sdkErr(t, err, 200, "", "")
			}
			checkImages(t, raw, []byte(res.RawJSON()), w)
		}
		t.Run("V_2 OpenAI alpha mask", func(t *testing.T) {
			edit(t, openai.ImageEditParams{Model: "V_2", N: openai.Int(2), ResponseFormat: openai.ImageEditParamsResponseFormatB64JSON,
				Mask: openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")}, want{n: 2, size: "64x64", cost: "0.16"})
		})
		t.Run("V_2_TURBO OpenAI alpha mask", func(t *testing.T) {
			edit(t, openai.ImageEditParams{Model: "V_2_TURBO", Mask: openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")},
				want{n: 1, size: "64x64", cost: "0.05"})
		})
		t.Run("V_3 OpenAI alpha mask", func(t *testing.T) {
			edit(t, openai.ImageEditParams{Model: "V_3", Mask: openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")},
				want{n: 1, size: "64x64", cost: "0.06"})
		})
		t.Run("V_3 quality=high", func(t *testing.T) {
			edit(t, openai.ImageEditParams{Model: "V_3", N: openai.Int(2), Quality: openai.ImageEditParamsQualityHigh,
				Mask: openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")}, want{n: 2, size: "64x64", cost: "0.18"})
		})
		t.Run("V_3 quality=low costs the TURBO edit price", func(t *testing.T) {
			edit(t, openai.ImageEditParams{Model: "V_3", Quality: openai.ImageEditParamsQualityLow,
				Mask: openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")}, want{n: 1, size: "64x64", cost: "0.06"})
		})
		t.Run("an all-opaque mask marks nothing to change", func(t *testing.T) {
			for _, model := range []string{"V_2", "V_3"} {
				_, err := g.sdk.Images.Edit(ctx, openai.ImageEditParams{Model: openai.ImageModel(model), Prompt: "add a moon",
					Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "a.png", "image/png")},
					Mask:  openai.File(bytes.NewReader(opaque(t, 64)), "m.png", "image/png")})
				sdkErr(t, err, 400, "mask", "", "transparent", "nothing to change")
			}
		})
		t.Run("a mask of another size", func(t *testing.T) {
			_, err := g.sdk.Images.Edit(ctx, openai.ImageEditParams{Model: "V_3", Prompt: "add a moon",
				Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "a.png", "image/png")},
				Mask:  openai.File(bytes.NewReader(alphaMask(t, 32)), "m.png", "image/png")})
			sdkErr(t, err, 400, "mask", "", "32x32", "64x64")
		})
		t.Run("no mask", func(t *testing.T) {
			_, err := g.sdk.Images.Edit(ctx, openai.ImageEditParams{Model: "V_2", Prompt: "add a moon",
				Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "a.png", "image/png")}})
			sdkErr(t, err, 400, "mask", "")
		})
		t.Run("models without edit", func(t *testing.T) {
			for _, model := range []string{"V_2A", "V_2A_TURBO", "V_1"} {
				_, err := g.sdk.Images.Edit(ctx, openai.ImageEditParams{Model: openai.ImageModel(model), Prompt: "add a moon",
					Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "a.png", "image/png")},
					Mask:  openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")})
				sdkErr(t, err, 400, "model", "", model, "edit")
			}
		})
		t.Run("mask_format=bw with a ready black-and-white mask", func(t *testing.T) {
			for _, tc := range []struct{ model, cost string }{{"V_2", "0.08"}, {"V_3", "0.06"}} {
				resp, body := g.postForm(t, "/v1/images/edits", []string{"model", tc.model, "prompt", "add a moon", "mask_format", "bw"},
					file{"image", "a.png", src}, file{"mask", "m.png", bwMask(t, 64, true)})
				checkImages(t, resp, body, want{n: 1, size: "64x64", cost: tc.cost})
			}
		})
		t.Run("mask_format=bw with an all-white mask", func(t *testing.T) {
			resp, body := g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "mask_format", "bw"},
				file{"image", "a.png", src}, file{"mask", "m.png", bwMask(t, 64, false)})
			checkError(t, resp, body, 400, "mask", "", "all white")
		})
		t.Run("a black-and-white mask without mask_format is an opaque OpenAI mask", func(t *testing.T) {
			resp, body := g.postForm(t, "/v1/images/edits", []string{"model", "V_2", "prompt", "add a moon"},
				file{"image", "a.png", src}, file{"mask", "m.png", bwMask(t, 64, true)})
			checkError(t, resp, body, 400, "mask", "", "mask_format=bw")
		})
		t.Run("an unknown mask_format", func(t *testing.T) {
			resp, body := g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "mask_format", "gray"},
				file{"image", "a.png", src}, file{"mask", "m.png", bwMask(t, 64, true)})
			checkError(t, resp, body, 400, "mask_format", "")
		})
		t.Run("V_3 with a style reference image and a rendering speed", func(t *testing.T) {
			resp, body := g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "rendering_speed", "QUALITY"},
				file{"image", "a.png", src}, file{"mask", "m.png", alphaMask(t, 64)}, file{"style_reference_images[]", "s.png", opaque(t, 32)})
			checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.09"})
		})
	})

	t.Run("remix", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/remix", []string{"model", "V_2", "prompt", "the same harbour at night", "image_weight", "30", "n", "2"},
			file{"image", "a.png", src})
		ib := checkImages(t, resp, body, want{n: 2, size: "1024x1024", cost: "0.16"})
		if ib.Data[0].RevisedPrompt != "Enhanced: the same harbour at night" {
			t.Errorf("revised_prompt %q", ib.Data[0].RevisedPrompt)
		}

		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_1", "prompt", "night", "aspect_ratio", "16:9", "image_weight", "100"},
			file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06"})

		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_2A", "prompt", "night", "size", "1280x720", "seed", "9"},
			file{"image", "a.png", src})
		ib = checkImages(t, resp, body, want{n: 1, size: "1280x720", cost: "0.04"})
		if *ib.Data[0].Seed != 9 {
			t.Errorf("seed %d, want 9", *ib.Data[0].Seed)
		}

		// 3.0 remix: image_weight, rendering speed, a style reference file.
		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_3", "prompt", "night", "image_weight", "80", "rendering_speed", "TURBO", "n", "2"},
			file{"image", "a.png", src}, file{"style_reference_images[]", "s.png", opaque(t, 32)})
		checkImages(t, resp, body, want{n: 2, size: "1024x1024", cost: "0.06"})

		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_3", "prompt", "night", "size", "1312x736"},
			file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06"})

		for _, tc := range []struct {
			name   string
			fields []string
			files  []file
			param  string
		}{
			{"image_weight above 100", []string{"model", "V_3", "prompt", "p", "image_weight", "101"}, []file{{"image", "a.png", src}}, "image_weight"},
			{"image_weight 0", []string{"model", "V_2", "prompt", "p", "image_weight", "0"}, []file{{"image", "a.png", src}}, "image_weight"},
			{"no image", []string{"model", "V_3", "prompt", "p"}, nil, "image"},
			{"no prompt", []string{"model", "V_3"}, []file{{"image", "a.png", src}}, "prompt"},
			{"style reference files on a legacy model", []string{"model", "V_2", "prompt", "p"},
				[]file{{"image", "a.png", src}, {"style_reference_images[]", "s.png", src}}, "style_reference_images"},
			{"two source images", []string{"model", "V_3", "prompt", "p"}, []file{{"image[]", "a.png", src}, {"image[]", "b.png", src}}, "image"},
			{"a mask", []string{"model", "V_3", "prompt", "p"}, []file{{"image", "a.png", src}, {"mask", "m.png", alphaMask(t, 64)}}, "mask"},
			{"seed above Ideogram's range", []string{"model", "V_3", "prompt", "p", "seed", "2147483648"}, []file{{"image", "a.png", src}}, "seed"},
			{"n of 0", []string{"model", "V_2", "prompt", "p", "n", "0"}, []file{{"image", "a.png", src}}, "n"},
			// Ideogram takes JPEG, PNG and WebP; the front door also reads GIF, which Ideogram refuses.
			{"a GIF source image", []string{"model", "V_3", "prompt", "p"}, []file{{"image", "a.gif", gifImage(t, 64)}}, "image"},
			{"negative_prompt on V_2A", []string{"model", "V_2A", "prompt", "p", "negative_prompt", "x"}, []file{{"image", "a.png", src}}, "negative_prompt"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := g.postForm(t, "/v1/images/remix", tc.fields, tc.files...)
				checkError(t, resp, body, 400, tc.param, "")
			})
		}
	})

	t.Run("variations without a prompt are remixes", func(t *testing.T) {
		for _, tc := range []struct {
			model string
			n     int64
			cost  string
		}{{"V_2", 2, "0.16"}, {"V_1_TURBO", 1, "0.02"}, {"V_3", 2, "0.12"}} {
			t.Run(tc.model, func(t *testing.T) {
				var raw *http.Response
				res, err := g.sdk.Images.NewVariation(ctx, openai.ImageNewVariationParams{Model: openai.ImageModel(tc.model), N: openai.Int(tc.n),
					Image: openai.File(bytes.NewReader(src), "a.png", "image/png")}, option.WithResponseInto(&raw))
				if err != nil {
					sdkErr(t, err, 200, "", "")
				}
				ib := checkImages(t, raw, []byte(res.RawJSON()), want{n: int(tc.n), size: "1024x1024", cost: tc.cost})
				if !strings.Contains(ib.Data[0].RevisedPrompt, "A variation of the provided image") {
					t.Errorf("revised_prompt %q: the variation was not sent as a remix with the default prompt", ib.Data[0].RevisedPrompt)
				}
			})
		}
		// A variation with image_weight, over plain HTTP.
		resp, body := g.postForm(t, "/v1/images/variations", []string{"model", "V_3", "image_weight", "20", "rendering_speed", "QUALITY"},
			file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.09"})
	})

	t.Run("upscale", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/upscale", []string{"model", "V_2", "resemblance", "60", "detail", "40", "response_format", "b64_json"},
			file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "128x128", cost: "0.06"})

		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_3", "prompt", "crisper", "resemblance", "100", "detail", "1", "seed", "5"},
			file{"image", "a.png", src})
		ib := checkImages(t, resp, body, want{n: 1, size: "128x128", cost: "0.06"})
		if *ib.Data[0].Seed != 5 {
			t.Errorf("seed %d", *ib.Data[0].Seed)
		}

		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_1", "n", "2"}, file{"image", "a.png", opaque(t, 48)})
		checkImages(t, resp, body, want{n: 2, size: "96x96", cost: "0.12"})

		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_3", "resemblance", "0"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "resemblance", "", "1 and 100")
		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_3", "detail", "101"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "detail", "", "1 and 100")
		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_3", "rendering_speed", "TURBO"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "rendering_speed", "", "upscale")
		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_3"})
		checkError(t, resp, body, 400, "image", "")
	})

	t.Run("describe", func(t *testing.T) {
		for _, tc := range []struct {
			model   string
			fields  []string
			version string
		}{{"V_3", nil, "V_3"}, {"V_1", []string{"describe_model_version", "V_2"}, "V_2"}, {"V_2", nil, "V_2"}, {"V_2A_TURBO", nil, "V_2"}} {
			resp, body := g.postForm(t, "/v1/images/describe", append([]string{"model", tc.model}, tc.fields...), file{"image", "a.png", src})
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			var d struct {
				Created      *int64 `json:"created"`
				Descriptions []struct {
					Text string `json:"text"`
				} `json:"descriptions"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("not {\"created\",\"descriptions\":[{\"text\"}]}: %v: %s", err, body)
			}
			if d.Created == nil || time.Since(time.Unix(*d.Created, 0)).Abs() > time.Hour {
				t.Errorf("created: %s", body)
			}
			if len(d.Descriptions) != 1 || !strings.Contains(d.Descriptions[0].Text, "64x64") ||
				!strings.Contains(d.Descriptions[0].Text, "described by "+tc.version) {
				t.Errorf("descriptions: %s", body)
			}
			checkHeader(t, resp, "X-Imagegw-Cost", "0.01")
			checkHeader(t, resp, "X-Imagegw-Partial", "")
		}
		resp, body := g.postForm(t, "/v1/images/describe", []string{"model", "V_3", "prompt", "what is it"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "prompt", "")
		resp, body = g.postForm(t, "/v1/images/describe", []string{"model", "V_3", "describe_model_version", "V_9"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "describe_model_version", "")
		resp, body = g.postForm(t, "/v1/images/describe", []string{"model", "V_3", "seed", "3"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "seed", "")
	})

	t.Run("reframe", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/reframe", []string{"model", "V_3", "size", "1312x736"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06"})

		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_3", "size", "800x1280", "rendering_speed", "QUALITY", "n", "2", "response_format", "b64_json"},
			file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 2, size: "800x1280", cost: "0.18"})

		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_3", "resolution", "1536x640", "rendering_speed", "TURBO"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1536x640", cost: "0.06"})

		// By aspect ratio: the model's resolution of that ratio closest in area to the source
		// (64x64 here: the smallest 16:9 one), reported as an adjustment.
		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_3", "aspect_ratio", "16:9"}, file{"image", "a.png", src})
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("X-Imagegw-Adjusted"), "aspect_ratio=16:9->") {
			t.Fatalf("reframe by aspect ratio: %d adjusted=%q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Adjusted"), body)
		}
		got, _ := providers.ParseSize(strings.TrimPrefix(resp.Header.Get("X-Imagegw-Adjusted"), "aspect_ratio=16:9->"))
		if r := float64(got.W) / float64(got.H); r < 1.7 || r > 1.85 {
			t.Errorf("16:9 mapped to %s", got)
		}
		checkImages(t, resp, body, want{n: 1, size: got.String(), cost: "0.06", adjusted: "aspect_ratio=16:9->" + got.String()})

		// Legacy reframe, with a size only the legacy list has; priced at the model's generate price.
		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_2", "size", "1280x720"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1280x720", cost: "0.08"})
		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_2A_TURBO", "size", "1024x768", "style_type", "RENDER_3D"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1024x768", cost: "0.025"})

		for _, tc := range []struct {
			name   string
			fields []string
			param  string
		}{
			{"a legacy-only size on V_3", []string{"model", "V_3", "size", "1280x720"}, "size"},
			{"no size", []string{"model", "V_3"}, "size"},
			{"a malformed aspect ratio", []string{"model", "V_3", "aspect_ratio", "16:0"}, "aspect_ratio"},
			{"a prompt", []string{"model", "V_3", "size", "1312x736", "prompt", "wider"}, "prompt"},
			{"V_1 has no reframe", []string{"model", "V_1", "size", "1024x1024"}, "model"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := g.postForm(t, "/v1/images/reframe", tc.fields, file{"image", "a.png", src})
				checkError(t, resp, body, 400, tc.param, "")
			})
		}
	})

	t.Run("replace-background", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach at noon"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.06"})

		resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach", "rendering_speed", "QUALITY", "n", "2",
			"magic_prompt", "OFF", "style_preset", "WATERCOLOR", "response_format", "b64_json"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 2, size: "64x64", cost: "0.18"})

		resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach", "rendering_speed", "TURBO"},
			file{"image", "a.png", src}, file{"style_reference_images[]", "s.png", opaque(t, 32)})
		checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.06"})

		for _, model := range []string{"V_2", "V_2_TURBO", "V_2A", "V_1"} {
			resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", model, "prompt", "a beach"}, file{"image", "a.png", src})
			checkError(t, resp, body, 400, "model", "", model, "replace_background")
		}
		resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "prompt", "")
		resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach", "style_type", "GENERAL"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "style_type", "")
	})

	t.Run("safety", func(t *testing.T) {
		unsafe := "an " + ideogramfake.UnsafeTrigger + " harbour"
		t.Run("some images withheld", func(t *testing.T) {
			var raw *http.Response
			res, err := g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_3", Prompt: unsafe, N: openai.Int(2)},
				option.WithJSONSet("rendering_speed", "TURBO"), option.WithResponseInto(&raw))
			if err != nil {
				sdkErr(t, err, 200, "", "")
			}
			checkImages(t, raw, []byte(res.RawJSON()), want{n: 1, size: "1024x1024", cost: "0.03", partial: "requested=2; delivered=1"})

			resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_2", "prompt": unsafe, "n": 3})
			checkImages(t, resp, body, want{n: 2, size: "1024x1024", cost: "0.16", partial: "requested=3; delivered=2"})

			// Fanned out into 8+2: each call withholds its first image.
			resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": unsafe, "n": 10})
			checkImages(t, resp, body, want{n: 8, size: "1024x1024", cost: "0.48", partial: "requested=10; delivered=8"})

			// Fanned out into 8+1: the one-image call has every image withheld (a content-policy
			// failure of that call), the other delivers 7 of 8.
			resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": unsafe, "n": 9, "quality": "low"})
			checkImages(t, resp, body, want{n: 7, size: "1024x1024", cost: "0.21", partial: "requested=9; delivered=7"})

			resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_3", "prompt", unsafe, "n", "2", "rendering_speed", "QUALITY"},
				file{"image", "a.png", src})
			checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.09", partial: "requested=2; delivered=1"})
		})
		t.Run("every image withheld", func(t *testing.T) {
			resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": unsafe})
			checkError(t, resp, body, 400, "", "content_policy_violation")
			checkHeader(t, resp, "X-Imagegw-Cost", "0")

			resp, body = g.postForm(t, "/v1/images/edits", []string{"model", "V_2", "prompt", unsafe},
				file{"image", "a.png", src}, file{"mask", "m.png", alphaMask(t, 64)})
			checkError(t, resp, body, 400, "", "content_policy_violation")
			checkHeader(t, resp, "X-Imagegw-Cost", "0")

			_, err := g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_1", Prompt: unsafe})
			sdkErr(t, err, 400, "", "content_policy_violation")
		})
		t.Run("Ideogram's 422 safety answer", func(t *testing.T) {
			forbidden := "a " + ideogramfake.RejectTrigger + " symbol"
			resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": forbidden, "n": 2})
			msg := checkError(t, resp, body, 400, "", "content_policy_violation", "safety")
			if strings.Contains(msg, ideogramfake.SafetyMessage) {
				t.Errorf("Ideogram's own words reached the client: %q", msg)
			}
			checkHeader(t, resp, "X-Imagegw-Cost", "0")

			for _, tc := range []struct {
				path   string
				fields []string
				files  []file
			}{
				{"/v1/images/remix", []string{"model", "V_2", "prompt", forbidden}, []file{{"image", "a.png", src}}},
				{"/v1/images/edits", []string{"model", "V_3", "prompt", forbidden}, []file{{"image", "a.png", src}, {"mask", "m.png", alphaMask(t, 64)}}},
				{"/v1/images/replace-background", []string{"model", "V_3", "prompt", forbidden}, []file{{"image", "a.png", src}}},
				{"/v1/images/upscale", []string{"model", "V_2", "prompt", forbidden}, []file{{"image", "a.png", src}}},
			} {
				resp, body := g.postForm(t, tc.path, tc.fields, tc.files...)
				checkError(t, resp, body, 400, "", "content_policy_violation")
			}

			_, err := g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_2", Prompt: forbidden})
			sdkErr(t, err, 400, "", "content_policy_violation")
		})
	})
}

// TestIdeogramAiHubMixLayout runs gateways whose Ideogram channel is configured with the AiHubMix
// layout (paths under /ideogram) against the simulator, which serves the fake under /ideogram just
// as AiHubMix does.
func TestIdeogramAiHubMixLayout(t *testing.T) {
	env, f := startSimOwningIdeogram(t)
	simBase := strings.TrimSuffix(env["IDEOGRAM_BASE_URL"], "/ideogram")
	if simBase == env["IDEOGRAM_BASE_URL"] {
		t.Fatalf("IDEOGRAM_BASE_URL %q is not under /ideogram", env["IDEOGRAM_BASE_URL"])
	}
	withLayout := func(base, layout string) gatewaytest.Options {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		e["IDEOGRAM_BASE_URL"] = base
		return gatewaytest.Options{Env: e, Configure: func(c *config.Config) {
			for i := range c.Providers {
				if c.Providers[i].Name == "ideogram" {
					c.Providers[i].Options = map[string]string{"layout": layout}
					return
				}
			}
			t.Fatalf("no ideogram channel in %+v", c.Providers)
		}}
	}
	exercise := func(t *testing.T, g *ideoGW) {
		ctx := context.Background()
		var raw *http.Response
		res, err := g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_3", Prompt: "a lighthouse", N: openai.Int(2),
			ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON}, option.WithJSONSet("rendering_speed", "TURBO"), option.WithResponseInto(&raw))
		if err != nil {
			sdkErr(t, err, 200, "", "")
		}
		checkImages(t, raw, []byte(res.RawJSON()), want{n: 2, size: "1024x1024", cost: "0.06"})

		res, err = g.sdk.Images.Generate(ctx, openai.ImageGenerateParams{Model: "V_2", Prompt: "a lighthouse", Size: "1280x720"}, option.WithResponseInto(&raw))
		if err != nil {
			sdkErr(t, err, 200, "", "")
		}
		checkImages(t, raw, []byte(res.RawJSON()), want{n: 1, size: "1280x720", cost: "0.08"})

		res, err = g.sdk.Images.Edit(ctx, openai.ImageEditParams{Model: "V_2", Prompt: "add a moon",
			Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(opaque(t, 64)), "a.png", "image/png")},
			Mask:  openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")}, option.WithResponseInto(&raw))
		if err != nil {
			sdkErr(t, err, 200, "", "")
		}
		checkImages(t, raw, []byte(res.RawJSON()), want{n: 1, size: "64x64", cost: "0.08"})

		resp, body := g.postForm(t, "/v1/images/upscale", []string{"model", "V_3", "resemblance", "50"}, file{"image", "a.png", opaque(t, 64)})
		checkImages(t, resp, body, want{n: 1, size: "128x128", cost: "0.06"})
		resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach"}, file{"image", "a.png", opaque(t, 64)})
		checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.06"})
		resp, body = g.postForm(t, "/v1/images/describe", []string{"model", "V_3"}, file{"image", "a.png", opaque(t, 64)})
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"descriptions":[{"text":`)) {
			t.Fatalf("describe: %d %s", resp.StatusCode, body)
		}
		c := lastUpstream(t, f)
		expectEqual(t, "request URI", c.uri, "/ideogram/describe")
		expectEqual(t, "Api-Key", c.header.Get("Api-Key"), ideogramfake.DefaultKey)
		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_3", "size", "1312x736"}, file{"image", "a.png", opaque(t, 64)})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06"})
		expectEqual(t, "request URI", lastUpstream(t, f).uri, "/ideogram/v1/ideogram-v3/reframe")
	}

	t.Run("base URL with the /ideogram prefix", func(t *testing.T) {
		exercise(t, startIdeogramGateway(t, withLayout(simBase+"/ideogram", "aihubmix")))
	})
	t.Run("bare host: the layout adds /ideogram", func(t *testing.T) {
		exercise(t, startIdeogramGateway(t, withLayout(simBase, "AiHubMix")))
	})
	t.Run("bare host with the official layout misses the prefix", func(t *testing.T) {
		g := startIdeogramGateway(t, withLayout(simBase, "official"))
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a lighthouse"})
		checkError(t, resp, body, 502, "", "upstream_unavailable", "layout")
		checkHeader(t, resp, "X-Imagegw-Cost", "0")
	})
}

// startSimOwningIdeogram serves the simulator with an Ideogram fake the test holds, so it can look
// at what the gateway sent upstream. Every other provider is the simulator's own.
func startSimOwningIdeogram(t *testing.T) (map[string]string, *ideogramfake.Fake) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	f := ideogramfake.New(ideogramfake.Options{PublicURL: public + "/ideogram"})
	mux := http.NewServeMux()
	mux.Handle("/", Handler(public, 0))
	mux.Handle("/ideogram/", http.StripPrefix("/ideogram", f)) // more specific than the simulator's
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	env := map[string]string{}
	for _, kv := range Env(ln.Addr().String()) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env, f
}

// upstreamCall is the last call the fake received, parsed.
type upstreamCall struct {
	path, uri string
	header    http.Header
	json      map[string]any      // a JSON body (legacy /generate: {"image_request": {...}})
	fields    map[string][]string // multipart text fields
	files     map[string][][]byte // multipart files
}

func lastUpstream(t *testing.T, f *ideogramfake.Fake) upstreamCall {
	t.Helper()
	r := f.LastRequest()
	c := upstreamCall{path: r.Path, uri: r.RequestURI, header: r.Header}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("upstream Content-Type %q: %v", r.Header.Get("Content-Type"), err)
	}
	switch mt {
	case "application/json":
		if err := json.Unmarshal(r.Body, &c.json); err != nil {
			t.Fatalf("upstream JSON: %v", err)
		}
	case "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"]).ReadForm(64 << 20)
		if err != nil {
			t.Fatalf("upstream multipart: %v", err)
		}
		c.fields, c.files = form.Value, map[string][][]byte{}
		for name, fhs := range form.File {
			for _, fh := range fhs {
				rc, err := fh.Open()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				c.files[name] = append(c.files[name], b)
			}
		}
	default:
		t.Fatalf("upstream Content-Type %q", mt)
	}
	return c
}

// field returns the single multipart text field name ("" when absent).
func (c upstreamCall) field(t *testing.T, name string) string {
	t.Helper()
	switch vs := c.fields[name]; len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	default:
		t.Fatalf("upstream field %s sent %d times", name, len(vs))
		return ""
	}
}

// imageRequest returns the legacy image_request: the JSON body's, or a multipart part's JSON text.
func (c upstreamCall) imageRequest(t *testing.T) map[string]any {
	t.Helper()
	if c.json != nil {
		ir, ok := c.json["image_request"].(map[string]any)
		if !ok {
			t.Fatalf("no image_request object in %v", c.json)
		}
		return ir
	}
	var ir map[string]any
	if err := json.Unmarshal([]byte(c.field(t, "image_request")), &ir); err != nil {
		t.Fatalf("image_request part: %v", err)
	}
	return ir
}

func expectEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// checkBWMask checks a mask sent upstream: an n×n PNG of only black and white pixels, black
// exactly in the top-left quadrant (the area to change).
func checkBWMask(t *testing.T, b []byte, n int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("upstream mask is not a PNG: %v", err)
	}
	if s := img.Bounds().Size(); s.X != n || s.Y != n {
		t.Fatalf("upstream mask is %v, want %dx%d", s, n, n)
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			want := uint8(0xff)
			if x < n/2 && y < n/2 {
				want = 0
			}
			if c.R != want || c.G != want || c.B != want || c.A != 0xff {
				t.Fatalf("upstream mask pixel (%d,%d) = %v, want gray %d", x, y, c, want)
			}
		}
	}
}

// TestIdeogramWhatTheFakeReceives checks, for each operation, what the gateway sent Ideogram: the
// endpoint of the right API generation, the wire spelling of every knob and the converted mask.
func TestIdeogramWhatTheFakeReceives(t *testing.T) {
	env, f := startSimOwningIdeogram(t)
	g := startIdeogramGateway(t, gatewaytest.Options{Env: env})
	ctx := context.Background()
	src := opaque(t, 64)

	generate := func(t *testing.T, p openai.ImageGenerateParams, extra map[string]any) {
		t.Helper()
		if p.Prompt == "" {
			p.Prompt = "a lighthouse"
		}
		var opts []option.RequestOption
		for k, v := range extra {
			opts = append(opts, option.WithJSONSet(k, v))
		}
		if _, err := g.sdk.Images.Generate(ctx, p, opts...); err != nil {
			sdkErr(t, err, 200, "", "")
		}
	}

	t.Run("auth header", func(t *testing.T) {
		generate(t, openai.ImageGenerateParams{Model: "V_3"}, nil)
		c := lastUpstream(t, f)
		expectEqual(t, "Api-Key", c.header.Get("Api-Key"), ideogramfake.DefaultKey)
		if a := c.header.Get("Authorization"); a != "" {
			t.Errorf("an Authorization header went upstream: %q", a)
		}
	})
	t.Run("V_3 generate: quality=high is rendering_speed QUALITY", func(t *testing.T) {
		generate(t, openai.ImageGenerateParams{Model: "V_3", N: openai.Int(2), Quality: openai.ImageGenerateParamsQualityHigh},
			map[string]any{"prompt_enhancement": true, "negative_prompt": "fog", "aspect_ratio": "16:9", "style_type": "realistic"})
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/v1/ideogram-v3/generate")
		for name, v := range map[string]string{"rendering_speed": "QUALITY", "magic_prompt": "ON", "negative_prompt": "fog", "seed": "",
			"aspect_ratio": "16x9", "num_images": "2", "style_type": "REALISTIC", "prompt": "a lighthouse", "model": "", "resolution": ""} {
			expectEqual(t, name, c.field(t, name), v)
		}
	})
	t.Run("V_3 generate: size is a 3.0 resolution", func(t *testing.T) {
		generate(t, openai.ImageGenerateParams{Model: "V_3", Size: "800x1280"}, map[string]any{"rendering_speed": "TURBO"})
		c := lastUpstream(t, f)
		expectEqual(t, "resolution", c.field(t, "resolution"), "800x1280")
		expectEqual(t, "rendering_speed", c.field(t, "rendering_speed"), "TURBO")
	})
	t.Run("V_3 generate: style reference images", func(t *testing.T) {
		ref := dataURI(opaque(t, 32))
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a fox", "image": []string{ref, ref}})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.06"})
		c := lastUpstream(t, f)
		expectEqual(t, "style_reference_images", len(c.files["style_reference_images"]), 2)
		expectEqual(t, "image files", len(c.files["image"]), 0)
	})
	t.Run("V_2 generate: image_request with RESOLUTION_W_H", func(t *testing.T) {
		generate(t, openai.ImageGenerateParams{Model: "V_2", Size: "1280x720"},
			map[string]any{"magic_prompt": "OFF", "negative_prompt": "text", "color_palette": "ember"})
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/generate")
		ir := c.imageRequest(t)
		expectEqual(t, "model", ir["model"], "V_2")
		expectEqual(t, "resolution", ir["resolution"], "RESOLUTION_1280_720")
		expectEqual(t, "magic_prompt_option", ir["magic_prompt_option"], "OFF")
		expectEqual(t, "negative_prompt", ir["negative_prompt"], "text")
		expectEqual(t, "color_palette", ir["color_palette"], map[string]any{"name": "EMBER"})
	})
	t.Run("V_1 generate: ASPECT_W_H", func(t *testing.T) {
		generate(t, openai.ImageGenerateParams{Model: "V_1_TURBO"}, map[string]any{"aspect_ratio": "16:9"})
		ir := lastUpstream(t, f).imageRequest(t)
		expectEqual(t, "model", ir["model"], "V_1_TURBO")
		expectEqual(t, "aspect_ratio", ir["aspect_ratio"], "ASPECT_16_9")
		if _, ok := ir["resolution"]; ok {
			t.Errorf("V_1 got a resolution: %v", ir)
		}
	})
	t.Run("edit: the OpenAI mask becomes a black-and-white mask", func(t *testing.T) {
		for _, tc := range []struct{ model, path, image string }{{"V_2", "/edit", "image_file"}, {"V_3", "/v1/ideogram-v3/edit", "image"}} {
			_, err := g.sdk.Images.Edit(ctx, openai.ImageEditParams{Model: openai.ImageModel(tc.model), Prompt: "add a moon",
				Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "a.png", "image/png")},
				Mask:  openai.File(bytes.NewReader(alphaMask(t, 64)), "m.png", "image/png")})
			if err != nil {
				sdkErr(t, err, 200, "", "")
			}
			c := lastUpstream(t, f)
			expectEqual(t, tc.model+" path", c.path, tc.path)
			if len(c.files[tc.image]) != 1 || !bytes.Equal(c.files[tc.image][0], src) {
				t.Errorf("%s: the source image did not reach %s unchanged", tc.model, tc.image)
			}
			if len(c.files["mask"]) != 1 {
				t.Fatalf("%s: %d masks", tc.model, len(c.files["mask"]))
			}
			checkBWMask(t, c.files["mask"][0], 64)
		}
		// mask_format=bw: a ready mask arrives as the same black-and-white mask.
		resp, body := g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "mask_format", "bw", "quality", "high"},
			file{"image", "a.png", src}, file{"mask", "m.png", bwMask(t, 64, true)})
		checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.09"})
		c := lastUpstream(t, f)
		checkBWMask(t, c.files["mask"][0], 64)
		expectEqual(t, "rendering_speed", c.field(t, "rendering_speed"), "QUALITY")
		expectEqual(t, "mask_format", c.field(t, "mask_format"), "")
	})
	t.Run("variation: a legacy remix with the default prompt", func(t *testing.T) {
		if _, err := g.sdk.Images.NewVariation(ctx, openai.ImageNewVariationParams{Model: "V_2A",
			Image: openai.File(bytes.NewReader(src), "a.png", "image/png")}); err != nil {
			sdkErr(t, err, 200, "", "")
		}
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/remix")
		ir := c.imageRequest(t)
		expectEqual(t, "model", ir["model"], "V_2A")
		if p, _ := ir["prompt"].(string); !strings.HasPrefix(p, "A variation of the provided image") {
			t.Errorf("prompt %q", p)
		}
		expectEqual(t, "image_file", len(c.files["image_file"]), 1)
	})
	t.Run("remix: image_weight and a style reference on 3.0", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/remix", []string{"model", "V_3", "prompt", "night", "image_weight", "80", "quality", "low"},
			file{"image", "a.png", src}, file{"style_reference_images[]", "s.png", opaque(t, 32)})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.03"})
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/v1/ideogram-v3/remix")
		expectEqual(t, "image_weight", c.field(t, "image_weight"), "80")
		expectEqual(t, "rendering_speed", c.field(t, "rendering_speed"), "TURBO")
		expectEqual(t, "image", len(c.files["image"]), 1)
		expectEqual(t, "style_reference_images", len(c.files["style_reference_images"]), 1)

		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_2", "prompt", "night", "image_weight", "30"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.08"})
		ir := lastUpstream(t, f).imageRequest(t)
		expectEqual(t, "image_weight", ir["image_weight"], 30)
	})
	t.Run("upscale: image_request with resemblance and detail", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/upscale", []string{"model", "V_3", "resemblance", "60", "detail", "40"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "128x128", cost: "0.06"})
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/upscale")
		ir := c.imageRequest(t)
		expectEqual(t, "resemblance", ir["resemblance"], 60)
		expectEqual(t, "detail", ir["detail"], 40)
	})
	t.Run("describe", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/describe", []string{"model", "V_2", "describe_model_version", "V_3"}, file{"image", "a.png", src})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/describe")
		expectEqual(t, "describe_model_version", c.field(t, "describe_model_version"), "V_3")
		expectEqual(t, "image_file", len(c.files["image_file"]), 1)
	})
	t.Run("reframe", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/reframe", []string{"model", "V_3", "size", "1312x736"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1312x736", cost: "0.06"})
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/v1/ideogram-v3/reframe")
		expectEqual(t, "resolution", c.field(t, "resolution"), "1312x736")
		expectEqual(t, "prompt", c.field(t, "prompt"), "")

		resp, body = g.postForm(t, "/v1/images/reframe", []string{"model", "V_2_TURBO", "size", "1280x720"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1280x720", cost: "0.05"})
		c = lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/reframe")
		expectEqual(t, "resolution", c.field(t, "resolution"), "RESOLUTION_1280_720")
		expectEqual(t, "model", c.field(t, "model"), "V_2_TURBO")
	})
	t.Run("replace background", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach", "rendering_speed", "TURBO"},
			file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.06"})
		c := lastUpstream(t, f)
		expectEqual(t, "path", c.path, "/v1/ideogram-v3/replace-background")
		expectEqual(t, "prompt", c.field(t, "prompt"), "a beach")
		expectEqual(t, "rendering_speed", c.field(t, "rendering_speed"), "TURBO")
	})
	t.Run("multipart knobs in Ideogram's wire form", func(t *testing.T) {
		resp, body := g.postForm(t, "/v1/images/remix", []string{"model", "V_3", "prompt", "night", "color_palette", `{"name":"ember"}`,
			"style_codes", "0a1b2c3d, 11223344", "magic_prompt", "auto", "aspect_ratio", "4:5", "n", "3"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 3, size: "896x1120", cost: "0.18"})
		c := lastUpstream(t, f)
		expectEqual(t, "color_palette", c.field(t, "color_palette"), `{"name":"EMBER"}`)
		expectEqual(t, "style_codes", c.fields["style_codes"], []string{"0a1b2c3d", "11223344"})
		expectEqual(t, "magic_prompt", c.field(t, "magic_prompt"), "AUTO")
		expectEqual(t, "aspect_ratio", c.field(t, "aspect_ratio"), "4x5")
		expectEqual(t, "seed", c.field(t, "seed"), "")
		expectEqual(t, "num_images", c.field(t, "num_images"), "3")

		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_2", "prompt", "night", "color_palette",
			`{"members":[{"color_hex":"#00ff00","color_weight":0.4}]}`, "style_type", "fiction", "seed", "12"}, file{"image", "a.png", src})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.08"})
		ir := lastUpstream(t, f).imageRequest(t)
		expectEqual(t, "color_palette", ir["color_palette"], map[string]any{"members": []any{map[string]any{"color_hex": "#00ff00", "color_weight": 0.4}}})
		expectEqual(t, "style_type", ir["style_type"], "FICTION")
		expectEqual(t, "seed", ir["seed"], 12)
	})
	t.Run("upstream errors become the shared kinds in OpenAI's envelope", func(t *testing.T) {
		gen := map[string]any{"model": "V_3", "prompt": "a lighthouse"}
		// A 429 with Retry-After cools its channel for that model for that long (internal/router):
		// it is asked of a model the later steps do not use.
		f.Script.Push(providertest.Fault{Status: 429, Body: `{"error":"Too many requests in flight."}`, Header: http.Header{"Retry-After": {"7"}}})
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_2_TURBO", "prompt": "a lighthouse"})
		checkError(t, resp, body, 429, "", "rate_limit_exceeded")
		checkHeader(t, resp, "Retry-After", "7")
		checkHeader(t, resp, "X-Imagegw-Cost", "0")

		f.Script.Push(providertest.Fault{Status: 500, Body: `{"error":"internal secret detail"}`})
		resp, body = g.postJSON(t, "/v1/images/generations", gen)
		if msg := checkError(t, resp, body, 502, "", "upstream_unavailable"); strings.Contains(msg, "secret detail") {
			t.Errorf("the upstream's own words reached the client: %q", msg)
		}
		checkHeader(t, resp, "X-Imagegw-Cost", "0")

		f.Script.Push(providertest.Fault{HTML: true, Status: 503})
		resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_2", "prompt", "night"}, file{"image", "a.png", src})
		checkError(t, resp, body, 502, "", "upstream_unavailable")

		f.Script.Push(providertest.Fault{Malformed: true})
		resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_2"}, file{"image", "a.png", src})
		checkError(t, resp, body, 502, "", "upstream_bad_response")

		f.Script.Push(providertest.Fault{Status: 400, Body: `{"error":"image_request.seed: 99 is not between 0 and 10"}`})
		resp, body = g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_2", "prompt": "a lighthouse"})
		checkError(t, resp, body, 400, "seed", "")

		f.Script.Push(providertest.Fault{Status: 422, Body: `{"error":"` + ideogramfake.SafetyMessage + `"}`})
		resp, body = g.postForm(t, "/v1/images/describe", []string{"model", "V_3"}, file{"image", "a.png", src})
		checkError(t, resp, body, 400, "", "content_policy_violation", "image")
		checkHeader(t, resp, "X-Imagegw-Cost", "0")
	})
	t.Run("a refused request never reaches Ideogram", func(t *testing.T) {
		before := f.Calls()
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_2A", "prompt": "x", "negative_prompt": "y"})
		checkError(t, resp, body, 400, "negative_prompt", "")
		resp, body = g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "x"}, file{"image", "a.png", src}, file{"mask", "m.png", src})
		checkError(t, resp, body, 400, "mask", "")
		if n := f.Calls(); n != before {
			t.Errorf("%d refused requests reached the fake", n-before)
		}
	})
}

// TestIdeogramUpstreamCredentialRefused: a wrong Ideogram key is refused upstream with 401 (and 403
// on remix and upscale); the client gets 502 upstream_auth_failed with x-should-retry: false, and
// never the key.
func TestIdeogramUpstreamCredentialRefused(t *testing.T) {
	env := startSim(t)
	const wrong = "sk-wrong-ideogram-key"
	env["IDEOGRAM_API_KEY"] = wrong
	g := startIdeogramGateway(t, gatewaytest.Options{Env: env})
	src := opaque(t, 64)
	check := func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		checkError(t, resp, body, 502, "", "upstream_auth_failed")
		checkHeader(t, resp, "x-should-retry", "false")
		checkHeader(t, resp, "X-Imagegw-Cost", "0")
		if bytes.Contains(body, []byte(wrong)) {
			t.Errorf("the upstream key reached the client: %s", body)
		}
	}
	resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a lighthouse"})
	check(t, resp, body)
	resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_2", "prompt", "night"}, file{"image", "a.png", src})
	check(t, resp, body) // 403 upstream
	resp, body = g.postForm(t, "/v1/images/upscale", []string{"model", "V_3"}, file{"image", "a.png", src})
	check(t, resp, body) // 403 upstream
	resp, body = g.postForm(t, "/v1/images/describe", []string{"model", "V_3"}, file{"image", "a.png", src})
	check(t, resp, body)
}

// TestIdeogramEditSizeEqualToTheSource: an edit (and a background replacement) keeps the source
// image's size, and the adapter accepts a size equal to it ("a size equal to it asks for nothing
// else", parseKnobs). The front door refuses it first whenever the source's size is not in the
// model's generation list, with a message listing generation sizes that an edit can never produce.
func TestIdeogramEditSizeEqualToTheSource(t *testing.T) {
	g := startIdeogramGateway(t, gatewaytest.Options{Env: startSim(t)})
	// A source whose size is in the list works.
	big := opaque(t, 1024)
	resp, body := g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "size", "1024x1024"},
		file{"image", "a.png", big}, file{"mask", "m.png", alphaMask(t, 1024)})
	checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.06"})
	// A size other than the source's is refused, naming size.
	src := opaque(t, 64)
	resp, body = g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "size", "1024x1024"},
		file{"image", "a.png", src}, file{"mask", "m.png", alphaMask(t, 64)})
	checkError(t, resp, body, 400, "size", "", "source image's size")

	resp, body = g.postForm(t, "/v1/images/edits", []string{"model", "V_3", "prompt", "add a moon", "size", "64x64"},
		file{"image", "a.png", src}, file{"mask", "m.png", alphaMask(t, 64)})
	checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.06"})
	resp, body = g.postForm(t, "/v1/images/replace-background", []string{"model", "V_3", "prompt", "a beach", "size", "64x64"},
		file{"image", "a.png", src})
	checkImages(t, resp, body, want{n: 1, size: "64x64", cost: "0.06"})
}

// TestIdeogramRenderingSpeedIsBilledAtTheSpeedSent: the adapter trims and upper-cases
// rendering_speed before sending it, so " QUALITY " (or "QUALITY\n" from a form) renders at QUALITY
// upstream; the price must be the QUALITY price too.
func TestIdeogramRenderingSpeedIsBilledAtTheSpeedSent(t *testing.T) {
	env, f := startSimOwningIdeogram(t)
	g := startIdeogramGateway(t, gatewaytest.Options{Env: env})
	resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a lighthouse", "rendering_speed": "quality"})
	checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.09"})
	expectEqual(t, "rendering_speed sent", lastUpstream(t, f).field(t, "rendering_speed"), "QUALITY")

	for _, tc := range []struct{ speed, sent, cost string }{{" QUALITY ", "QUALITY", "0.09"}, {"TURBO ", "TURBO", "0.03"}} {
		resp, body := g.postJSON(t, "/v1/images/generations", map[string]any{"model": "V_3", "prompt": "a lighthouse", "rendering_speed": tc.speed})
		checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: tc.cost})
		expectEqual(t, "rendering_speed sent", lastUpstream(t, f).field(t, "rendering_speed"), tc.sent)
	}
	resp, body = g.postForm(t, "/v1/images/remix", []string{"model", "V_3", "prompt", "night", "rendering_speed", "QUALITY\n"},
		file{"image", "a.png", opaque(t, 64)})
	checkImages(t, resp, body, want{n: 1, size: "1024x1024", cost: "0.09"})
}
