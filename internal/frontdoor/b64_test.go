package frontdoor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// b64Upstream answers with images kept as base64 text (providers.Output.B64) in a buffer it
// hands to the Result, as the adapters do with their pooled answer buffers. On Release it
// overwrites the buffer, so a response written after it would show.
type b64Upstream struct {
	name     string
	text     []byte // the image's base64 text, as an upstream sent it
	released atomic.Int64
	mu       sync.Mutex
}

var b64Upstreams sync.Map

var b64PNG = func() []byte {
	var b bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	_ = png.Encode(&b, img)
	return b.Bytes()
}()

func init() {
	providers.Register("b64-test", func(c providers.Config) (providers.Provider, error) {
		u := &b64Upstream{name: c.Name, text: []byte(base64.StdEncoding.EncodeToString(b64PNG))}
		b64Upstreams.Store(c.Name, u)
		return u, nil
	})
}

func (u *b64Upstream) Name() string { return u.name }
func (u *b64Upstream) Models() []providers.Model {
	return []providers.Model{{ID: "b64/model", Operations: []providers.Operation{providers.OpGenerate}, MaxN: 2,
		Size:  providers.SizeRule{Sizes: providers.MustSizes("64x48")},
		Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.01")}}}
}
func (u *b64Upstream) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	u.mu.Lock()
	text := u.text
	u.mu.Unlock()
	body := []byte(`{"b64_json":"` + string(text) + `"}`) // the "answer buffer"
	res := &providers.Result{}
	for i := 0; i < req.N; i++ {
		res.Images = append(res.Images, providers.Output{B64: body[len(`{"b64_json":"`) : len(body)-2], ContentType: "image/png"})
	}
	res.OnRelease(func() {
		u.released.Add(1)
		for i := range body {
			body[i] = 'X'
		}
	})
	return res, nil
}

func b64Gateway(t *testing.T) (*gatewaytest.Gateway, *b64Upstream) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Providers = append(c.Providers, config.ChannelConfig{Name: "b64-up", Type: "b64-test", APIKey: "k"})
	}})
	u, _ := b64Upstreams.Load("b64-up")
	return g, u.(*b64Upstream)
}

// TestB64PassesThrough: an upstream's base64 text reaches a b64_json client byte for byte (no
// decode and re-encode), in a response whose length is known, and the answer's buffer is given
// back once the response is written.
func TestB64PassesThrough(t *testing.T) {
	g, u := b64Gateway(t)
	resp, body := do(t, g, jsonReq(`{"model":"b64/model","prompt":"x","n":2,"response_format":"b64_json"}`))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) || resp.Header.Get("X-Imagegw-Cost") != "0.02" {
		t.Fatalf("%d length %q cost %q %s", resp.StatusCode, resp.Header.Get("Content-Length"), resp.Header.Get("X-Imagegw-Cost"), body)
	}
	var out struct {
		Data []struct {
			B64JSON string `json:"b64_json"`
			Size    string `json:"size"`
		}
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Data) != 2 {
		t.Fatalf("%v %s", err, body)
	}
	for _, d := range out.Data {
		if d.B64JSON != string(u.text) || d.Size != "64x48" {
			t.Fatalf("image: size %q, text %d bytes, the same: %v", d.Size, len(d.B64JSON), d.B64JSON == string(u.text))
		}
	}
	if n := u.released.Load(); n != 1 {
		t.Fatalf("released %d times, want 1", n)
	}
}

// TestB64Hosted: for a url client the text is decoded and the bytes hosted.
func TestB64Hosted(t *testing.T) {
	g, _ := b64Gateway(t)
	resp, body := do(t, g, jsonReq(`{"model":"b64/model","prompt":"x","response_format":"url"}`))
	var out struct{ Data []struct{ URL string } }
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil || len(out.Data) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	r, err := http.Get(out.Data[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var got bytes.Buffer
	_, _ = got.ReadFrom(r.Body)
	if !bytes.Equal(got.Bytes(), b64PNG) {
		t.Fatalf("hosted %d bytes, not the image", got.Len())
	}
}

// TestB64BombIsRefused: a decompression bomb kept as base64 text is checked from its head,
// neither delivered nor billed.
func TestB64BombIsRefused(t *testing.T) {
	g, u := b64Gateway(t)
	u.mu.Lock()
	u.text = []byte(base64.StdEncoding.EncodeToString(append(bombPNG(100000, 100000), make([]byte, 1<<20)...)))
	u.mu.Unlock()
	resp, body := do(t, g, jsonReq(`{"model":"b64/model","prompt":"x","response_format":"b64_json"}`))
	if resp.StatusCode != 502 || resp.Header.Get("X-Imagegw-Cost") != "0" || bytes.Contains(body, []byte("iVBOR")) {
		t.Fatalf("%d cost %q %.300s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
	if u.released.Load() != 1 {
		t.Fatal("the answer's buffer was not given back")
	}
}
