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
	resp, b := post("k1", `{"model":"stabilityai/stable-diffusion-2-1","prompt":"x","batch_size":2}`)
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
