package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
	"github.com/imagegw/imagegw/providers/providertest"
)

func newServer(t *testing.T, o Options) (*Fake, *httptest.Server) {
	t.Helper()
	f := New(o)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func TestRules(t *testing.T) {
	_, srv := newServer(t, Options{})
	img := arktest.PNGDataURI(t, 40, 30)
	const (
		dev   = "black-forest-labs/FLUX.1-dev"
		pro   = "black-forest-labs/flux-kontext-pro"
		multi = "black-forest-labs/Flux-Kontext-Max-multi"
		t2i   = "black-forest-labs/flux-kontext-pro/text-to-image"
		step  = "stepfun-ai/Step1X-Edit"
	)
	cases := []struct {
		name    string
		key, ct string
		body    string
		status  int
		code    string
		detail  string
	}{
		{"no key", "-", "application/json", `{"model":"` + dev + `","prompt":"p"}`, 401, "auth_error", "Validate Certification failed"},
		{"wrong key", "nope", "application/json", `{"model":"` + dev + `","prompt":"p"}`, 401, "auth_error", ""},
		{"multipart", "", "multipart/form-data; boundary=x", "--x--", 400, "param_error", "application/json"},
		{"unknown field", "", "application/json", `{"model":"` + dev + `","prompt":"p","quality":"hd"}`, 400, "param_error", "unknown field"},
		{"wrong type", "", "application/json", `{"model":"` + dev + `","prompt":"p","n":"2"}`, 400, "param_error", "n has the wrong type"},
		{"unknown model", "", "application/json", `{"model":"black-forest-labs/FLUX.1-dev ","prompt":"p"}`, 400, "model_error", "No permission to use the model"},
		{"no prompt", "", "application/json", `{"model":"` + dev + `"}`, 400, "param_error", "prompt is required"},
		{"n 5", "", "application/json", `{"model":"` + dev + `","prompt":"p","n":5}`, 400, "param_error", "n must be between 1 and 4"},
		{"n on kontext", "", "application/json", `{"model":"` + pro + `","prompt":"p","image":"` + img + `","n":2}`, 400, "param_error", "n is not supported"},
		{"size range", "", "application/json", `{"model":"` + dev + `","prompt":"p","size":"1537x512"}`, 400, "param_error", "between 256x256 and 1536x1536"},
		{"size on step1x", "", "application/json", `{"model":"` + step + `","prompt":"p","image":"` + img + `","size":"512x512"}`, 400, "param_error", "size is not supported"},
		{"strength range", "", "application/json", `{"model":"` + dev + `","prompt":"p","strength":1.1}`, 400, "param_error", "strength"},
		{"strength on kontext", "", "application/json", `{"model":"` + pro + `","prompt":"p","image":"` + img + `","strength":0.5}`, 400, "param_error", "strength is not supported"},
		{"kontext without image", "", "application/json", `{"model":"` + pro + `","prompt":"p"}`, 400, "param_error", "image is required"},
		{"multi without images", "", "application/json", `{"model":"` + multi + `","prompt":"p"}`, 400, "param_error", "images is required"},
		{"multi with image", "", "application/json", `{"model":"` + multi + `","prompt":"p","image":"` + img + `"}`, 400, "param_error", "image is not supported"},
		{"images on dev", "", "application/json", `{"model":"` + dev + `","prompt":"p","images":["` + img + `"]}`, 400, "param_error", "images is not supported"},
		{"image on text2image", "", "application/json", `{"model":"` + t2i + `","prompt":"p","image":"` + img + `"}`, 400, "param_error", "image is not supported"},
		{"bad ratio", "", "application/json", `{"model":"` + t2i + `","prompt":"p","aspect_ratio":"5:4"}`, 400, "param_error", "aspect_ratio must be one of"},
		{"ratio on dev", "", "application/json", `{"model":"` + dev + `","prompt":"p","aspect_ratio":"1:1"}`, 400, "param_error", "aspect_ratio is not supported"},
		{"steps range", "", "application/json", `{"model":"` + step + `","prompt":"p","image":"` + img + `","steps":0}`, 400, "param_error", "steps must be between 1 and 50"},
		{"steps on kontext", "", "application/json", `{"model":"` + pro + `","prompt":"p","image":"` + img + `","steps":10}`, 400, "param_error", "steps is not supported"},
		{"negative prompt on dev", "", "application/json", `{"model":"` + dev + `","prompt":"p","negative_prompt":"x"}`, 400, "param_error", "negative_prompt is not supported"},
		{"seed range", "", "application/json", `{"model":"` + dev + `","prompt":"p","seed":2147483648}`, 400, "param_error", "seed must be between"},
		{"guidance range", "", "application/json", `{"model":"` + t2i + `","prompt":"p","guidance_scale":11}`, 400, "param_error", "guidance_scale must be between"},
		{"response format", "", "application/json", `{"model":"` + dev + `","prompt":"p","response_format":"png"}`, 400, "param_error", "response_format"},
		{"not an image", "", "application/json", `{"model":"` + pro + `","prompt":"p","image":"data:image/png;base64,aGVsbG8="}`, 400, "param_error", "not a supported image"},
		{"sensitive", "", "application/json", `{"model":"` + dev + `","prompt":"fake:sensitive"}`, 400, "sensitive_check_error", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			switch key {
			case "":
				key = DefaultKey
			case "-":
				key = ""
			}
			a := arktest.Post(t, srv, GenerationsPath, key, tc.ct, tc.body)
			if a.Status != tc.status || a.ErrField("code") != tc.code || !strings.Contains(a.ErrField("message"), tc.detail) {
				t.Fatalf("got %d %s %q: %s", a.Status, a.ErrField("code"), a.ErrField("message"), a.Raw)
			}
			if id := a.ErrField("param"); id == "" || id != a.Header.Get("X-Request-Id") {
				t.Fatalf("param %q is not the request id %q", id, a.Header.Get("X-Request-Id"))
			}
		})
	}
}

func TestSuccessShapes(t *testing.T) {
	c := arktest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	f, srv := newServer(t, Options{Now: c.Now})
	a := arktest.Post(t, srv, GenerationsPath, DefaultKey, "application/json", `{"model":"black-forest-labs/flux.1-dev","prompt":"p","n":2,"size":"512x256","seed":3}`)
	var resp struct {
		Created int64
		Data    []struct {
			URL     string `json:"url"`
			B64JSON string `json:"b64_json"`
		}
		Usage map[string]any
	}
	if err := json.Unmarshal(a.Raw, &resp); err != nil || a.Status != 200 {
		t.Fatalf("%d %v %s", a.Status, err, a.Raw)
	}
	if resp.Created != c.Now().Unix() || len(resp.Data) != 2 || resp.Usage["input_tokens_details"] == nil {
		t.Fatalf("answer %s", a.Raw)
	}
	if !bytes.Contains(a.Raw, []byte(`\u0026Signature=`)) {
		t.Fatalf("signed URL not serialized with \\u0026: %s", a.Raw)
	}
	u := resp.Data[0].URL
	if !strings.HasPrefix(u, srv.URL+"/image/") {
		t.Fatalf("url %q", u)
	}
	get := func(u string) (int, []byte) {
		r, err := srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, b
	}
	st, img := get(u)
	if st != 200 {
		t.Fatalf("download %d", st)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 512 || cfg.Height != 256 {
		t.Fatalf("image %dx%d %v", cfg.Width, cfg.Height, err)
	}
	if st, _ := get(strings.Replace(u, "Signature=", "Signature=0", 1)); st != 403 {
		t.Fatalf("tampered URL answered %d", st)
	}
	c.Add(DefaultURLTTL)
	if st, _ := get(u); st != 403 {
		t.Fatalf("expired URL answered %d", st)
	}

	// b64_json carries the data: prefix; the same seed gives the same bytes.
	b64 := func() []byte {
		a := arktest.Post(t, srv, GenerationsPath, DefaultKey, "application/json", `{"model":"black-forest-labs/FLUX.1-dev","prompt":"p","size":"256x256","seed":3,"response_format":"b64_json"}`)
		var r struct {
			Data []struct {
				B64JSON string `json:"b64_json"`
			}
		}
		if err := json.Unmarshal(a.Raw, &r); err != nil || len(r.Data) != 1 {
			t.Fatalf("%v %s", err, a.Raw)
		}
		s, ok := strings.CutPrefix(r.Data[0].B64JSON, "data:image/png;base64,")
		if !ok {
			t.Fatalf("no data: prefix in %.40q", r.Data[0].B64JSON)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if !bytes.Equal(b64(), b64()) {
		t.Fatal("same seed, different images")
	}

	// Kontext single follows the input image; text2image follows the aspect ratio.
	a = arktest.Post(t, srv, GenerationsPath, DefaultKey, "application/json", `{"model":"black-forest-labs/Flux-Kontext-Pro","prompt":"p","image":"`+arktest.PNGDataURI(t, 300, 200)+`"}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if rec := f.LastRequest(); rec.Path != GenerationsPath || !bytes.Contains(rec.Body, []byte("Flux-Kontext-Pro")) {
		t.Fatalf("recorded %+v", rec)
	}
	a = arktest.Post(t, srv, GenerationsPath, DefaultKey, "application/json", `{"model":"black-forest-labs/Flux-Kontext-Max-text2image","prompt":"p","n":4,"aspect_ratio":"16:9"}`)
	if err := json.Unmarshal(a.Raw, &resp); err != nil || len(resp.Data) != 4 {
		t.Fatalf("%v %s", err, a.Raw)
	}
}

func TestPublicURLAndScript(t *testing.T) {
	f := New(Options{Latency: 20 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/modelverse/", http.StripPrefix("/modelverse", f))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f.Script.Push(providertest.Fault{Status: 429, Body: "{}"})
	if a := arktest.Post(t, srv, "/modelverse"+GenerationsPath, DefaultKey, "application/json", `{"model":"stepfun-ai/step1x-edit","prompt":"p","image":"https://example.com/a.png"}`); a.Status != 429 {
		t.Fatalf("fault not applied: %d", a.Status)
	}
	a := arktest.Post(t, srv, "/modelverse"+GenerationsPath, DefaultKey, "application/json", `{"model":"stepfun-ai/step1x-edit","prompt":"p","image":"https://example.com/a.png"}`)
	if !bytes.Contains(a.Raw, []byte(`"url":"`+srv.URL+`/modelverse/image/`)) {
		t.Fatalf("prefix missing from %s", a.Raw)
	}
	f2 := New(Options{PublicURL: "http://sim.example:9090/modelverse"})
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	a = arktest.Post(t, srv2, GenerationsPath, DefaultKey, "application/json", `{"model":"black-forest-labs/FLUX.1-dev","prompt":"p"}`)
	if !bytes.Contains(a.Raw, []byte(`"url":"http://sim.example:9090/modelverse/image/`)) {
		t.Fatalf("PublicURL not used: %s", a.Raw)
	}
}

// TestSeedMinusOneIsRandom: seed −1 means "random" (seed 004: "取值范围为 [-1, 2147483647]。如果不
// 提供，则自动生成随机种子"): each image of a call with it gets its own random seed, and two calls
// differ; a fixed seed gives seed, seed+1, … to the images of one call.
func TestSeedMinusOneIsRandom(t *testing.T) {
	_, srv := newServer(t, Options{})
	seeds := func(seed int) []string {
		a := arktest.Post(t, srv, GenerationsPath, DefaultKey, "application/json",
			fmt.Sprintf(`{"model":"black-forest-labs/FLUX.1-dev","prompt":"p","n":2,"size":"256x256","seed":%d}`, seed))
		var resp struct{ Data []struct{ URL string } }
		if err := json.Unmarshal(a.Raw, &resp); err != nil || a.Status != 200 || len(resp.Data) != 2 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		var out []string
		for _, d := range resp.Data {
			// /image/<seed>_<w>x<h>_<n>.png
			name := d.URL[strings.LastIndexByte(d.URL, '/')+1:]
			s, _, _ := strings.Cut(name, "_")
			out = append(out, s)
		}
		return out
	}
	a, b := seeds(-1), seeds(-1)
	if a[0] == a[1] || a[0] == b[0] || strings.HasPrefix(a[0], "-") || strings.HasPrefix(b[1], "-") {
		t.Fatalf("seed -1 gave seeds %v and %v: not random", a, b)
	}
	if got := seeds(41); got[0] != "41" || got[1] != "42" {
		t.Fatalf("seed 41 gave seeds %v", got)
	}
}
