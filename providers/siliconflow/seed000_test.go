package siliconflow_test

import (
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/providers/siliconflow/fake"
)

// TestSeed000ExampleEndToEnd runs seed 000's worked example through a whole gateway whose
// SiliconFlow channel calls the SiliconFlow fake:
//
//	"if you want to generate an image with a width of 1024 and a height of 512, and 4 inference
//	steps, and you choose a model with a price of ¥0.0032/M px/Steps
//	(stabilityai/stable-diffusion-3-5-large-turbo), the cost of generating one image would be
//	(1024 * 512) / (1024 * 1024) * 4 * 0.0032 = 0.0064 yuan"
//
// The quote and the X-Imagegw-Cost header must both say 0.0064 CNY, and the upstream must have
// been asked for 1024x512 and run the model's 4 steps.
func TestSeed000ExampleEndToEnd(t *testing.T) {
	// The amount, from the seed's words: 1024×512 pixels is half a megapixel of 1024×1024, at 4
	// steps and ¥0.0032 per megapixel per step.
	megapixels := big.NewRat(1024*512, 1024*1024) // 1/2
	perMPStep, _ := new(big.Rat).SetString("0.0032")
	want := new(big.Rat).Mul(new(big.Rat).Mul(megapixels, big.NewRat(4, 1)), perMPStep)
	if want.FloatString(4) != "0.0064" {
		t.Fatalf("the seed's arithmetic gives %s, not 0.0064", want.FloatString(6))
	}
	const wantCost = "0.0064"

	f := fake.New(fake.Options{})
	upstream := httptest.NewServer(f)
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{
		"IMAGEGW_CURRENCY":             "CNY",
		"SILICONFLOW_API_KEY":          fake.DefaultKey,
		"SILICONFLOW_BASE_URL":         upstream.URL + "/v1",
		"IMAGEGW_OUTBOUND_ALLOW_HOSTS": u.Host, // the fake listens on loopback
	}})
	post := func(path, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, g.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+g.Key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	const body = `{"model":"siliconflow/stabilityai/stable-diffusion-3-5-large-turbo","prompt":"a lighthouse","size":"1024x512"}`

	resp, b := post("/v1/images/quote", body)
	var q struct {
		Cost     string `json:"cost"`
		PerImage string `json:"per_image"`
		Currency string `json:"currency"`
		Steps    int    `json:"steps"`
		Width    int    `json:"width"`
		Height   int    `json:"height"`
	}
	if err := json.Unmarshal(b, &q); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("quote: %d %s", resp.StatusCode, b)
	}
	if q.Cost != wantCost || q.PerImage != wantCost || q.Currency != "CNY" || q.Steps != 4 || q.Width != 1024 || q.Height != 512 {
		t.Fatalf("quote %s, want %s CNY for 1024x512 at 4 steps", b, wantCost)
	}

	resp, b = post("/v1/images/generations", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generate: %d %s", resp.StatusCode, b)
	}
	if c, cur := resp.Header.Get("X-Imagegw-Cost"), resp.Header.Get("X-Imagegw-Currency"); c != wantCost || cur != "CNY" {
		t.Fatalf("X-Imagegw-Cost %q %q, want %s CNY", c, cur, wantCost)
	}
	var sent map[string]any
	if err := json.Unmarshal(f.LastRequest().Body, &sent); err != nil {
		t.Fatal(err)
	}
	ran, _ := f.LastGeneration()
	if sent["image_size"] != "1024x512" || ran.Width != 1024 || ran.Height != 512 || ran.Steps != 4 || ran.N != 1 {
		t.Fatalf("the upstream was sent %v and ran %+v, want 1024x512 at 4 steps", sent, ran)
	}
}
