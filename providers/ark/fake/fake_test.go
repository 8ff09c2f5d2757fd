package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
	"github.com/imagegw/imagegw/providers/providertest"
)

// post sends a request with the X-Client-Request-Id the fake must echo.
func post(t *testing.T, srv *httptest.Server, path, key, contentType, body string) arktest.Answer {
	t.Helper()
	return arktest.Post(t, srv, path, key, contentType, body, "X-Client-Request-Id", "test-id-1")
}

func newServer(t *testing.T, o Options) (*Fake, *httptest.Server) {
	t.Helper()
	f := New(o)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func TestRules(t *testing.T) {
	_, srv := newServer(t, Options{})
	img := arktest.PNGDataURI(t, 64, 48)
	const (
		t30 = "doubao-seedream-3-0-t2i-250415"
		e30 = "doubao-seededit-3-0-i2i-250628"
		s40 = "doubao-seedream-4-0-250828"
		s45 = "doubao-seedream-4-5-251128"
		s50 = "doubao-seedream-5-0-260128"
	)
	cases := []struct {
		name    string
		key, ct string
		body    string
		status  int
		code    string
		param   string
		message string
	}{
		{"no key", "-", "application/json", `{"model":"` + t30 + `","prompt":"p"}`, 401, "AuthenticationError", "", "missing or invalid"},
		{"wrong key", "nope", "application/json", `{"model":"` + t30 + `","prompt":"p"}`, 401, "AuthenticationError", "", ""},
		{"multipart", "", "multipart/form-data; boundary=x", "--x--", 400, "InvalidParameter", "", "application/json"},
		{"not json", "", "application/json", `{`, 400, "InvalidParameter", "", "not valid JSON"},
		{"unknown field n", "", "application/json", `{"model":"` + t30 + `","prompt":"p","n":2}`, 400, "InvalidParameter", "n", "unknown parameter"},
		{"wrong type", "", "application/json", `{"model":"` + t30 + `","prompt":"p","seed":"1"}`, 400, "InvalidParameter", "seed", ""},
		{"no model", "", "application/json", `{"prompt":"p"}`, 400, "MissingParameter", "model", ""},
		{"unknown model", "", "application/json", `{"model":"ep-x","prompt":"p"}`, 404, "InvalidEndpointOrModel.NotFound", "", "ep-x"},
		{"no prompt", "", "application/json", `{"model":"` + t30 + `"}`, 400, "MissingParameter", "prompt", ""},
		{"3.0 image", "", "application/json", `{"model":"` + t30 + `","prompt":"p","image":"` + img + `"}`, 400, "InvalidParameter", "image", "the parameter `image` is not supported by the current model"},
		{"3.0 side", "", "application/json", `{"model":"` + t30 + `","prompt":"p","size":"2049x1024"}`, 400, "InvalidParameter", "size", "between 512 and 2048"},
		{"3.0 2k", "", "application/json", `{"model":"` + t30 + `","prompt":"p","size":"2K"}`, 400, "InvalidParameter", "size", ""},
		{"3.0 seed", "", "application/json", `{"model":"` + t30 + `","prompt":"p","seed":2147483648}`, 400, "InvalidParameter", "seed", ""},
		{"3.0 guidance", "", "application/json", `{"model":"` + t30 + `","prompt":"p","guidance_scale":0.5}`, 400, "InvalidParameter", "guidance_scale", ""},
		{"response format", "", "application/json", `{"model":"` + t30 + `","prompt":"p","response_format":"png"}`, 400, "InvalidParameter", "response_format", ""},
		{"3.0 output_format", "", "application/json", `{"model":"` + t30 + `","prompt":"p","output_format":"png"}`, 400, "InvalidParameter", "output_format", "the parameter `output_format` is not supported by the current model"},
		{"seededit without image", "", "application/json", `{"model":"` + e30 + `","prompt":"p"}`, 400, "MissingParameter", "image", ""},
		{"seededit array", "", "application/json", `{"model":"` + e30 + `","prompt":"p","image":["` + img + `"]}`, 400, "InvalidParameter", "image", "only one image"},
		{"seededit size", "", "application/json", `{"model":"` + e30 + `","prompt":"p","image":"` + img + `","size":"1024x1024"}`, 400, "InvalidParameter", "size", "not supported for model doubao-seededit"},
		{"seededit panorama", "", "application/json", `{"model":"` + e30 + `","prompt":"p","image":"` + arktest.PNGDataURI(t, 90, 30) + `"}`, 400, "InvalidParameter", "image", "between 1/3 and 3"},
		{"seededit tiny", "", "application/json", `{"model":"` + e30 + `","prompt":"p","image":"` + arktest.PNGDataURI(t, 14, 14) + `"}`, 400, "InvalidParameter", "image", "greater than 14"},
		{"seededit gif", "", "application/json", `{"model":"` + e30 + `","prompt":"p","image":"data:image/gif;base64,R0lGODlhAQABAAAAACw="}`, 400, "InvalidParameter", "image", "jpeg or png"},
		{"upper-case mime", "", "application/json", `{"model":"` + s40 + `","prompt":"p","image":"data:image/PNG;base64,iVBORw0KGgo="}`, 400, "InvalidParameter", "image", "lower case"},
		{"4.0 seed", "", "application/json", `{"model":"` + s40 + `","prompt":"p","seed":1}`, 400, "InvalidParameter", "seed", "not supported by the current model"},
		{"4.0 below floor", "", "application/json", `{"model":"` + s40 + `","prompt":"p","size":"512x512"}`, 400, "InvalidParameter", "", "at least 921600 pixels"},
		{"4.5 1K", "", "application/json", `{"model":"` + s45 + `","prompt":"p","size":"1K"}`, 400, "InvalidParameter", "", "the specified size is not supported for model doubao-seedream-4-5"},
		{"4.5 adaptive", "", "application/json", `{"model":"` + s45 + `","prompt":"p","size":"adaptive"}`, 400, "InvalidParameter", "", "the specified size is not supported for model doubao-seedream-4-5"},
		{"4.5 below floor", "", "application/json", `{"model":"` + s45 + `","prompt":"p","size":"1024x1024"}`, 400, "InvalidParameter", "", "image size must be at least 3686400 pixels"},
		{"4.5 above ceiling", "", "application/json", `{"model":"` + s45 + `","prompt":"p","size":"4097x4096"}`, 400, "InvalidParameter", "", "at most 16777216 pixels"},
		{"4.5 aspect", "", "application/json", `{"model":"` + s45 + `","prompt":"p","size":"16384x512"}`, 400, "InvalidParameter", "", "1/16 and 16"},
		{"5.0 vocabulary", "", "application/json", `{"model":"` + s50 + `","prompt":"p","size":"big"}`, 400, "InvalidParameter", "size", "size must be one of 'WIDTHxHEIGHT', '2k', '3k', or '4k'"},
		{"5.0 webp output", "", "application/json", `{"model":"` + s50 + `","prompt":"p","output_format":"webp"}`, 400, "InvalidParameter", "output_format", ""},
		{"4.0 eleven refs", "", "application/json", `{"model":"` + s40 + `","prompt":"p","image":["` + strings.Repeat(img+`","`, 10) + img + `"]}`, 400, "InvalidParameter", "image", "at most 10"},
		{"group too big", "", "application/json", `{"model":"` + s45 + `","prompt":"p","sequential_image_generation":"auto","sequential_image_generation_options":{"max_images":16}}`, 400, "InvalidParameter", "sequential_image_generation_options.max_images", ""},
		{"stream", "", "application/json", `{"model":"` + s45 + `","prompt":"p","stream":true}`, 400, "InvalidParameter", "stream", ""},
		{"input filtered", "", "application/json", `{"model":"` + t30 + `","prompt":"fake:sensitive-input"}`, 400, "InputTextSensitiveContentDetected", "", ""},
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
			a := post(t, srv, GenerationsPath, key, tc.ct, tc.body)
			if a.Status != tc.status || a.ErrField("code") != tc.code || a.ErrField("param") != tc.param {
				t.Fatalf("got %d %s param %q: %s", a.Status, a.ErrField("code"), a.ErrField("param"), a.Raw)
			}
			if !strings.Contains(a.ErrField("message"), tc.message) || !strings.HasSuffix(a.ErrField("message"), "Request id: test-id-1") {
				t.Fatalf("message %q lacks %q or the request id", a.ErrField("message"), tc.message)
			}
			if a.Header.Get("X-Client-Request-Id") != "test-id-1" {
				t.Fatal("request id not echoed")
			}
		})
	}
}

func TestSuccessShapeAndURLs(t *testing.T) {
	c := arktest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	f, srv := newServer(t, Options{Now: c.Now})
	a := post(t, srv, GenerationsPath, DefaultKey, "application/json",
		`{"model":"doubao-seedream-4-5-251128","prompt":"p","size":"2560x1440","watermark":false,"sequential_image_generation":"auto","sequential_image_generation_options":{"max_images":2}}`)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if !bytes.Contains(a.Raw, []byte(`\u0026`)) {
		t.Fatalf("signed URL not serialized with \\u0026: %s", a.Raw)
	}
	var resp struct {
		Model   string
		Created int64
		Data    []struct{ URL, Size string }
		Usage   struct {
			GeneratedImages int   `json:"generated_images"`
			OutputTokens    int64 `json:"output_tokens"`
			TotalTokens     int64 `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(a.Raw, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Model != "doubao-seedream-4-5-251128" || resp.Created != c.Now().Unix() || len(resp.Data) != 2 ||
		resp.Data[0].Size != "2560x1440" || resp.Usage.GeneratedImages != 2 || resp.Usage.OutputTokens != 2*3686400/256 ||
		resp.Usage.TotalTokens != resp.Usage.OutputTokens {
		t.Fatalf("unexpected answer %s", a.Raw)
	}
	u := resp.Data[0].URL
	if !strings.HasPrefix(u, srv.URL+"/fake-tos/") || !strings.Contains(u, "&X-Tos-Signature=") {
		t.Fatalf("url %q", u)
	}
	get := func(u string) (int, string) {
		r, err := srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		_, _ = io.Copy(io.Discard, r.Body)
		return r.StatusCode, r.Header.Get("Content-Type")
	}
	if st, ct := get(u); st != 200 || ct != "image/jpeg" {
		t.Fatalf("download %d %s", st, ct)
	}
	if st, _ := get(strings.Replace(u, "X-Tos-Signature=", "X-Tos-Signature=0", 1)); st != 403 {
		t.Fatalf("tampered URL answered %d", st)
	}
	if f.LastRequest().Path != GenerationsPath {
		t.Fatal("image download was recorded as an API call")
	}
	c.Add(DefaultURLTTL)
	if st, _ := get(u); st != 403 {
		t.Fatalf("expired URL answered %d", st)
	}
}

func TestPartialFailureAndB64(t *testing.T) {
	_, srv := newServer(t, Options{})
	a := post(t, srv, GenerationsPath, DefaultKey, "application/json",
		`{"model":"doubao-seedream-4-0-250828","prompt":"fake:partial-fail","response_format":"b64_json","sequential_image_generation":"auto","sequential_image_generation_options":{"max_images":2}}`)
	var resp struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
			Error   *struct{ Code string }
		}
		Usage struct {
			GeneratedImages int `json:"generated_images"`
		}
	}
	if err := json.Unmarshal(a.Raw, &resp); err != nil || len(resp.Data) != 2 {
		t.Fatalf("%v %s", err, a.Raw)
	}
	if resp.Data[1].Error == nil || resp.Data[1].Error.Code != "OutputImageSensitiveContentDetected" || resp.Usage.GeneratedImages != 1 {
		t.Fatalf("partial failure not simulated: %s", a.Raw)
	}
	if strings.HasPrefix(resp.Data[0].B64JSON, "data:") {
		t.Fatal("Ark's b64_json has no data: prefix")
	}
	raw, err := base64.StdEncoding.DecodeString(resp.Data[0].B64JSON)
	if err != nil || http.DetectContentType(raw) != "image/jpeg" {
		t.Fatalf("b64 is not a JPEG: %v", err)
	}
}

func TestPublicURLBehindPrefix(t *testing.T) {
	f := New(Options{})
	mux := http.NewServeMux()
	mux.Handle("/ark/", http.StripPrefix("/ark", f))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := post(t, srv, "/ark"+GenerationsPath, DefaultKey, "application/json", `{"model":"doubao-seedream-3-0-t2i-250415","prompt":"p","size":"512x512"}`)
	var resp struct{ Data []struct{ URL string } }
	if err := json.Unmarshal(a.Raw, &resp); err != nil || len(resp.Data) != 1 {
		t.Fatalf("%v %s", err, a.Raw)
	}
	if !strings.HasPrefix(resp.Data[0].URL, srv.URL+"/ark/fake-tos/") {
		t.Fatalf("url %q does not include the prefix", resp.Data[0].URL)
	}
	r, err := srv.Client().Get(resp.Data[0].URL)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("download through the prefix: %v %v", err, r.Status)
	}
	r.Body.Close()

	f2 := New(Options{PublicURL: "http://sim.example:9090/ark/"})
	srv2 := httptest.NewServer(f2)
	defer srv2.Close()
	a = post(t, srv2, GenerationsPath, DefaultKey, "application/json", `{"model":"doubao-seedream-3-0-t2i-250415","prompt":"p"}`)
	if !bytes.Contains(a.Raw, []byte(`"url":"http://sim.example:9090/ark/fake-tos/`)) {
		t.Fatalf("PublicURL not used: %s", a.Raw)
	}
}

func TestScriptFirstAndLatency(t *testing.T) {
	f, srv := newServer(t, Options{Latency: 50 * time.Millisecond})
	f.Script.Push(providertest.Fault{Status: 503, Body: "{}"})
	if a := post(t, srv, GenerationsPath, DefaultKey, "application/json", `{"model":"doubao-seedream-3-0-t2i-250415","prompt":"p"}`); a.Status != 503 {
		t.Fatalf("fault not applied: %d", a.Status)
	}
	start := time.Now()
	if a := post(t, srv, GenerationsPath, DefaultKey, "application/json", `{"model":"doubao-seedream-3-0-t2i-250415","prompt":"p"}`); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("latency not applied")
	}
	rec := f.LastRequest()
	if rec.Method != http.MethodPost || rec.Header.Get("Authorization") != "Bearer "+DefaultKey || !bytes.Contains(rec.Body, []byte("seedream")) {
		t.Fatalf("recorded %+v", rec)
	}
}

// TestSeedMinusOneIsRandom: seed −1 means "random" (seed 004's range [-1, 2147483647]): two
// calls with it make images of different seeds, while a fixed seed makes the same image.
func TestSeedMinusOneIsRandom(t *testing.T) {
	_, srv := newServer(t, Options{})
	seedOf := func(seed int) string {
		a := post(t, srv, GenerationsPath, DefaultKey, "application/json",
			fmt.Sprintf(`{"model":"doubao-seedream-3-0-t2i-250415","prompt":"p","size":"512x512","seed":%d}`, seed))
		var resp struct{ Data []struct{ URL string } }
		if err := json.Unmarshal(a.Raw, &resp); err != nil || a.Status != 200 || len(resp.Data) != 1 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		// The image's name starts with its seed: /fake-tos/<model>/<seed>_<w>x<h>_<n>.<format>.
		name := resp.Data[0].URL[strings.LastIndexByte(resp.Data[0].URL, '/')+1:]
		s, _, _ := strings.Cut(name, "_")
		return s
	}
	if a, b := seedOf(-1), seedOf(-1); a == b || strings.HasPrefix(a, "-") {
		t.Fatalf("seed -1 gave seeds %s and %s: not random", a, b)
	}
	if a, b := seedOf(5), seedOf(5); a != "5" || b != "5" {
		t.Fatalf("seed 5 gave seeds %s and %s", a, b)
	}
}
