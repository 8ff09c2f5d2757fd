package fake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers/providertest"
	"github.com/imagegw/imagegw/providers/siliconflow/fake"
)

// TestMountedUnderPrefix serves the fake the way the simulator does: under a path prefix, with
// PublicURL naming the prefixed address, so the image URLs it returns work.
func TestMountedUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := fake.New(fake.Options{APIKey: "k1", PublicURL: srv.URL + "/siliconflow/"})
	mux.Handle("/siliconflow/", http.StripPrefix("/siliconflow", f))

	post := func(key, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/siliconflow/v1/images/generations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, _ := post(fake.DefaultKey, `{}`); resp.StatusCode != 401 {
		t.Fatalf("the default key is not accepted when APIKey is set: %d", resp.StatusCode)
	}
	resp, b := post("k1", `{"model":"stabilityai/stable-diffusion-2-1","prompt":"x","image_size":"512x512","batch_size":2}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var out struct {
		Images []struct{ URL string }
		Seed   int64
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Images) != 2 {
		t.Fatalf("%s %v", b, err)
	}
	if !strings.HasPrefix(out.Images[0].URL, srv.URL+"/siliconflow/outputs/512x512-") {
		t.Fatalf("url %s", out.Images[0].URL)
	}
	img, err := srv.Client().Get(out.Images[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	img.Body.Close()
	if img.StatusCode != 200 || img.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("download: %d %s", img.StatusCode, img.Header.Get("Content-Type"))
	}
	if last := f.LastRequest(); last.Path != "/v1/images/generations" || !strings.Contains(string(last.Body), "batch_size") {
		t.Fatalf("last request %+v", last)
	}

	// Faults come first, and the faulted call is still recorded.
	f.Script.Push(providertest.Fault{Status: 503, Body: `{"code":50508,"message":"System is too busy now. Please try again later.","data":null}`})
	if resp, _ := post("k1", `{"model":"x","prompt":"faulted"}`); resp.StatusCode != 503 {
		t.Fatalf("scripted fault not applied: %d", resp.StatusCode)
	}
	if !strings.Contains(string(f.LastRequest().Body), "faulted") {
		t.Fatal("the faulted call was not recorded")
	}

	// Other paths and methods.
	r, _ := srv.Client().Get(srv.URL + "/siliconflow/v1/images/generations")
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET generations: %d", r.StatusCode)
	}
	r, _ = srv.Client().Get(srv.URL + "/siliconflow/v1/nope")
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", r.StatusCode)
	}
}

func TestURLTTLOption(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f := fake.New(fake.Options{URLTTL: time.Minute, Now: func() time.Time { return now }})
	srv := httptest.NewServer(f)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/images/generations",
		strings.NewReader(`{"model":"deepseek-ai/Janus-Pro-7B","prompt":"x","image_size":"1024x1024","seed":3}`))
	req.Header.Set("Authorization", "Bearer "+fake.DefaultKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "/outputs/384x384-3-0.png?OSSAccessKeyId=LTAI5tFakeAccessKey\\u0026Expires=" + "1735689660"
	if !strings.Contains(string(b), want) || !strings.Contains(string(b), `"seed":3`) {
		t.Fatalf("%s: want %s (Janus outputs 384x384; URL expires after URLTTL)", b, want)
	}
}

// TestDocumentedDefaults: what a request leaves out gets SiliconFlow's documented default
// (PROVIDERS.md §1.2), and a required field left out is answered as the API does.
func TestDocumentedDefaults(t *testing.T) {
	f := fake.New(fake.Options{})
	srv := httptest.NewServer(f)
	defer srv.Close()
	post := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/images/generations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fake.DefaultKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// image_size is required: no default size is made up.
	for _, model := range []string{"stabilityai/stable-diffusion-3-5-large", "black-forest-labs/FLUX.1-schnell", "stabilityai/stable-diffusion-2-1", "Kwai-Kolors/Kolors"} {
		st, b := post(`{"model":"` + model + `","prompt":"x"}`)
		if st != 400 || b != `{"code":20015,"message":"image_size: Field required","data":null}` {
			t.Errorf("%s without image_size: %d %s", model, st, b)
		}
	}
	cases := []struct {
		body string
		want fake.Generation
	}{
		// num_inference_steps defaults to 20, batch_size to 1.
		{`{"model":"stabilityai/stable-diffusion-3-5-large","prompt":"x","image_size":"768x512","seed":5}`,
			fake.Generation{Model: "stabilityai/stable-diffusion-3-5-large", Width: 768, Height: 512, Steps: 20, N: 1, Seed: 5}},
		{`{"model":"black-forest-labs/FLUX.1-dev","prompt":"x","image_size":"1024x1024","seed":5,"num_inference_steps":28}`,
			fake.Generation{Model: "black-forest-labs/FLUX.1-dev", Width: 1024, Height: 1024, Steps: 28, N: 1, Seed: 5}},
		// Fixed-step models run their 4 steps; seed 000's custom size 1024x512 is served.
		{`{"model":"stabilityai/stable-diffusion-3-5-large-turbo","prompt":"x","image_size":"1024x512","seed":5,"batch_size":2}`,
			fake.Generation{Model: "stabilityai/stable-diffusion-3-5-large-turbo", Width: 1024, Height: 512, Steps: 4, N: 2, Seed: 5}},
		// Janus-Pro ignores image_size's value; FLUX.1-pro documents no steps.
		{`{"model":"deepseek-ai/Janus-Pro-7B","prompt":"x","image_size":"1024x1024","seed":5}`,
			fake.Generation{Model: "deepseek-ai/Janus-Pro-7B", Width: 384, Height: 384, Steps: 0, N: 1, Seed: 5}},
		{`{"model":"black-forest-labs/FLUX.1-pro","prompt":"x","image_size":"1536x1024","seed":5}`,
			fake.Generation{Model: "black-forest-labs/FLUX.1-pro", Width: 1536, Height: 1024, Steps: 0, N: 1, Seed: 5}},
	}
	for _, c := range cases {
		if st, b := post(c.body); st != 200 {
			t.Fatalf("%s: %d %s", c.body, st, b)
		}
		if got, ok := f.LastGeneration(); !ok || got != c.want {
			t.Errorf("%s: generated %+v, want %+v", c.body, got, c.want)
		}
	}
	// Without a seed, a random one within 0…9 999 999 999.
	if st, b := post(`{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1024x1024"}`); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	if got, _ := f.LastGeneration(); got.Seed < 0 || got.Seed > 9_999_999_999 || got.Steps != 4 {
		t.Errorf("generated %+v", got)
	}
	// A refused request is not a generation.
	post(`{"model":"black-forest-labs/FLUX.1-schnell","prompt":"x","image_size":"1000x1000"}`)
	if got, _ := f.LastGeneration(); got.Model != "black-forest-labs/FLUX.1-schnell" || got.Width != 1024 {
		t.Errorf("a refused request replaced the last generation: %+v", got)
	}
}
