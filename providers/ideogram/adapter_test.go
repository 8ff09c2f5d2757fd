package ideogram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/ideogram"
	"github.com/imagegw/imagegw/providers/ideogram/fake"
)

const testKey = "sk-test-ideogram-0123456789"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	ad    *ideogram.Adapter
	fake  *fake.Fake
	srv   *httptest.Server
	clock *clock
}

// newEnv starts the fake (under /ideogram when aihubmix is set) and an adapter pointed at it.
func newEnv(t *testing.T, aihubmix bool, fo fake.Options, opts map[string]string) *env {
	t.Helper()
	c := &clock{t: time.Now()}
	if fo.APIKey == "" {
		fo.APIKey = testKey
	}
	if fo.Now == nil {
		fo.Now = c.Now
	}
	f := fake.New(fo)
	var h http.Handler = f
	if aihubmix {
		mux := http.NewServeMux()
		mux.Handle("/ideogram/", http.StripPrefix("/ideogram", f))
		h = mux
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := providers.Config{BaseURL: srv.URL, APIKey: testKey, HTTP: srv.Client(), Options: opts, Timeout: 10 * time.Second}
	if aihubmix && opts == nil {
		cfg.Options = map[string]string{ideogram.OptionLayout: ideogram.LayoutAiHubMix}
	}
	p, err := providers.New(ideogram.Name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{ad: p.(*ideogram.Adapter), fake: f, srv: srv, clock: c}
}

func pngOf(t testing.TB, w, h int, at func(x, y int) color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, at(x, y))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func srcImage(t testing.TB, w, h int) providers.Image {
	data := pngOf(t, w, h, func(x, y int) color.NRGBA { return color.NRGBA{uint8(x), uint8(y), 0x40, 0xff} })
	return providers.Image{Data: data, ContentType: "image/png", Filename: "photo.png", Width: w, Height: h}
}

// openAIMask marks the top half as transparent (to change).
func openAIMask(t testing.TB, w, h int) *providers.Image {
	data := pngOf(t, w, h, func(x, y int) color.NRGBA {
		if y < h/2 {
			return color.NRGBA{}
		}
		return color.NRGBA{0xff, 0xff, 0xff, 0xff}
	})
	return &providers.Image{Data: data, ContentType: "image/png", Width: w, Height: h}
}

func extra(kv ...any) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		b, _ := json.Marshal(kv[i+1])
		m[kv[i].(string)] = b
	}
	return m
}

func seed(v int64) *int64 { return &v }

func kindOf(t *testing.T, err error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want a *providers.Error, got %T %v", err, err)
	}
	return pe
}

// download fetches an image URL the adapter returned.
func download(t *testing.T, e *env, u string) (int, []byte) {
	t.Helper()
	resp, err := e.srv.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// lastForm parses the fake's last multipart request.
func lastForm(t *testing.T, f *fake.Fake) *multipart.Form {
	t.Helper()
	lr := f.LastRequest()
	_, params, err := mime.ParseMediaType(lr.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	form, err := multipart.NewReader(bytes.NewReader(lr.Body), params["boundary"]).ReadForm(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return form
}

func TestRegistered(t *testing.T) {
	if !providers.Registered(ideogram.Name) {
		t.Fatal("ideogram is not registered")
	}
	p, err := providers.New(ideogram.Name, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*ideogram.Adapter).BaseURL(); got != ideogram.DefaultBaseURL {
		t.Fatalf("default base URL = %q", got)
	}
	ops := providers.OperationsOf(p)
	if len(ops) != len(providers.Operations) {
		t.Fatalf("operations = %v, want every operation", ops)
	}
}

func TestNewConfig(t *testing.T) {
	cases := []struct {
		base    string
		opts    map[string]string
		want    string
		wantErr string
	}{
		{"", map[string]string{"layout": "aihubmix"}, "https://aihubmix.com/ideogram", ""},
		{"https://aihubmix.com", map[string]string{"layout": "aihubmix"}, "https://aihubmix.com/ideogram", ""},
		{"https://proxy.example/custom/ideogram/", map[string]string{"layout": "AiHubMix"}, "https://proxy.example/custom/ideogram", ""},
		{"https://aihubmix.com/ideogram", nil, "https://aihubmix.com/ideogram", ""},
		{"http://127.0.0.1:9090/ideogram/", map[string]string{"layout": "official"}, "http://127.0.0.1:9090/ideogram", ""},
		{"", map[string]string{"layout": "weird"}, "", "layout"},
		{"", map[string]string{"region": "x"}, "", "unknown option"},
		{"ftp://x", nil, "", "not an absolute"},
		{"https://x/?a=b", nil, "", "query"},
	}
	for _, tc := range cases {
		a, err := ideogram.New(providers.Config{BaseURL: tc.base, APIKey: "k", Options: tc.opts})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q %v: err = %v, want %q", tc.base, tc.opts, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q %v: %v", tc.base, tc.opts, err)
			continue
		}
		if a.BaseURL() != tc.want {
			t.Errorf("%q %v: base = %q, want %q", tc.base, tc.opts, a.BaseURL(), tc.want)
		}
	}
	if _, err := ideogram.New(providers.Config{}); err == nil {
		t.Error("a channel without an API key was accepted")
	}
}

// TestOperations runs every operation on both layouts against the fake and checks the wire and
// the translated answer.
func TestOperations(t *testing.T) {
	for _, layout := range []string{"official", "aihubmix"} {
		t.Run(layout, func(t *testing.T) {
			e := newEnv(t, layout == "aihubmix", fake.Options{}, nil)
			prefix := ""
			if layout == "aihubmix" {
				prefix = "/ideogram"
			}
			src := srcImage(t, 96, 64)
			cases := []struct {
				name   string
				req    providers.Request
				path   string
				n      int
				w, h   int
				check  func(t *testing.T, lr fake.Request)
				descrs bool
			}{
				{name: "legacy generate", req: providers.Request{Operation: providers.OpGenerate, Model: "V_2", Prompt: "a cat & a dog",
					N: 2, Width: 1280, Height: 720, Seed: seed(99), NegativePrompt: "blur", PromptEnhancement: new(bool),
					Extra: extra("style_type", "ANIME", "color_palette", map[string]any{"name": "PASTEL"})},
					path: "/generate", n: 2, w: 1280, h: 720, check: func(t *testing.T, lr fake.Request) {
						if ct := lr.Header.Get("Content-Type"); ct != "application/json" {
							t.Errorf("content type %q", ct)
						}
						var body struct {
							ImageRequest map[string]any `json:"image_request"`
						}
						if err := json.Unmarshal(lr.Body, &body); err != nil {
							t.Fatal(err)
						}
						if body.ImageRequest["resolution"] != "RESOLUTION_1280_720" || body.ImageRequest["magic_prompt_option"] != "OFF" {
							t.Errorf("image_request = %v", body.ImageRequest)
						}
					}},
				{name: "v1 aspect ratio", req: providers.Request{Operation: providers.OpGenerate, Model: "V_1", Prompt: "x", AspectRatio: "3:1"},
					path: "/generate", n: 1, w: 1536, h: 512},
				{name: "v3 generate", req: providers.Request{Operation: providers.OpGenerate, Model: "V_3", Prompt: "poster", Quality: "medium",
					AspectRatio: "16:9", N: 3, Images: []providers.Image{srcImage(t, 32, 32)}, Extra: extra("style_type", "DESIGN")},
					path: "/v1/ideogram-v3/generate", n: 3, w: 1312, h: 736, check: func(t *testing.T, lr fake.Request) {
						form := lastForm(t, e.fake)
						if got := form.Value["rendering_speed"]; len(got) != 1 || got[0] != "DEFAULT" {
							t.Errorf("rendering_speed = %v", got)
						}
						if got := form.Value["aspect_ratio"]; len(got) != 1 || got[0] != "16x9" {
							t.Errorf("aspect_ratio = %v", got)
						}
						if len(form.File["style_reference_images"]) != 1 {
							t.Errorf("style references = %d", len(form.File["style_reference_images"]))
						}
					}},
				{name: "legacy remix", req: providers.Request{Operation: providers.OpRemix, Model: "V_2A_TURBO", Prompt: "oil painting",
					Images: []providers.Image{src}, Extra: extra("image_weight", 70, "resolution", "1024x768")},
					path: "/remix", n: 1, w: 1024, h: 768, check: func(t *testing.T, lr fake.Request) {
						form := lastForm(t, e.fake)
						var ir map[string]any
						if err := json.Unmarshal([]byte(form.Value["image_request"][0]), &ir); err != nil {
							t.Fatal(err)
						}
						if ir["image_weight"] != float64(70) || ir["model"] != "V_2A_TURBO" {
							t.Errorf("image_request = %v", ir)
						}
					}},
				{name: "v3 remix", req: providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "snow", Images: []providers.Image{src},
					Width: 800, Height: 1280, Extra: extra("image_weight", "20", "rendering_speed", "QUALITY")},
					path: "/v1/ideogram-v3/remix", n: 1, w: 800, h: 1280},
				{name: "variation", req: providers.Request{Operation: providers.OpVariation, Model: "V_2", Images: []providers.Image{src}, N: 2},
					path: "/remix", n: 2, w: 1024, h: 1024},
				{name: "legacy edit", req: providers.Request{Operation: providers.OpEdit, Model: "V_2_TURBO", Prompt: "a hat",
					Images: []providers.Image{src}, Mask: openAIMask(t, 96, 64), Width: 96, Height: 64},
					path: "/edit", n: 1, w: 96, h: 64, check: func(t *testing.T, lr fake.Request) {
						form := lastForm(t, e.fake)
						f, _ := form.File["mask"][0].Open()
						img, err := png.Decode(f)
						if err != nil {
							t.Fatal(err)
						}
						r0, _, _, _ := img.At(10, 5).RGBA()
						r1, _, _, _ := img.At(10, 60).RGBA()
						if r0 != 0 || r1 != 0xffff {
							t.Errorf("mask top = %x (want black), bottom = %x (want white)", r0, r1)
						}
					}},
				{name: "v3 edit black-and-white mask", req: providers.Request{Operation: providers.OpEdit, Model: "V_3", Prompt: "a hat",
					Images: []providers.Image{src}, Mask: &providers.Image{Data: pngOf(t, 96, 64, func(x, y int) color.NRGBA {
						if x < 10 {
							return color.NRGBA{5, 5, 5, 0xff}
						}
						return color.NRGBA{0xf0, 0xf0, 0xf0, 0xff}
					})}, Extra: extra("mask_format", "bw", "style_preset", "BAUHAUS")},
					path: "/v1/ideogram-v3/edit", n: 1, w: 96, h: 64},
				{name: "upscale", req: providers.Request{Operation: providers.OpUpscale, Model: "V_1_TURBO", Images: []providers.Image{src},
					Extra: extra("resemblance", 90)}, path: "/upscale", n: 1, w: 192, h: 128},
				{name: "describe", req: providers.Request{Operation: providers.OpDescribe, Model: "V_3", Images: []providers.Image{src}},
					path: "/describe", descrs: true},
				{name: "legacy reframe", req: providers.Request{Operation: providers.OpReframe, Model: "V_2A", Images: []providers.Image{src},
					Width: 1536, Height: 640, N: 2}, path: "/reframe", n: 2, w: 1536, h: 640},
				{name: "v3 reframe", req: providers.Request{Operation: providers.OpReframe, Model: "V_3", Images: []providers.Image{src},
					Width: 1472, Height: 704, Quality: "low"}, path: "/v1/ideogram-v3/reframe", n: 1, w: 1472, h: 704},
				{name: "replace background", req: providers.Request{Operation: providers.OpReplaceBackground, Model: "V_3", Prompt: "beach",
					Images: []providers.Image{src, srcImage(t, 16, 16), srcImage(t, 24, 24)}, N: 2, Seed: seed(5),
					Extra: extra("style_reference_images", 2)}, path: "/v1/ideogram-v3/replace-background", n: 2, w: 96, h: 64,
					check: func(t *testing.T, lr fake.Request) {
						form := lastForm(t, e.fake)
						if len(form.File["image"]) != 1 || len(form.File["style_reference_images"]) != 2 {
							t.Errorf("image parts %d, style references %d", len(form.File["image"]), len(form.File["style_reference_images"]))
						}
					}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					res, err := providers.Do(context.Background(), e.ad, &tc.req)
					if err != nil {
						t.Fatalf("%v", err)
					}
					lr := e.fake.LastRequest()
					if lr.Path != tc.path || !strings.HasPrefix(lr.RequestURI, prefix+tc.path) {
						t.Fatalf("path %q (request URI %q), want %q", lr.Path, lr.RequestURI, prefix+tc.path)
					}
					if got := lr.Header.Get("Api-Key"); got != testKey {
						t.Fatalf("Api-Key header = %q", got)
					}
					if lr.Header.Get("Authorization") != "" {
						t.Fatal("an Authorization header was sent")
					}
					if tc.check != nil {
						tc.check(t, lr)
					}
					if tc.descrs {
						if len(res.Descriptions) == 0 || len(res.Images) != 0 {
							t.Fatalf("describe result = %+v", res)
						}
						return
					}
					if len(res.Images) != tc.n || res.Withheld != 0 {
						t.Fatalf("got %d images (%d withheld), want %d", len(res.Images), res.Withheld, tc.n)
					}
					if res.Created.IsZero() || time.Since(res.Created) > time.Minute {
						t.Errorf("created = %v", res.Created)
					}
					for _, im := range res.Images {
						if im.Width != tc.w || im.Height != tc.h || im.Seed == nil || im.URL == "" {
							t.Fatalf("image = %+v, want %dx%d with a seed and a URL", im, tc.w, tc.h)
						}
						if !strings.Contains(im.URL, "&sig=") || im.Expires.Before(time.Now().Add(50*time.Minute)) {
							t.Errorf("url %q expires %v", im.URL, im.Expires)
						}
						if tc.req.Prompt != "" && im.RevisedPrompt != "Enhanced: "+tc.req.Prompt {
							t.Errorf("revised prompt = %q", im.RevisedPrompt)
						}
						if tc.req.Seed != nil && *im.Seed != *tc.req.Seed {
							t.Errorf("seed = %d, want %d", *im.Seed, *tc.req.Seed)
						}
					}
					st, body := download(t, e, res.Images[0].URL)
					if st != http.StatusOK {
						t.Fatalf("download: %d %s", st, body)
					}
					cfg, err := png.DecodeConfig(bytes.NewReader(body))
					if err != nil || cfg.Width != tc.w || cfg.Height != tc.h {
						t.Fatalf("downloaded image: %v %dx%d, want %dx%d", err, cfg.Width, cfg.Height, tc.w, tc.h)
					}
				})
			}
		})
	}
}

// TestRefusedBeforeTheWire checks what the adapter refuses itself, without calling the upstream.
func TestRefusedBeforeTheWire(t *testing.T) {
	e := newEnv(t, false, fake.Options{}, nil)
	src := srcImage(t, 64, 64)
	cases := []struct {
		name  string
		req   providers.Request
		kind  providers.Kind
		param string
	}{
		{"unknown model", providers.Request{Model: "V_9", Prompt: "x"}, providers.KindModelNotFound, "model"},
		{"edit on V_1", providers.Request{Operation: providers.OpEdit, Model: "V_1", Prompt: "x", Images: []providers.Image{src}, Mask: openAIMask(t, 64, 64)}, providers.KindUnsupported, "model"},
		{"replace background on V_2", providers.Request{Operation: providers.OpReplaceBackground, Model: "V_2", Prompt: "x", Images: []providers.Image{src}}, providers.KindUnsupported, "model"},
		{"reframe on V_1", providers.Request{Operation: providers.OpReframe, Model: "V_1", Images: []providers.Image{src}, Width: 1024, Height: 1024}, providers.KindUnsupported, "model"},
		{"style_type on V_1", providers.Request{Model: "V_1", Prompt: "x", Extra: extra("style_type", "AUTO")}, providers.KindUnsupported, "style_type"},
		{"size on V_1", providers.Request{Model: "V_1", Prompt: "x", Width: 1024, Height: 1024}, providers.KindUnsupported, "size"},
		{"legacy-only size on V_3", providers.Request{Model: "V_3", Prompt: "x", Width: 1280, Height: 720}, providers.KindInvalidRequest, "size"},
		{"v3-only size on V_2", providers.Request{Model: "V_2", Prompt: "x", Width: 800, Height: 1280}, providers.KindInvalidRequest, "size"},
		{"v3-only ratio on V_2", providers.Request{Model: "V_2", Prompt: "x", AspectRatio: "4:5"}, providers.KindInvalidRequest, "aspect_ratio"},
		{"size and ratio", providers.Request{Model: "V_3", Prompt: "x", Width: 1024, Height: 1024, AspectRatio: "1:1"}, providers.KindInvalidRequest, "aspect_ratio"},
		{"negative prompt on V_2A", providers.Request{Model: "V_2A", Prompt: "x", NegativePrompt: "y"}, providers.KindUnsupported, "negative_prompt"},
		{"negative prompt on V_3 edit", providers.Request{Operation: providers.OpEdit, Model: "V_3", Prompt: "x", NegativePrompt: "y", Images: []providers.Image{src}, Mask: openAIMask(t, 64, 64)}, providers.KindUnsupported, "negative_prompt"},
		{"color palette on V_2A", providers.Request{Model: "V_2A", Prompt: "x", Extra: extra("color_palette", "EMBER")}, providers.KindUnsupported, "color_palette"},
		{"bad palette", providers.Request{Model: "V_2", Prompt: "x", Extra: extra("color_palette", map[string]any{"members": []any{}})}, providers.KindInvalidRequest, "color_palette"},
		{"quality on legacy", providers.Request{Model: "V_2", Prompt: "x", Quality: "high"}, providers.KindUnsupported, "quality"},
		{"quality hd", providers.Request{Model: "V_3", Prompt: "x", Quality: "hd"}, providers.KindInvalidRequest, "quality"},
		{"quality conflicts", providers.Request{Model: "V_3", Prompt: "x", Quality: "low", Extra: extra("rendering_speed", "QUALITY")}, providers.KindInvalidRequest, "quality"},
		{"FLASH speed", providers.Request{Model: "V_3", Prompt: "x", Extra: extra("rendering_speed", "FLASH")}, providers.KindInvalidRequest, "rendering_speed"},
		{"rendering speed on legacy", providers.Request{Model: "V_2", Prompt: "x", Extra: extra("rendering_speed", "TURBO")}, providers.KindUnsupported, "rendering_speed"},
		{"image weight on generate", providers.Request{Model: "V_3", Prompt: "x", Extra: extra("image_weight", 10)}, providers.KindUnsupported, "image_weight"},
		{"image weight range", providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x", Images: []providers.Image{src}, Extra: extra("image_weight", 101)}, providers.KindInvalidRequest, "image_weight"},
		{"unknown extra", providers.Request{Model: "V_3", Prompt: "x", Extra: extra("character_reference_images", "x")}, providers.KindUnsupported, "character_reference_images"},
		{"style codes with style type", providers.Request{Model: "V_3", Prompt: "x", Extra: extra("style_codes", []string{"01234567"}, "style_type", "AUTO")}, providers.KindInvalidRequest, "style_codes"},
		{"style codes with references", providers.Request{Model: "V_3", Prompt: "x", Images: []providers.Image{src}, Extra: extra("style_codes", "01234567")}, providers.KindInvalidRequest, "style_codes"},
		{"bad style code", providers.Request{Model: "V_3", Prompt: "x", Extra: extra("style_codes", []string{"xyz"})}, providers.KindInvalidRequest, "style_codes"},
		{"seed too large", providers.Request{Model: "V_3", Prompt: "x", Seed: seed(2147483648)}, providers.KindInvalidRequest, "seed"},
		{"negative seed", providers.Request{Model: "V_2", Prompt: "x", Seed: seed(-1)}, providers.KindInvalidRequest, "seed"},
		{"n too large", providers.Request{Model: "V_2", Prompt: "x", N: 9}, providers.KindInvalidRequest, "n"},
		{"no prompt", providers.Request{Model: "V_2", Prompt: "  "}, providers.KindInvalidRequest, "prompt"},
		{"reference images on legacy generate", providers.Request{Model: "V_2", Prompt: "x", Images: []providers.Image{src}}, providers.KindUnsupported, "image"},
		{"two images on legacy remix", providers.Request{Operation: providers.OpRemix, Model: "V_2", Prompt: "x", Images: []providers.Image{src, src}}, providers.KindInvalidRequest, "image"},
		{"too many images on V_3", providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x", Images: []providers.Image{src, src, src, src, src}}, providers.KindInvalidRequest, "image"},
		{"two source images on V_3 remix", providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x", Images: []providers.Image{src, src}}, providers.KindUnsupported, "image"},
		{"style reference count too large", providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x", Images: []providers.Image{src, src},
			Extra: extra("style_reference_images", 3)}, providers.KindInvalidRequest, "style_reference_images"},
		{"remix with only style references", providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x", Images: []providers.Image{src, src},
			Extra: extra("style_reference_images", 2)}, providers.KindInvalidRequest, "image"},
		{"generate with a declared source", providers.Request{Model: "V_3", Prompt: "x", Images: []providers.Image{src, src},
			Extra: extra("style_reference_images", 1)}, providers.KindInvalidRequest, "image"},
		{"style references on upscale", providers.Request{Operation: providers.OpUpscale, Model: "V_3", Images: []providers.Image{src, src},
			Extra: extra("style_reference_images", 1)}, providers.KindUnsupported, "style_reference_images"},
		{"remix without image", providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x"}, providers.KindInvalidRequest, "image"},
		{"edit without mask", providers.Request{Operation: providers.OpEdit, Model: "V_2", Prompt: "x", Images: []providers.Image{src}}, providers.KindInvalidRequest, "mask"},
		{"edit with an opaque mask", providers.Request{Operation: providers.OpEdit, Model: "V_2", Prompt: "x", Images: []providers.Image{src},
			Mask: &providers.Image{Data: pngOf(t, 64, 64, func(x, y int) color.NRGBA { return color.NRGBA{0, 0, 0, 0xff} })}}, providers.KindInvalidRequest, "mask"},
		{"edit with an all-white bw mask", providers.Request{Operation: providers.OpEdit, Model: "V_3", Prompt: "x", Images: []providers.Image{src},
			Mask: &providers.Image{Data: pngOf(t, 64, 64, func(x, y int) color.NRGBA { return color.NRGBA{0xff, 0xff, 0xff, 0xff} })}, Extra: extra("mask_format", "bw")}, providers.KindInvalidRequest, "mask"},
		{"edit with a mask of another size", providers.Request{Operation: providers.OpEdit, Model: "V_2", Prompt: "x", Images: []providers.Image{src}, Mask: openAIMask(t, 32, 64)}, providers.KindInvalidRequest, "mask"},
		{"edit with a mask that is not an image", providers.Request{Operation: providers.OpEdit, Model: "V_2", Prompt: "x", Images: []providers.Image{src}, Mask: &providers.Image{Data: []byte("nope")}}, providers.KindInvalidRequest, "mask"},
		{"edit with another size", providers.Request{Operation: providers.OpEdit, Model: "V_2", Prompt: "x", Images: []providers.Image{src}, Mask: openAIMask(t, 64, 64), Width: 1024, Height: 1024}, providers.KindUnsupported, "size"},
		{"mask on generate", providers.Request{Model: "V_2", Prompt: "x", Mask: openAIMask(t, 64, 64)}, providers.KindUnsupported, "mask"},
		{"bad mask format", providers.Request{Operation: providers.OpEdit, Model: "V_2", Prompt: "x", Images: []providers.Image{src}, Mask: openAIMask(t, 64, 64), Extra: extra("mask_format", "luma")}, providers.KindInvalidRequest, "mask_format"},
		{"reframe without size", providers.Request{Operation: providers.OpReframe, Model: "V_3", Images: []providers.Image{src}}, providers.KindInvalidRequest, "size"},
		{"reframe with a prompt", providers.Request{Operation: providers.OpReframe, Model: "V_3", Prompt: "x", Images: []providers.Image{src}, Width: 1024, Height: 1024}, providers.KindUnsupported, "prompt"},
		{"reframe with a ratio", providers.Request{Operation: providers.OpReframe, Model: "V_3", Images: []providers.Image{src}, AspectRatio: "16:9"}, providers.KindUnsupported, "aspect_ratio"},
		{"upscale with a size", providers.Request{Operation: providers.OpUpscale, Model: "V_3", Images: []providers.Image{src}, Width: 1024, Height: 1024}, providers.KindUnsupported, "size"},
		{"upscale with a rendering speed", providers.Request{Operation: providers.OpUpscale, Model: "V_3", Images: []providers.Image{src}, Quality: "high"}, providers.KindUnsupported, "quality"},
		{"describe with n", providers.Request{Operation: providers.OpDescribe, Model: "V_3", Images: []providers.Image{src}, N: 2}, providers.KindUnsupported, "n"},
		{"dall-e style", providers.Request{Model: "V_3", Prompt: "x", Style: "vivid"}, providers.KindUnsupported, "style"},
		{"steps", providers.Request{Model: "V_3", Prompt: "x", Steps: 20}, providers.KindUnsupported, "steps"},
		{"output format", providers.Request{Model: "V_3", Prompt: "x", OutputFormat: "webp"}, providers.KindUnsupported, "output_format"},
		{"user", providers.Request{Model: "V_3", Prompt: "x", User: "u1"}, providers.KindUnsupported, "user"},
		{"prompt enhancement on reframe", providers.Request{Operation: providers.OpReframe, Model: "V_3", Images: []providers.Image{src}, Width: 1024, Height: 1024, PromptEnhancement: new(bool)}, providers.KindUnsupported, "prompt_enhancement"},
		{"magic prompt conflict", providers.Request{Model: "V_3", Prompt: "x", PromptEnhancement: new(bool), Extra: extra("magic_prompt", "ON")}, providers.KindInvalidRequest, "prompt_enhancement"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.fake.Calls()
			_, err := providers.Do(context.Background(), e.ad, &tc.req)
			pe := kindOf(t, err)
			if pe.Kind != tc.kind || pe.Param != tc.param {
				t.Fatalf("got %s param %q (%v), want %s param %q", pe.Kind, pe.Param, err, tc.kind, tc.param)
			}
			if pe.Provider != ideogram.Name || pe.Message == "" {
				t.Fatalf("error without provider or message: %+v", pe)
			}
			if e.fake.Calls() != before {
				t.Fatal("the refused request reached the upstream")
			}
		})
	}
}

func TestSafety(t *testing.T) {
	e := newEnv(t, false, fake.Options{}, nil)
	res, err := e.ad.Generate(context.Background(), &providers.Request{Model: "V_3", Prompt: "an unsafe scene", N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Withheld != 1 {
		t.Fatalf("images %d withheld %d, want 2 and 1", len(res.Images), res.Withheld)
	}
	_, err = e.ad.Generate(context.Background(), &providers.Request{Model: "V_2", Prompt: "an unsafe scene"})
	if pe := kindOf(t, err); pe.Kind != providers.KindContentPolicy {
		t.Fatalf("every image withheld: %v", err)
	}
	_, err = e.ad.Remix(context.Background(), &providers.Request{Model: "V_2", Prompt: "something forbidden", Images: []providers.Image{srcImage(t, 32, 32)}})
	pe := kindOf(t, err)
	if pe.Kind != providers.KindContentPolicy || pe.Status != http.StatusUnprocessableEntity || strings.Contains(pe.Message, fake.SafetyMessage) {
		t.Fatalf("422: %+v", pe)
	}
}

func TestUpstreamAuth(t *testing.T) {
	e := newEnv(t, false, fake.Options{APIKey: "another-key"}, nil)
	src := srcImage(t, 32, 32)
	for _, tc := range []struct {
		req    providers.Request
		status int
	}{
		{providers.Request{Operation: providers.OpGenerate, Model: "V_2", Prompt: "x"}, 401},
		{providers.Request{Operation: providers.OpGenerate, Model: "V_3", Prompt: "x"}, 401},
		{providers.Request{Operation: providers.OpRemix, Model: "V_2", Prompt: "x", Images: []providers.Image{src}}, 403},
		{providers.Request{Operation: providers.OpRemix, Model: "V_3", Prompt: "x", Images: []providers.Image{src}}, 403},
		{providers.Request{Operation: providers.OpUpscale, Model: "V_3", Images: []providers.Image{src}}, 403},
		{providers.Request{Operation: providers.OpDescribe, Model: "V_3", Images: []providers.Image{src}}, 401},
	} {
		_, err := providers.Do(context.Background(), e.ad, &tc.req)
		pe := kindOf(t, err)
		if pe.Kind != providers.KindUpstreamAuth || pe.Status != tc.status {
			t.Errorf("%s %s: %v, want upstream_auth with HTTP %d", tc.req.Operation, tc.req.Model, err, tc.status)
		}
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("the key leaked: %v", err)
		}
	}
}

func TestURLsExpire(t *testing.T) {
	e := newEnv(t, true, fake.Options{URLTTL: 10 * time.Minute}, nil)
	res, err := e.ad.Generate(context.Background(), &providers.Request{Model: "V_3", Prompt: "x", Seed: seed(1234)})
	if err != nil {
		t.Fatal(err)
	}
	im := res.Images[0]
	if d := im.Expires.Sub(e.clock.Now()); d < 9*time.Minute || d > 11*time.Minute {
		t.Fatalf("expires in %v, want the URL's own exp (10m)", d)
	}
	st, body := download(t, e, im.URL)
	if st != http.StatusOK || !bytes.Equal(body, fake.PNG(1234, 1024, 1024)) {
		t.Fatalf("download: %d, %d bytes", st, len(body))
	}
	if st, _ := download(t, e, strings.Replace(im.URL, "sig=", "sig=0", 1)); st != http.StatusForbidden {
		t.Fatalf("a tampered signature answered %d", st)
	}
	e.clock.Add(11 * time.Minute)
	if st, _ := download(t, e, im.URL); st != http.StatusForbidden {
		t.Fatalf("an expired URL answered %d", st)
	}
}

func TestInFlightLimit(t *testing.T) {
	e := newEnv(t, false, fake.Options{Latency: 300 * time.Millisecond, MaxInFlight: 2}, nil)
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.ad.Generate(context.Background(), &providers.Request{Model: "V_2", Prompt: "x"})
			switch {
			case err == nil:
				ok.Add(1)
			case providers.KindOf(err) == providers.KindUpstreamRateLimited:
				limited.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 2 || limited.Load() != 3 {
		t.Fatalf("ok %d, limited %d; want 2 and 3", ok.Load(), limited.Load())
	}
}

func TestPriceQuality(t *testing.T) {
	cases := []struct {
		req  providers.Request
		want string
	}{
		{providers.Request{Model: "V_2", Quality: "high"}, ""},
		{providers.Request{Model: "V_3"}, "DEFAULT"},
		{providers.Request{Model: "V_3", Quality: "low"}, "TURBO"},
		{providers.Request{Model: "V_3", Quality: "high"}, "QUALITY"},
		{providers.Request{Model: "V_3", Extra: extra("rendering_speed", "turbo")}, "TURBO"},
	}
	for _, tc := range cases {
		if got := ideogram.PriceQuality(&tc.req); got != tc.want {
			t.Errorf("%s %q %s: %q, want %q", tc.req.Model, tc.req.Quality, tc.req.Extra, got, tc.want)
		}
	}
}
