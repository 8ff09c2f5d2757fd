package openai

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

func TestGoldenGenerateRequests(t *testing.T) {
	compat := dialect{compatible: true, sizeField: sizeWidthHeight, ext: allExtensions}
	cases := []struct {
		name string
		d    dialect
		req  providers.Request
	}{
		{"dall-e-2_url", openAIDialect, providers.Request{Model: "dall-e-2", Prompt: "a red fox", N: 3, Width: 512, Height: 512,
			ResponseFormat: "url", User: "user-1"}},
		{"dall-e-2_b64_quality_auto", openAIDialect, providers.Request{Model: "dall-e-2", Prompt: "a red fox", N: 1,
			ResponseFormat: "b64_json", Quality: "auto"}},
		{"dall-e-3_hd_natural", openAIDialect, providers.Request{Model: "dall-e-3", Prompt: "a red fox", N: 1, Width: 1792, Height: 1024,
			Quality: "hd", Style: "natural", ResponseFormat: "b64_json"}},
		{"gpt-image-1_all_fields", openAIDialect, providers.Request{Model: "gpt-image-1", Prompt: "a red fox", N: 4, Width: 1536, Height: 1024,
			Quality: "high", Background: "transparent", OutputFormat: "webp", OutputCompression: ptr(80), Moderation: "low",
			User: "user-1", ResponseFormat: "b64_json"}},
		{"gpt-image-1_auto", openAIDialect, providers.Request{Model: "gpt-image-1", Prompt: "cats & dogs <3", Quality: "auto",
			ResponseFormat: "url"}},
		{"compatible_width_height", compat, providers.Request{Model: "flux-1.1-pro", Prompt: "a red fox", NegativePrompt: "blurry",
			Width: 1024, Height: 768, Steps: 28, GuidanceScale: ptr(3.5), Seed: ptr(int64(42)), ResponseFormat: "url"}},
		{"compatible_zero_seed_and_guidance", compat, providers.Request{Model: "flux-dev", Prompt: "a red fox",
			GuidanceScale: ptr(0.0), Seed: ptr(int64(0))}},
		{"compatible_size_field_with_response_format", dialect{compatible: true, sizeField: sizeString, ext: providers.ParamSeed, responseFormat: true},
			providers.Request{Model: "dall-e-3", Prompt: "a red fox", Width: 1792, Height: 1024, ResponseFormat: "b64_json"}},
		{"compatible_both_size_fields", dialect{compatible: true, sizeField: sizeBoth, ext: allExtensions},
			providers.Request{Model: "stable-diffusion-xl", Prompt: "a red fox", Width: 1024, Height: 1024, N: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := encodeGenerate(&tc.req, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, "requests/"+tc.name+".json", body)
		})
	}
}

// partView is a readable multipart part for goldens: text as is, files by size and hash.
type partView struct {
	Name        string `json:"name"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Value       string `json:"value,omitempty"`
	Bytes       int    `json:"bytes,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
}

func viewMultipart(t *testing.T, mp *multipartBody) []byte {
	t.Helper()
	all, err := io.ReadAll(mp.reader())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(all)) != mp.size || !bytes.Equal(all, mp.bytes()) {
		t.Fatalf("declared size %d, reader gave %d bytes", mp.size, len(all))
	}
	mt, params, err := mime.ParseMediaType(mp.contentType)
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("content type %q", mp.contentType)
	}
	var parts []partView
	r := multipart.NewReader(bytes.NewReader(all), params["boundary"])
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		v := partView{Name: p.FormName(), Filename: p.FileName(), ContentType: p.Header.Get("Content-Type")}
		if v.Filename != "" {
			sum := sha256.Sum256(b)
			v.Bytes, v.SHA256 = len(b), hex.EncodeToString(sum[:8])
		} else {
			v.Value = string(b)
		}
		parts = append(parts, v)
	}
	out, _ := json.Marshal(map[string]any{"content_type": mp.contentType, "length": mp.size, "parts": parts})
	return out
}

func TestGoldenMultipartRequests(t *testing.T) {
	sq := pngImage(t, 64, 64, true)
	mask := pngImage(t, 64, 64, true)
	cases := []struct {
		name string
		enc  func(*providers.Request, string) (*multipartBody, error)
		req  providers.Request
	}{
		{"edit_dall-e-2_with_mask", encodeEdit, providers.Request{Operation: providers.OpEdit, Model: "dall-e-2", Prompt: "add a hat",
			N: 2, Width: 512, Height: 512, ResponseFormat: "b64_json", User: "user-1", Images: []providers.Image{sq}, Mask: &mask}},
		{"edit_gpt-image-1_three_images", encodeEdit, providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1",
			Prompt: "put them in one picnic", N: 2, Width: 1024, Height: 1536, Quality: "medium", Background: "opaque",
			OutputFormat: "jpeg", OutputCompression: ptr(70), Moderation: "auto", ResponseFormat: "url",
			Images: []providers.Image{sq, jpegImage(t, 40, 30), {Data: []byte("RIFF\x00\x00\x00\x00WEBPVP8L"), ContentType: "image/webp"}},
			Mask:   &mask, Extra: map[string]json.RawMessage{"input_fidelity": json.RawMessage(`"high"`)}}},
		{"variation_dall-e-2", encodeVariation, providers.Request{Operation: providers.OpVariation, Model: "dall-e-2", N: 4,
			Width: 256, Height: 256, ResponseFormat: "url", Images: []providers.Image{sq}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp, err := tc.enc(&tc.req, "golden-boundary")
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, "multipart/"+tc.name+".json", viewMultipart(t, mp))
		})
	}
}

// TestMultipartShares checks that file parts point at the request's bytes rather than copies.
func TestMultipartShares(t *testing.T) {
	im := pngImage(t, 64, 64, true)
	mp, err := encodeEdit(&providers.Request{Model: "gpt-image-1", Prompt: "x", Images: []providers.Image{im}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range mp.segs {
		if len(s) == len(im.Data) && &s[0] == &im.Data[0] {
			return
		}
	}
	t.Fatal("the image bytes were copied into the multipart body")
}

// outView is a readable Output for goldens.
type outView struct {
	ContentType   string `json:"content_type,omitempty"`
	Bytes         int    `json:"bytes,omitempty"`
	SHA256        string `json:"sha256,omitempty"`
	URL           string `json:"url,omitempty"`
	Expires       string `json:"expires,omitempty"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
	Seed          *int64 `json:"seed,omitempty"`
	Width         int    `json:"width,omitempty"`
	Height        int    `json:"height,omitempty"`
}

// reportedView is a readable providers.Reported for goldens.
type reportedView struct {
	Background   string           `json:"background,omitempty"`
	OutputFormat string           `json:"output_format,omitempty"`
	Quality      string           `json:"quality,omitempty"`
	Size         string           `json:"size,omitempty"`
	Usage        *providers.Usage `json:"usage,omitempty"`
}

func viewResult(res *providers.Result) []byte {
	v := struct {
		Created  string        `json:"created,omitempty"`
		Images   []outView     `json:"images"`
		Reported *reportedView `json:"reported,omitempty"`
	}{}
	if !res.Created.IsZero() {
		v.Created = res.Created.Format(time.RFC3339)
	}
	if r := res.Reported; !r.IsZero() {
		v.Reported = &reportedView{r.Background, r.OutputFormat, r.Quality, "", r.Usage}
		if !r.Size.IsZero() {
			v.Reported.Size = r.Size.String()
		}
	}
	for _, o := range res.Images {
		ov := outView{ContentType: o.ContentType, URL: o.URL, RevisedPrompt: o.RevisedPrompt, Seed: o.Seed, Width: o.Width, Height: o.Height}
		if data, err := o.Bytes(); err == nil && len(data) > 0 {
			sum := sha256.Sum256(data)
			ov.Bytes, ov.SHA256 = len(data), hex.EncodeToString(sum[:8])
		}
		if !o.Expires.IsZero() {
			ov.Expires = o.Expires.UTC().Format(time.RFC3339)
		}
		v.Images = append(v.Images, ov)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSpace(buf.Bytes())
}

// TestGoldenResponses translates recorded upstream answers (testdata/upstream) into results.
func TestGoldenResponses(t *testing.T) {
	now := time.Date(2024, 4, 23, 1, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		req  providers.Request
		o    resultOptions
	}{
		{"dall-e-3_url", providers.Request{Model: "dall-e-3", Width: 1792, Height: 1024}, resultOptions{ttl: URLTTL}},
		{"dall-e-2_b64_two", providers.Request{Model: "dall-e-2", N: 2, Width: 256, Height: 256}, resultOptions{ttl: URLTTL}},
		{"gpt-image-1_auto_size", providers.Request{Model: "gpt-image-1"}, resultOptions{}},
		{"compatible_data_prefix_iso_created", providers.Request{Model: "flux-dev", Width: 512, Height: 512, Seed: ptr(int64(7))},
			resultOptions{echoSeed: true}},
		{"compatible_url_seed_echo", providers.Request{Model: "flux-dev", Width: 1024, Height: 768, Seed: ptr(int64(9999999999))},
			resultOptions{echoSeed: true, ttl: time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "upstream", tc.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := decodeImages(body)
			if err != nil {
				t.Fatal(err)
			}
			tc.o.now = now
			res, err := toResult("openai-test", r, &tc.req, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, "results/"+tc.name+".json", viewResult(res))
		})
	}
}

func TestBadResponses(t *testing.T) {
	for _, body := range []string{
		`{"created":1,"data":[]}`,
		`{"created":1}`,
		`{"created":1,"data":[{}]}`,
		`{"created":1,"data":[{"b64_json":"!!!!"}]}`,
		`{"created":1,"data":[{"b64_json":"aGVsbG8gd29ybGQ="}]}`,
		`{"created":1,"data":[{"url":"ftp://x/y.png"}]}`,
		`{"created":1,"data":[{"url":"/relative.png"}]}`,
		`{"created":1,"data":[{"b64_json":"data:image/png,abc"}]}`,
		`{"created":1,"data":[{"b64_json":12}]}`,
		`{"data":"nope"}`,
		`[]`,
	} {
		r, err := decodeImages([]byte(body))
		if err == nil {
			_, err = toResult("x", r, &providers.Request{}, resultOptions{now: time.Now()})
			var pe *providers.Error
			if err == nil || !errors.As(err, &pe) || pe.Kind != providers.KindUpstreamBadResponse {
				t.Errorf("%s: got %v, want an upstream_bad_response", body, err)
			}
		}
	}
}

func TestB64EscapedAndWrapped(t *testing.T) {
	png := pngImage(t, 2, 2, false).Data
	enc := "data:image/png;base64," + strings.ReplaceAll(b64(png), "/", `\/`)
	body := `{"created":1,"data":[{"b64_json":"` + enc + `"},{"b64_json":"` + wrap(b64(png)) + `"}]}`
	r, err := decodeImages([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := toResult("x", r, &providers.Request{}, resultOptions{now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range res.Images {
		if !bytes.Equal(bytesOf(t, im), png) || im.ContentType != "image/png" {
			t.Fatalf("image %d: %d bytes %s", i, len(bytesOf(t, im)), im.ContentType)
		}
	}
}

func b64(b []byte) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_ = enc.Encode(b)
	return strings.Trim(strings.TrimSpace(buf.String()), `"`)
}

// wrap breaks base64 into 76-character lines with JSON-escaped newlines, as some hosts send it.
func wrap(s string) string {
	var out []string
	for len(s) > 76 {
		out = append(out, s[:76])
		s = s[76:]
	}
	return strings.Join(append(out, s), `\r\n`)
}

func FuzzDecodeResponse(f *testing.F) {
	for _, name := range []string{"dall-e-3_url", "dall-e-2_b64_two", "gpt-image-1_auto_size", "compatible_data_prefix_iso_created", "compatible_url_seed_echo"} {
		b, err := os.ReadFile(filepath.Join("testdata", "upstream", name+".json"))
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"created":"x","data":[{"b64_json":"data:;base64,"}],"seed":"12"}`))
	f.Add([]byte(`{"data":[{"url":"http://h/p?a=1\u0026b=2","seed":1e3}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeImages(body)
		if err != nil {
			return
		}
		res, err := toResult("fuzz", r, &providers.Request{Seed: ptr(int64(1))}, resultOptions{now: time.Now(), ttl: time.Hour, echoSeed: true})
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.KindUpstreamBadResponse {
				t.Fatalf("error %v is not an upstream_bad_response", err)
			}
			return
		}
		if len(res.Images) == 0 {
			t.Fatal("success without images")
		}
		for _, im := range res.Images {
			if !im.HasBytes() == (im.URL == "") {
				t.Fatalf("image with data %d bytes and URL %q", len(bytesOf(t, im)), im.URL)
			}
			if im.HasBytes() && !strings.HasPrefix(im.ContentType, "image/") {
				t.Fatalf("content type %q", im.ContentType)
			}
		}
	})
}

func FuzzB64Image(f *testing.F) {
	f.Add([]byte(`"aGVsbG8="`))
	f.Add([]byte(`"data:image/png;base64,aGVsbG8="`))
	f.Add([]byte(`"aGVs\nbG8="`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b b64Image
		_ = b.UnmarshalJSON(raw)
	})
}
