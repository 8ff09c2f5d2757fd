package arktest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/providertest"
)

// Clock is a settable clock for a fake, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// AsError returns err as a *providers.Error, failing the test when it is not one.
func AsError(t *testing.T, err error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error is not a *providers.Error: %T %v", err, err)
	}
	return pe
}

// pngBytes encodes a black w×h PNG.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PNG is a real w×h PNG as an input image.
func PNG(t *testing.T, w, h int) providers.Image {
	t.Helper()
	return providers.Image{Data: pngBytes(t, w, h), ContentType: "image/png", Width: w, Height: h}
}

// PNGDataURI is a real w×h PNG as a data URI, as the adapters send input images.
func PNGDataURI(t *testing.T, w, h int) string {
	t.Helper()
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(pngBytes(t, w, h))
}

// Answer is a fake's answer to Post.
type Answer struct {
	Status int
	Header http.Header
	// Raw is the body as sent; Body is the body decoded as a JSON object, nil if it is not one.
	Raw  []byte
	Body map[string]any
}

// ErrField returns error.<k> of an error answer, "" when absent or not a string.
func (a Answer) ErrField(k string) string {
	e, _ := a.Body["error"].(map[string]any)
	s, _ := e[k].(string)
	return s
}

// Post sends body to srv at path with the Content-Type contentType and, unless key is empty,
// "Authorization: Bearer <key>"; header holds further header names and values, in pairs.
func Post(t *testing.T, srv *httptest.Server, path, key, contentType, body string, header ...string) Answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

// responseFixtures are the files under testdata/response: success bodies as the upstream sends
// them.
func responseFixtures(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "response", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	return files
}

// ResponseGolden translates each testdata/response/<name>.json fixture with translate and
// compares the Result, or the error's kind, message, param and code, with
// testdata/result/<name>.json.
func ResponseGolden(t *testing.T, translate func(name string, body []byte) (*providers.Result, error)) {
	t.Helper()
	for _, f := range responseFixtures(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out any
			res, err := translate(name, body)
			out = res
			if err != nil {
				var pe *providers.Error
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *providers.Error", err)
				}
				out = map[string]any{"error": map[string]any{"kind": pe.Kind, "message": pe.Message, "param": pe.Param, "code": pe.Code}}
			}
			got, err := json.Marshal(out)
			if err != nil {
				t.Fatal(err)
			}
			providertest.Golden(t, filepath.Join("result", name+".json"), got)
		})
	}
}

// AddResponseSeeds adds each testdata/response fixture to a fuzzer's corpus twice, with the
// response_format hints "url" and "b64_json".
func AddResponseSeeds(f *testing.F) {
	for _, p := range responseFixtures(f) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, "url")
			f.Add(b, "b64_json")
		}
	}
}

// CheckTranslation fails t unless a translation gave a classified *providers.Error (a kind and a
// message), or at least one image, each with a URL that expires or with bytes of an image type.
func CheckTranslation(t *testing.T, res *providers.Result, err error) {
	t.Helper()
	if err != nil {
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind == "" || pe.Message == "" {
			t.Fatalf("error %v is not a classified *providers.Error", err)
		}
		return
	}
	if len(res.Images) == 0 {
		t.Fatal("success without images")
	}
	for _, im := range res.Images {
		if im.URL == "" && (!im.HasBytes() || !strings.HasPrefix(im.ContentType, "image/")) {
			t.Fatalf("image without URL or typed bytes: %+v", im)
		}
		if im.URL != "" && im.Expires.IsZero() {
			t.Fatal("URL without expiry")
		}
	}
}

// CheckUpstreamError fails t unless e, made from an upstream error answer with body, is
// classified (a kind and a message), labelled with provider, and keeps the body out of the
// client message.
func CheckUpstreamError(t *testing.T, e *providers.Error, provider string, body []byte) {
	t.Helper()
	if e.Kind == "" || e.Message == "" || e.Provider != provider {
		t.Fatalf("unclassified error %+v", e)
	}
	if len(body) > 12 && strings.Contains(e.Message, string(body)) {
		t.Fatalf("body reached the message: %q", e.Message)
	}
}
