package fake

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
)

func pngOf(t *testing.T, w, h int, at func(x, y int) color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, at(x, y))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	grey  = func(x, y int) color.Color { return color.NRGBA{0x80, 0x80, 0x80, 0xff} }
	white = func(x, y int) color.Color { return color.White }
	halfB = func(x, y int) color.Color {
		if x < 4 {
			return color.Black
		}
		return color.White
	}
)

type part struct {
	name, value string
	file        []byte
}

func field(name, value string) part   { return part{name: name, value: value} }
func file(name string, b []byte) part { return part{name: name, file: b} }

func multipartBody(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.file != nil {
			w, _ := mw.CreateFormFile(p.name, p.name+".png")
			w.Write(p.file)
		} else {
			mw.WriteField(p.name, p.value)
		}
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

type result struct {
	status int
	body   []byte
	header http.Header
}

func (r result) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("error body %q is not {\"error\": string}", r.body)
	}
	return e.Error
}

func do(t *testing.T, h http.Handler, path, ct string, body io.Reader, key string) result {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, body)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Api-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return result{rec.Code, rec.Body.Bytes(), rec.Header()}
}

func jsonGen(t *testing.T, f *Fake, ir string) result {
	return do(t, f, "/generate", "application/json", strings.NewReader(`{"image_request":`+ir+`}`), DefaultKey)
}

func post(t *testing.T, f *Fake, path string, parts ...part) result {
	body, ct := multipartBody(t, parts...)
	return do(t, f, path, ct, body, DefaultKey)
}

func TestAuth(t *testing.T) {
	f := New(Options{})
	img := pngOf(t, 8, 8, grey)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/generate", 401}, {"/edit", 401}, {"/reframe", 401}, {"/describe", 401}, {"/remix", 403}, {"/upscale", 403},
		{"/v1/ideogram-v3/generate", 401}, {"/v1/ideogram-v3/remix", 403}, {"/v1/ideogram-v3/edit", 401},
		{"/v1/ideogram-v3/reframe", 401}, {"/v1/ideogram-v3/replace-background", 401},
	} {
		body, ct := multipartBody(t, file("image_file", img))
		req := httptest.NewRequest(http.MethodPost, tc.path, body)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+DefaultKey) // the wrong scheme for Ideogram
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d", tc.path, rec.Code, rec.Header().Get("Content-Type"), tc.status)
		}
		result{rec.Code, rec.Body.Bytes(), nil}.errorText(t)
	}
}

func TestLegacyGenerate(t *testing.T) {
	f := New(Options{PublicURL: "http://sim.example/ideogram/"})
	r := jsonGen(t, f, `{"prompt":"a cat","model":"V_2","resolution":"RESOLUTION_1280_720","num_images":2,"seed":7,"style_type":"ANIME","color_palette":{"name":"EMBER"}}`)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if !bytes.Contains(r.body, []byte(`\u0026sig=`)) {
		t.Errorf("URLs should be JSON-escaped like a Go server's: %s", r.body)
	}
	var out struct {
		Created string `json:"created"`
		Data    []struct {
			Prompt      string  `json:"prompt"`
			Resolution  string  `json:"resolution"`
			IsImageSafe bool    `json:"is_image_safe"`
			Seed        int64   `json:"seed"`
			URL         *string `json:"url"`
			StyleType   string  `json:"style_type"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339Nano, out.Created); err != nil {
		t.Errorf("created %q is not ISO-8601: %v", out.Created, err)
	}
	if len(out.Data) != 2 {
		t.Fatalf("%d images", len(out.Data))
	}
	for _, d := range out.Data {
		if d.Resolution != "1280x720" || d.Seed != 7 || !d.IsImageSafe || d.URL == nil || d.StyleType != "ANIME" || d.Prompt != "Enhanced: a cat" {
			t.Errorf("item %+v", d)
		}
		if !strings.HasPrefix(*d.URL, "http://sim.example/ideogram/api/images/ephemeral/") || !strings.Contains(*d.URL, "&sig=") {
			t.Errorf("url %q", *d.URL)
		}
	}
	lr := f.LastRequest()
	if lr.Method != http.MethodPost || lr.Path != "/generate" || !bytes.Contains(lr.Body, []byte(`"a cat"`)) {
		t.Errorf("last request %+v", lr)
	}
}

func TestValidation(t *testing.T) {
	f := New(Options{})
	img := pngOf(t, 8, 8, grey)
	bw := pngOf(t, 8, 8, halfB)
	cases := []struct {
		name   string
		do     func() result
		status int
		says   string
	}{
		{"generate as multipart", func() result { return post(t, f, "/generate", field("prompt", "x")) }, 400, "application/json"},
		{"generate without prompt", func() result { return jsonGen(t, f, `{"model":"V_2"}`) }, 400, "prompt"},
		{"unknown field", func() result { return jsonGen(t, f, `{"prompt":"x","image_weight":3}`) }, 400, "image_weight"},
		{"bad model", func() result { return jsonGen(t, f, `{"prompt":"x","model":"V_9"}`) }, 400, "model"},
		{"3.0 resolution on legacy", func() result { return jsonGen(t, f, `{"prompt":"x","resolution":"RESOLUTION_800_1280"}`) }, 400, "resolution"},
		{"resolution and ratio", func() result {
			return jsonGen(t, f, `{"prompt":"x","resolution":"RESOLUTION_1024_1024","aspect_ratio":"ASPECT_1_1"}`)
		}, 400, "aspect_ratio"},
		{"resolution on V_1", func() result {
			return jsonGen(t, f, `{"prompt":"x","model":"V_1","resolution":"RESOLUTION_1024_1024"}`)
		}, 400, "V_2"},
		{"style_type on V_1_TURBO", func() result { return jsonGen(t, f, `{"prompt":"x","model":"V_1_TURBO","style_type":"AUTO"}`) }, 400, "style_type"},
		{"negative_prompt on V_2A", func() result { return jsonGen(t, f, `{"prompt":"x","model":"V_2A","negative_prompt":"y"}`) }, 400, "negative_prompt"},
		{"color_palette on V_2A_TURBO", func() result {
			return jsonGen(t, f, `{"prompt":"x","model":"V_2A_TURBO","color_palette":{"name":"EMBER"}}`)
		}, 400, "color_palette"},
		{"bad palette", func() result {
			return jsonGen(t, f, `{"prompt":"x","color_palette":{"members":[{"color_hex":"red"}]}}`)
		}, 400, "color_hex"},
		{"seed too large", func() result { return jsonGen(t, f, `{"prompt":"x","seed":2147483648}`) }, 400, "seed"},
		{"seed as a string", func() result { return jsonGen(t, f, `{"prompt":"x","seed":"5"}`) }, 400, "seed"},
		{"nine images", func() result { return jsonGen(t, f, `{"prompt":"x","num_images":9}`) }, 400, "num_images"},
		{"bad magic prompt", func() result { return jsonGen(t, f, `{"prompt":"x","magic_prompt_option":"MAYBE"}`) }, 400, "magic_prompt_option"},
		{"remix without image_request", func() result { return post(t, f, "/remix", file("image_file", img)) }, 400, "image_request"},
		{"remix without image", func() result { return post(t, f, "/remix", field("image_request", `{"prompt":"x"}`)) }, 400, "image_file"},
		{"remix image_weight range", func() result {
			return post(t, f, "/remix", field("image_request", `{"prompt":"x","image_weight":0}`), file("image_file", img))
		}, 400, "image_weight"},
		{"remix with a non-image", func() result {
			return post(t, f, "/remix", field("image_request", `{"prompt":"x"}`), file("image_file", []byte("GIF89a....")))
		}, 400, "image_file"},
		{"edit on V_2A", func() result {
			return post(t, f, "/edit", field("prompt", "x"), field("model", "V_2A"), file("image_file", img), file("mask", bw))
		}, 400, "V_2"},
		{"edit with a grey mask", func() result {
			return post(t, f, "/edit", field("prompt", "x"), field("model", "V_2"), file("image_file", img), file("mask", img))
		}, 400, "black and white"},
		{"edit with a white mask", func() result {
			return post(t, f, "/edit", field("prompt", "x"), field("model", "V_2"), file("image_file", img), file("mask", pngOf(t, 8, 8, white)))
		}, 400, "all white"},
		{"edit with a mask of another size", func() result {
			return post(t, f, "/edit", field("prompt", "x"), field("model", "V_2"), file("image_file", img), file("mask", pngOf(t, 8, 4, halfB)))
		}, 400, "same dimensions"},
		{"edit with image_request", func() result {
			return post(t, f, "/edit", field("image_request", "{}"), field("prompt", "x"), field("model", "V_2"), file("image_file", img), file("mask", bw))
		}, 400, "image_request"},
		{"upscale unknown member", func() result {
			return post(t, f, "/upscale", field("image_request", `{"style_type":"AUTO"}`), file("image_file", img))
		}, 400, "style_type"},
		{"reframe without resolution", func() result {
			return post(t, f, "/reframe", field("model", "V_2"), file("image_file", img))
		}, 400, "resolution"},
		{"reframe on V_1", func() result {
			return post(t, f, "/reframe", field("model", "V_1"), field("resolution", "RESOLUTION_1024_1024"), file("image_file", img))
		}, 400, "V_2"},
		{"describe bad version", func() result {
			return post(t, f, "/describe", field("describe_model_version", "V_9"), file("image_file", img))
		}, 400, "describe_model_version"},
		{"3.0 as JSON on remix", func() result {
			return do(t, f, "/v1/ideogram-v3/remix", "application/json", strings.NewReader(`{"prompt":"x"}`), DefaultKey)
		}, 400, "multipart"},
		{"3.0 image_file instead of image", func() result {
			return post(t, f, "/v1/ideogram-v3/remix", field("prompt", "x"), file("image_file", img))
		}, 400, "image_file"},
		{"3.0 magic_prompt_option", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("magic_prompt_option", "ON"))
		}, 400, "magic_prompt_option"},
		{"3.0 legacy resolution", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("resolution", "1280x720"))
		}, 400, "resolution"},
		{"3.0 legacy ratio", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("aspect_ratio", "ASPECT_16_9"))
		}, 400, "aspect_ratio"},
		{"3.0 bad speed", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("rendering_speed", "FAST"))
		}, 400, "rendering_speed"},
		{"3.0 style codes with style type", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("style_codes", "01234567"), field("style_type", "AUTO"))
		}, 400, "style_codes"},
		{"3.0 style codes with references", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("style_codes", "01234567"), file("style_reference_images", img))
		}, 400, "style_codes"},
		{"3.0 bad preset", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("style_preset", "SEPIA"))
		}, 400, "style_preset"},
		{"3.0 repeated prompt", func() result {
			return post(t, f, "/v1/ideogram-v3/generate", field("prompt", "x"), field("prompt", "y"))
		}, 400, "prompt"},
		{"3.0 edit without mask", func() result {
			return post(t, f, "/v1/ideogram-v3/edit", field("prompt", "x"), file("image", img))
		}, 400, "mask"},
		{"3.0 reframe without resolution", func() result {
			return post(t, f, "/v1/ideogram-v3/reframe", file("image", img))
		}, 400, "resolution"},
		{"3.0 replace background without prompt", func() result {
			return post(t, f, "/v1/ideogram-v3/replace-background", file("image", img))
		}, 400, "prompt"},
		{"3.0 replace background with negative_prompt", func() result {
			return post(t, f, "/v1/ideogram-v3/replace-background", field("prompt", "x"), field("negative_prompt", "y"), file("image", img))
		}, 400, "negative_prompt"},
		{"422 trigger", func() result { return jsonGen(t, f, `{"prompt":"something FORBIDDEN"}`) }, 422, "safety check"},
		{"unknown path", func() result { return post(t, f, "/v2/generate", field("prompt", "x")) }, 404, "Not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.do()
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			if msg := r.errorText(t); !strings.Contains(msg, tc.says) {
				t.Fatalf("error %q does not mention %q", msg, tc.says)
			}
		})
	}
}

func TestLenientAndOutputs(t *testing.T) {
	f := New(Options{})
	img := pngOf(t, 8, 6, grey)
	mask := pngOf(t, 8, 6, halfB)
	// Seed 002's V3 edit example sends aspect_ratio and negative_prompt; the schema has neither.
	r := post(t, f, "/v1/ideogram-v3/edit", field("prompt", "x"), field("aspect_ratio", "16x9"), field("negative_prompt", "y"),
		file("image", img), file("mask", mask))
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"resolution":"8x6"`)) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = post(t, f, "/upscale", field("image_request", "{}"), file("image_file", img))
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"resolution":"8x6","upscaled_resolution":"16x12"`)) {
		t.Fatalf("upscale: %d %s", r.status, r.body)
	}
	r = post(t, f, "/describe", file("image_file", img))
	if r.status != 200 || !bytes.Contains(r.body, []byte(`{"descriptions":[{"text":"A 8x6 image`)) {
		t.Fatalf("describe: %d %s", r.status, r.body)
	}
	r = do(t, f, "/v1/ideogram-v3/generate", "application/json", strings.NewReader(`{"prompt":"x","aspect_ratio":"4x5","num_images":2}`), DefaultKey)
	if r.status != 200 || bytes.Count(r.body, []byte(`"resolution":"896x1120"`)) != 2 {
		t.Fatalf("JSON 3.0 generate: %d %s", r.status, r.body)
	}
	r = jsonGen(t, f, `{"prompt":"an Unsafe one","num_images":2}`)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"is_image_safe":false`)) || bytes.Count(r.body, []byte(`"url":null`)) != 1 {
		t.Fatalf("unsafe: %s", r.body)
	}
}

func TestImagesExpire(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	f := New(Options{Now: func() time.Time { return now }, URLTTL: time.Minute})
	srv := httptest.NewServer(f)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/generate", strings.NewReader(`{"image_request":{"prompt":"x","seed":3}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Api-Key", DefaultKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data []struct {
			URL string `json:"url"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	u := out.Data[0].URL
	if !strings.HasPrefix(u, srv.URL+"/api/images/ephemeral/") {
		t.Fatalf("url %q is not served by the fake", u)
	}
	get := func() (int, []byte) {
		resp, err := srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, b := get()
	if st != 200 || !bytes.Equal(b, PNG(3, 1024, 1024)) {
		t.Fatalf("download: %d", st)
	}
	if f.Calls() != 1 {
		t.Fatalf("image downloads were counted as API calls: %d", f.Calls())
	}
	now = now.Add(time.Minute)
	if st, _ := get(); st != http.StatusForbidden {
		t.Fatalf("expired link answered %d", st)
	}
}

func TestScriptAndLatency(t *testing.T) {
	f := New(Options{Latency: 50 * time.Millisecond})
	f.Script.Push(providertest.Fault{Status: 503, Body: `{"error":"down"}`})
	if r := jsonGen(t, f, `{"prompt":"x"}`); r.status != 503 {
		t.Fatalf("scripted fault: %d", r.status)
	}
	start := time.Now()
	if r := jsonGen(t, f, `{"prompt":"x"}`); r.status != 200 {
		t.Fatalf("after the fault: %d %s", r.status, r.body)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("latency was not applied")
	}
}

// TestSeedRepeatsAcrossABatch: as seed 002 warns ("单次生成多张图时不要使用 seed,否则会生成相同图像",
// do not use seed when generating several images in one call, or the images will be identical),
// a seeded call of several images answers the same seed and the same picture for each; without a
// seed, each image has its own.
func TestSeedRepeatsAcrossABatch(t *testing.T) {
	f := New(Options{PublicURL: "http://sim.example"})
	images := func(r result) (seeds []int64, pics [][]byte) {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var out struct {
			Data []struct {
				Seed int64  `json:"seed"`
				URL  string `json:"url"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil || len(out.Data) != 3 {
			t.Fatalf("%v %s", err, r.body)
		}
		for _, d := range out.Data {
			req := httptest.NewRequest(http.MethodGet, strings.TrimPrefix(d.URL, "http://sim.example"), nil)
			rec := httptest.NewRecorder()
			f.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("download %s: %d", d.URL, rec.Code)
			}
			seeds, pics = append(seeds, d.Seed), append(pics, rec.Body.Bytes())
		}
		return seeds, pics
	}
	for name, call := range map[string]func(seed string) result{
		"legacy": func(seed string) result {
			return jsonGen(t, f, `{"prompt":"a cat","model":"V_2","num_images":3`+seed+`}`)
		},
		"3.0": func(seed string) result {
			parts := []part{field("prompt", "a cat"), field("num_images", "3")}
			if seed != "" {
				parts = append(parts, field("seed", strings.TrimPrefix(seed, `,"seed":`)))
			}
			return post(t, f, "/v1/ideogram-v3/generate", parts...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			seeds, pics := images(call(`,"seed":1234`))
			for i := range seeds {
				if seeds[i] != 1234 || !bytes.Equal(pics[i], pics[0]) {
					t.Fatalf("seeded batch: image %d has seed %d and is the same picture: %v", i, seeds[i], bytes.Equal(pics[i], pics[0]))
				}
			}
			seeds, pics = images(call(""))
			if seeds[0] == seeds[1] || seeds[1] == seeds[2] || bytes.Equal(pics[0], pics[1]) {
				t.Fatalf("unseeded batch repeats: seeds %v", seeds)
			}
		})
	}
}
