package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/webp"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newServer(t *testing.T, f *Fake) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, a.body)
	}
	return m
}

// errorOf returns the error member's fields.
func (a answer) errorOf(t *testing.T) (typ, param, code string) {
	t.Helper()
	e, ok := a.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error envelope: %s", a.body)
	}
	s := func(k string) string { v, _ := e[k].(string); return v }
	return s("type"), s("param"), s("code")
}

func do(t *testing.T, srv *httptest.Server, key, path, ct string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func gen(t *testing.T, srv *httptest.Server, body string) answer {
	t.Helper()
	return do(t, srv, DefaultKey, "/v1/images/generations", "application/json", []byte(body))
}

func makePNG(t *testing.T, w, h int, alpha bool) []byte {
	t.Helper()
	var img image.Image
	if alpha {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		m.Set(0, 0, color.NRGBA{A: 0})
		img = m
	} else {
		img = image.NewRGBA(image.Rect(0, 0, w, h)) // fully opaque → encoded as RGB
		for i := 3; i < len(img.(*image.RGBA).Pix); i += 4 {
			img.(*image.RGBA).Pix[i] = 255
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type filePart struct {
	name, filename, ct string
	data               []byte
}

func multipartBody(t *testing.T, fields map[string]string, files ...filePart) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+f.name+`"; filename="`+f.filename+`"`)
		h.Set("Content-Type", f.ct)
		p, _ := w.CreatePart(h)
		_, _ = p.Write(f.data)
	}
	_ = w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func TestAuth(t *testing.T) {
	srv := newServer(t, New(Options{}))
	a := do(t, srv, "", "/v1/images/generations", "application/json", []byte(`{"prompt":"cat"}`))
	if a.status != 401 {
		t.Fatalf("no key: status %d", a.status)
	}
	a = do(t, srv, "sk-wrong-key-123456", "/v1/images/generations", "application/json", []byte(`{"prompt":"cat"}`))
	typ, _, code := a.errorOf(t)
	if a.status != 401 || typ != "invalid_request_error" || code != "invalid_api_key" {
		t.Fatalf("wrong key: %d %s", a.status, a.body)
	}
	if strings.Contains(string(a.body), "sk-wrong-key-123456") {
		t.Fatal("the 401 echoes the whole key")
	}
	if a := gen(t, srv, `{"prompt":"cat"}`); a.status != 200 {
		t.Fatalf("right key: %d %s", a.status, a.body)
	}
}

func TestGenerationValidation(t *testing.T) {
	srv := newServer(t, New(Options{}))
	cases := []struct {
		name, body        string
		status            int
		typ, param, code  string
		contentTypeHeader string
	}{
		{name: "not json", body: `prompt=cat`, status: 400, typ: "invalid_request_error", contentTypeHeader: "application/x-www-form-urlencoded"},
		{name: "missing prompt", body: `{"model":"dall-e-3"}`, status: 400, typ: "invalid_request_error", param: "prompt", code: "missing_required_parameter"},
		{name: "unknown field", body: `{"prompt":"cat","steps":4}`, status: 400, typ: "invalid_request_error", param: "steps", code: "unknown_parameter"},
		{name: "bad type", body: `{"prompt":"cat","n":"2"}`, status: 400, typ: "invalid_request_error", param: "n", code: "invalid_type"},
		{name: "unknown model", body: `{"prompt":"cat","model":"dall-e-9"}`, status: 400, param: "model", typ: "invalid_request_error", code: "invalid_value"},
		{name: "n too big", body: `{"prompt":"cat","n":11}`, status: 400, typ: "invalid_request_error", param: "n", code: "integer_above_max_value"},
		{name: "dall-e-3 n=2", body: `{"prompt":"cat","model":"dall-e-3","n":2}`, status: 400, typ: "invalid_request_error"},
		{name: "dall-e-3 size", body: `{"prompt":"cat","model":"dall-e-3","size":"512x512"}`, status: 400, typ: "invalid_request_error", param: "size", code: "invalid_value"},
		{name: "dall-e-2 style", body: `{"prompt":"cat","model":"dall-e-2","style":"vivid"}`, status: 400, typ: "invalid_request_error", param: "style", code: "unknown_parameter"},
		{name: "gpt response_format", body: `{"prompt":"cat","model":"gpt-image-1","response_format":"url"}`, status: 400, typ: "invalid_request_error", param: "response_format", code: "unknown_parameter"},
		{name: "dall-e background", body: `{"prompt":"cat","model":"dall-e-3","background":"opaque"}`, status: 400, typ: "invalid_request_error", param: "background", code: "unknown_parameter"},
		{name: "gpt quality hd", body: `{"prompt":"cat","model":"gpt-image-1","quality":"hd"}`, status: 400, typ: "invalid_request_error", param: "quality", code: "invalid_value"},
		{name: "png compression", body: `{"prompt":"cat","model":"gpt-image-1","output_compression":50}`, status: 400, typ: "invalid_request_error", param: "output_compression", code: "invalid_value"},
		{name: "transparent jpeg", body: `{"prompt":"cat","model":"gpt-image-1","background":"transparent","output_format":"jpeg"}`, status: 400, typ: "invalid_request_error", param: "background", code: "invalid_value"},
		{name: "dall-e-2 prompt too long", body: `{"prompt":"` + strings.Repeat("a", 1001) + `"}`, status: 400, typ: "invalid_request_error", param: "prompt", code: "string_above_max_length"},
		{name: "dall-e policy", body: `{"prompt":"cat ` + ContentPolicyTrigger + `","model":"dall-e-3"}`, status: 400, typ: "invalid_request_error", code: "content_policy_violation"},
		{name: "gpt policy", body: `{"prompt":"cat ` + ContentPolicyTrigger + `","model":"gpt-image-1"}`, status: 400, typ: "image_generation_user_error", code: "moderation_blocked"},
		{name: "partial_images without stream", body: `{"prompt":"cat","model":"gpt-image-1","partial_images":2}`, status: 400, typ: "invalid_request_error", param: "partial_images", code: "invalid_value"},
		{name: "partial_images out of range", body: `{"prompt":"cat","model":"gpt-image-1","stream":true,"partial_images":4}`, status: 400, typ: "invalid_request_error", param: "partial_images", code: "integer_above_max_value"},
		{name: "stream on dall-e", body: `{"prompt":"cat","model":"dall-e-3","stream":true}`, status: 400, typ: "invalid_request_error", param: "stream", code: "unknown_parameter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentTypeHeader
			if ct == "" {
				ct = "application/json"
			}
			a := do(t, srv, DefaultKey, "/v1/images/generations", ct, []byte(tc.body))
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			typ, param, code := a.errorOf(t)
			if typ != tc.typ || param != tc.param || code != tc.code {
				t.Fatalf("got type=%q param=%q code=%q, want %q %q %q: %s", typ, param, code, tc.typ, tc.param, tc.code, a.body)
			}
		})
	}
}

func TestDallEURLsExpire(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f := New(Options{Now: clk.Now})
	srv := newServer(t, f)
	a := gen(t, srv, `{"prompt":"a red fox","model":"dall-e-3","size":"1792x1024","style":"natural"}`)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if !bytes.Contains(a.body, []byte(`\u0026`)) {
		t.Fatalf("the signed URL's '&' is not serialized as \\u0026: %s", a.body)
	}
	var resp imagesResponse
	if err := json.Unmarshal(a.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Created != clk.Now().Unix() || len(resp.Data) != 1 || resp.Data[0].RevisedPrompt == "" {
		t.Fatalf("unexpected answer %+v", resp)
	}
	u := resp.Data[0].URL
	if !strings.HasPrefix(u, srv.URL+"/private/") || strings.Count(u, "&") < 3 {
		t.Fatalf("URL %q", u)
	}
	get := func(u string) (int, []byte) {
		resp, err := srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, b := get(u)
	if st != 200 {
		t.Fatalf("download: %d %s", st, b)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != 1792 || cfg.Height != 1024 {
		t.Fatalf("image: %v %+v", err, cfg)
	}
	if st, _ := get(strings.Replace(u, "sig=", "sig=x", 1)); st != 403 {
		t.Fatalf("tampered signature: %d", st)
	}
	clk.Add(59 * time.Minute)
	if st, _ := get(u); st != 200 {
		t.Fatalf("after 59 minutes: %d", st)
	}
	clk.Add(time.Minute)
	if st, b := get(u); st != 403 || !bytes.Contains(b, []byte("AuthenticationFailed")) {
		t.Fatalf("after 60 minutes: %d %s", st, b)
	}
	// Deterministic: the same request gives the same picture.
	a2 := gen(t, srv, `{"prompt":"a red fox","model":"dall-e-3","size":"1792x1024","style":"natural","response_format":"b64_json"}`)
	var r2 imagesResponse
	_ = json.Unmarshal(a2.body, &r2)
	if r2.Data[0].B64JSON != base64.StdEncoding.EncodeToString(b) {
		t.Fatal("the same request gave a different image")
	}
}

func TestGPTImageFormats(t *testing.T) {
	srv := newServer(t, New(Options{}))
	for _, tc := range []struct{ body, format string }{
		{`{"prompt":"cat","model":"gpt-image-1","size":"1536x1024","quality":"low"}`, "png"},
		{`{"prompt":"cat","model":"gpt-image-1","output_format":"jpeg","output_compression":60,"size":"1024x1024"}`, "jpeg"},
		{`{"prompt":"cat","model":"gpt-image-1-mini","output_format":"webp","background":"transparent","size":"1024x1536","n":2}`, "webp"},
	} {
		a := gen(t, srv, tc.body)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", tc.body, a.status, a.body)
		}
		var resp imagesResponse
		if err := json.Unmarshal(a.body, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Usage == nil || resp.OutputFormat != tc.format || resp.Size == "" || resp.Quality == "" {
			t.Fatalf("missing gpt-image fields: %s", a.body)
		}
		for _, d := range resp.Data {
			if d.URL != "" || d.B64JSON == "" {
				t.Fatalf("gpt-image must answer base64 only: %s", a.body)
			}
			b, _ := base64.StdEncoding.DecodeString(d.B64JSON)
			var cfg image.Config
			var err error
			if tc.format == "webp" {
				cfg, err = webp.DecodeConfig(bytes.NewReader(b))
				if err == nil && cfg.ColorModel != color.NRGBAModel {
					t.Fatalf("transparent webp has colour model %T", cfg.ColorModel)
				}
			} else {
				var f string
				cfg, f, err = image.DecodeConfig(bytes.NewReader(b))
				if err == nil && f != tc.format {
					t.Fatalf("format %s, want %s", f, tc.format)
				}
			}
			if err != nil {
				t.Fatalf("%s does not decode: %v", tc.format, err)
			}
			if got := resp.Size; got != sizeOf(cfg) {
				t.Fatalf("size %s, image %s", got, sizeOf(cfg))
			}
		}
	}
}

func sizeOf(c image.Config) string {
	return strings.Join([]string{itoa(c.Width), itoa(c.Height)}, "x")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestEdits(t *testing.T) {
	f := New(Options{})
	srv := newServer(t, f)
	sq := makePNG(t, 64, 64, true)
	opaque := makePNG(t, 64, 64, false)
	wide := makePNG(t, 96, 64, true)
	mask := makePNG(t, 64, 64, true)
	edit := func(fields map[string]string, files ...filePart) answer {
		ct, body := multipartBody(t, fields, files...)
		return do(t, srv, DefaultKey, "/v1/images/edits", ct, body)
	}
	png1 := func(name string, data []byte) filePart { return filePart{name, "x.png", "image/png", data} }

	if a := do(t, srv, DefaultKey, "/v1/images/edits", "application/json", []byte(`{"prompt":"x"}`)); a.status != 400 {
		t.Fatalf("JSON edit accepted: %d", a.status)
	}
	ok := edit(map[string]string{"prompt": "add a hat", "model": "dall-e-2", "n": "2", "size": "256x256"}, png1("image", sq))
	if ok.status != 200 {
		t.Fatalf("dall-e-2 edit: %d %s", ok.status, ok.body)
	}
	if got := f.LastRequest(); got.Path != "/v1/images/edits" || !strings.HasPrefix(got.Header.Get("Content-Type"), "multipart/form-data") {
		t.Fatalf("LastRequest = %s %s", got.Path, got.Header.Get("Content-Type"))
	}
	var resp imagesResponse
	_ = json.Unmarshal(ok.body, &resp)
	if len(resp.Data) != 2 || resp.Data[0].URL == "" {
		t.Fatalf("dall-e-2 edit answer %s", ok.body)
	}
	cases := []struct {
		name          string
		fields        map[string]string
		files         []filePart
		param, code   string
		wantStatus200 bool
	}{
		{"dall-e-2 no alpha without mask", map[string]string{"prompt": "x"}, []filePart{png1("image", opaque)}, "image", "invalid_image_format", false},
		{"dall-e-2 opaque with mask", map[string]string{"prompt": "x"}, []filePart{png1("image", opaque), png1("mask", mask)}, "", "", true},
		{"dall-e-2 not square", map[string]string{"prompt": "x"}, []filePart{png1("image", wide)}, "image", "invalid_image_dimensions", false},
		{"dall-e-2 two images", map[string]string{"prompt": "x"}, []filePart{png1("image[]", sq), png1("image[]", sq)}, "image", "", false},
		{"dall-e-3 edit", map[string]string{"prompt": "x", "model": "dall-e-3"}, []filePart{png1("image", sq)}, "model", "invalid_value", false},
		{"octet-stream", map[string]string{"prompt": "x", "model": "gpt-image-1"}, []filePart{{"image", "x.png", "application/octet-stream", sq}}, "image", "unsupported_file_mimetype", false},
		{"declared jpeg is png", map[string]string{"prompt": "x", "model": "gpt-image-1"}, []filePart{{"image", "x.jpg", "image/jpeg", sq}}, "image", "invalid_image_file", false},
		{"mask size", map[string]string{"prompt": "x", "model": "gpt-image-1"}, []filePart{png1("image[]", wide), png1("image[]", sq), png1("mask", mask)}, "mask", "invalid_image_dimensions", false},
		{"mask no alpha", map[string]string{"prompt": "x", "model": "gpt-image-1"}, []filePart{png1("image", sq), png1("mask", opaque)}, "mask", "invalid_image_format", false},
		{"gpt several images", map[string]string{"prompt": "x", "model": "gpt-image-1", "input_fidelity": "high", "quality": "low"}, []filePart{png1("image[]", wide), png1("image[]", sq)}, "", "", true},
		{"mini input_fidelity", map[string]string{"prompt": "x", "model": "gpt-image-1-mini", "input_fidelity": "high"}, []filePart{png1("image", sq)}, "input_fidelity", "invalid_value", false},
		{"response_format gpt", map[string]string{"prompt": "x", "model": "gpt-image-1", "response_format": "b64_json"}, []filePart{png1("image", sq)}, "response_format", "unknown_parameter", false},
		{"no image", map[string]string{"prompt": "x"}, nil, "image", "missing_required_parameter", false},
		{"image as text", map[string]string{"prompt": "x", "image": "abc"}, nil, "image", "invalid_type", false},
		{"n as text", map[string]string{"prompt": "x", "n": "two"}, []filePart{png1("image", sq)}, "n", "invalid_type", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := edit(tc.fields, tc.files...)
			if tc.wantStatus200 {
				if a.status != 200 {
					t.Fatalf("%d %s", a.status, a.body)
				}
				return
			}
			_, param, code := a.errorOf(t)
			if a.status != 400 || param != tc.param || code != tc.code {
				t.Fatalf("got %d param=%q code=%q, want 400 %q %q: %s", a.status, param, code, tc.param, tc.code, a.body)
			}
		})
	}
}

func TestVariations(t *testing.T) {
	srv := newServer(t, New(Options{}))
	vary := func(fields map[string]string, files ...filePart) answer {
		ct, body := multipartBody(t, fields, files...)
		return do(t, srv, DefaultKey, "/v1/images/variations", ct, body)
	}
	sq := makePNG(t, 32, 32, false)
	if a := vary(map[string]string{"n": "3", "response_format": "b64_json"}, filePart{"image", "a.png", "image/png", sq}); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if a := vary(map[string]string{"prompt": "x"}, filePart{"image", "a.png", "image/png", sq}); a.status != 400 {
		t.Fatalf("prompt accepted: %d", a.status)
	}
	if a := vary(map[string]string{"model": "gpt-image-1"}, filePart{"image", "a.png", "image/png", sq}); a.status != 400 {
		t.Fatalf("gpt-image-1 variation accepted: %d", a.status)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	srv := newServer(t, New(Options{}))
	resp, err := srv.Client().Get(srv.URL + "/v1/images/generations")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET generations: %d", resp.StatusCode)
	}
	if a := do(t, srv, DefaultKey, "/v1/chat/completions", "application/json", []byte(`{}`)); a.status != 404 {
		t.Fatalf("unknown path: %d", a.status)
	}
}

func TestPublicURLBehindStripPrefix(t *testing.T) {
	f := New(Options{})
	mux := http.NewServeMux()
	mux.Handle("/openai/", http.StripPrefix("/openai", f))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := do(t, srv, DefaultKey, "/openai/v1/images/generations", "application/json", []byte(`{"prompt":"cat","size":"256x256"}`))
	var resp imagesResponse
	_ = json.Unmarshal(a.body, &resp)
	if len(resp.Data) != 1 || !strings.HasPrefix(resp.Data[0].URL, srv.URL+"/openai/private/") {
		t.Fatalf("answer %s", a.body)
	}
	r, err := srv.Client().Get(resp.Data[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("download through the prefix: %d", r.StatusCode)
	}
	f2 := New(Options{PublicURL: "http://sim.example:9090/openai/"})
	srv2 := newServer(t, f2)
	a = gen(t, srv2, `{"prompt":"cat","size":"256x256"}`)
	_ = json.Unmarshal(a.body, &resp)
	if !strings.HasPrefix(resp.Data[0].URL, "http://sim.example:9090/openai/private/") {
		t.Fatalf("PublicURL ignored: %s", resp.Data[0].URL)
	}
}

func TestCompatible(t *testing.T) {
	f := NewCompatible(Options{})
	srv := newServer(t, f)
	post := func(body string) answer {
		return do(t, srv, DefaultCompatibleKey, "/v1/images/generations", "application/json", []byte(body))
	}
	a := post(`{"model":"flux-1.1-pro","prompt":"cat","negative_prompt":"blur","width":1024,"height":768,"num_inference_steps":50,"guidance_scale":7.5,"seed":42}`)
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var r1 imagesResponse
	_ = json.Unmarshal(a.body, &r1)
	if len(r1.Data) != 1 || !strings.Contains(r1.Data[0].URL, "/files/img-1024x768-") {
		t.Fatalf("answer %s", a.body)
	}
	b64 := func(body string) string {
		a := post(body)
		var r imagesResponse
		_ = json.Unmarshal(a.body, &r)
		if len(r.Data) == 0 {
			t.Fatalf("%s: %s", body, a.body)
		}
		return r.Data[0].B64JSON
	}
	s42 := b64(`{"model":"flux-dev","prompt":"cat","seed":42,"response_format":"b64_json"}`)
	if s42 != b64(`{"model":"flux-dev","prompt":"cat","seed":42,"response_format":"b64_json"}`) {
		t.Fatal("the same seed gave different images")
	}
	if s42 == b64(`{"model":"flux-dev","prompt":"cat","seed":43,"response_format":"b64_json"}`) {
		t.Fatal("different seeds gave the same image")
	}
	for _, tc := range []struct{ body, param, code string }{
		{`{"prompt":"cat"}`, "model", "missing_required_parameter"},
		{`{"model":"flux-9","prompt":"cat"}`, "model", "invalid_value"},
		{`{"model":"flux-dev","prompt":"cat","width":1020,"height":1024}`, "width", "invalid_value"},
		{`{"model":"flux-dev","prompt":"cat","width":2048,"height":1024}`, "width", "integer_above_max_value"},
		{`{"model":"flux-dev","prompt":"cat","width":512}`, "height", "missing_required_parameter"},
		{`{"model":"flux-dev","prompt":"cat","num_inference_steps":0}`, "num_inference_steps", "integer_below_min_value"},
		{`{"model":"flux-dev","prompt":"cat","seed":-1}`, "seed", "integer_below_min_value"},
		{`{"model":"dall-e-3","prompt":"cat","seed":1}`, "seed", "unsupported_parameter"},
		{`{"model":"dall-e-3","prompt":"cat","width":1024,"height":1792}`, "size", "invalid_value"},
		{`{"model":"flux-dev","prompt":"cat","steps":4}`, "steps", "unknown_parameter"},
	} {
		a := post(tc.body)
		_, param, code := a.errorOf(t)
		if a.status != 400 || param != tc.param || code != tc.code {
			t.Errorf("%s: got %d %q %q, want 400 %q %q: %s", tc.body, a.status, param, code, tc.param, tc.code, a.body)
		}
	}
	if a := do(t, srv, DefaultKey, "/v1/images/generations", "application/json", []byte(`{"model":"flux-dev","prompt":"cat"}`)); a.status != 401 {
		t.Fatalf("the OpenAI fake's key works on the compatible fake: %d", a.status)
	}
	if a := do(t, srv, DefaultCompatibleKey, "/v1/images/edits", "application/json", nil); a.status != 404 {
		t.Fatalf("compatible fake serves edits: %d", a.status)
	}
}

func TestWebPEncoderSizes(t *testing.T) {
	for i, s := range [][2]int{{1, 1}, {300, 200}, {16384, 1}} {
		alpha := uint8(255)
		if i == 1 {
			alpha = 0
		}
		b := encodeWebP(s[0], s[1], color.NRGBA{R: 10, G: 20, B: 30, A: alpha})
		img, err := webp.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if got := img.Bounds().Size(); got.X != s[0] || got.Y != s[1] {
			t.Fatalf("size %v, want %v", got, s)
		}
		r, g, bl, a := img.At(s[0]-1, s[1]-1).RGBA()
		if alpha == 0 {
			if a != 0 {
				t.Fatalf("transparent pixel has alpha %d", a)
			}
			continue
		}
		if r>>8 != 10 || g>>8 != 20 || bl>>8 != 30 || a>>8 != 255 {
			t.Fatalf("colour %d %d %d %d", r>>8, g>>8, bl>>8, a>>8)
		}
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	srv := newServer(t, New(Options{Latency: 10 * time.Second}))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/images/generations", strings.NewReader(`{"prompt":"cat"}`))
	req.Header.Set("Authorization", "Bearer "+DefaultKey)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	if _, err := client.Do(req); err == nil {
		t.Fatal("want a timeout")
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("latency ignored the client going away")
	}
}
