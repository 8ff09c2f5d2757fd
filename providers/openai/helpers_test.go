package openai

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

// testKey is the key the tests' fakes accept and the adapters send.
const testKey = "sk-test-0123456789abcdefghijklmnop"

// testMaxBytes is the channel's response cap in tests.
const testMaxBytes = 4 << 20

func ptr[T any](v T) *T { return &v }

// pngImage makes a real PNG; alpha gives it an alpha channel.
func pngImage(t testing.TB, w, h int, alpha bool) providers.Image {
	t.Helper()
	var img image.Image
	if alpha {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		m.Set(0, 0, color.NRGBA{})
		img = m
	} else {
		m := image.NewGray(image.Rect(0, 0, w, h))
		img = m
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return providers.Image{Data: buf.Bytes(), ContentType: "image/png", Width: w, Height: h, Filename: "client name.png"}
}

// jpegImage makes a real JPEG.
func jpegImage(t testing.TB, w, h int) providers.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return providers.Image{Data: buf.Bytes(), ContentType: "image/jpeg", Width: w, Height: h}
}

// clock is a settable clock for the fakes.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// openAIFake starts the OpenAI fake and an adapter pointed at it.
func openAIFake(t *testing.T, o fake.Options, opts map[string]string) (*Adapter, *fake.Fake, *httptest.Server) {
	t.Helper()
	if o.APIKey == "" {
		o.APIKey = testKey
	}
	f := fake.New(o)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a, err := New(providers.Config{Name: "openai-test", BaseURL: srv.URL + "/v1", APIKey: testKey, HTTP: srv.Client(),
		MaxResponseBytes: testMaxBytes, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return a, f, srv
}

// compatibleFake starts the compatible fake and an adapter pointed at it.
func compatibleFake(t *testing.T, opts map[string]string) (*Compatible, *fake.Fake, *httptest.Server) {
	t.Helper()
	f := fake.NewCompatible(fake.Options{APIKey: testKey})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	a, err := NewCompatible(providers.Config{Name: "compat-test", BaseURL: srv.URL + "/v1", APIKey: testKey, HTTP: srv.Client(),
		MaxResponseBytes: testMaxBytes, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return a, f, srv
}

func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// bytesOf is an output's image bytes, decoded when the adapter kept them in base64.
func bytesOf(t testing.TB, o providers.Output) []byte {
	t.Helper()
	b, err := o.Bytes()
	if err != nil {
		t.Fatalf("image base64: %v", err)
	}
	return b
}
