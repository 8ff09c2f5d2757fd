package ideogram

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func addUpstreamFixtures(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "upstream", "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"created":null,"data":[{"url":"https://x/y?exp=9999999999999999999"}]}`))
	f.Add([]byte(`{"data":[{"is_image_safe":true,"url":"https://h/p.png?exp=1&sig=2","resolution":"0x0","upscaled_resolution":"99999999x1"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`"x"`))
}

// FuzzDecodeImages: the image answer decoder never panics, and either errs with a
// *providers.Error or returns at least one image with an absolute URL.
func FuzzDecodeImages(f *testing.F) {
	addUpstreamFixtures(f)
	now := time.Unix(1748779200, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeImages(body, now)
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Message == "" {
				t.Fatalf("not a client-safe *providers.Error: %v", err)
			}
			if pe.Kind != providers.KindUpstreamBadResponse && pe.Kind != providers.KindContentPolicy {
				t.Fatalf("kind %s", pe.Kind)
			}
			return
		}
		if len(res.Images) == 0 {
			t.Fatal("success without an image")
		}
		for _, im := range res.Images {
			if !strings.HasPrefix(im.URL, "http") || im.Expires.IsZero() || im.Width < 0 || im.Height < 0 {
				t.Fatalf("bad output %+v", im)
			}
		}
	})
}

func FuzzDecodeDescribe(f *testing.F) {
	addUpstreamFixtures(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeDescribe(body)
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Kind != providers.KindUpstreamBadResponse {
				t.Fatalf("not a bad-response *providers.Error: %v", err)
			}
			return
		}
		if len(res.Descriptions) == 0 {
			t.Fatal("success without a description")
		}
	})
}

// FuzzClassify: error classification never panics, always yields a kind and a message of its own,
// and never puts the body or the key in the message.
func FuzzClassify(f *testing.F) {
	for _, s := range []struct {
		status int
		ct     string
		body   string
	}{
		{422, "application/json", `{"error":"Prompt provided failed safety check"}`},
		{400, "application/problem+json", `{"detail":"bad 'resolution'","title":"Bad Request"}`},
		{401, "text/plain", `Invalid token sk-key`},
		{403, "", ``},
		{429, "application/json", `{"error":{"message":"slow down","code":42}}`},
		{502, "text/html", `<html>bad gateway</html>`},
		{400, "application/json", `"num_images"`},
		{400, "text/plain", `{"error":`},
	} {
		f.Add(s.status, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, ct string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		e := classify(status, http.Header{"Content-Type": {ct}}, body, providers.OpGenerate, "sk-key")
		if e.Kind == "" || e.Message == "" || e.Provider != Name {
			t.Fatalf("incomplete error %+v", e)
		}
		if len(body) > 12 && strings.Contains(e.Message, string(body)) {
			t.Fatalf("the body reached the message: %q", e.Message)
		}
		if strings.Contains(e.Message, "sk-key") || (e.Err != nil && strings.Contains(e.Err.Error(), "sk-key")) {
			t.Fatalf("the key leaked: %v", e)
		}
	})
}

// FuzzParseCreated: created in any form never panics.
func FuzzParseCreated(f *testing.F) {
	for _, s := range []string{`"2000-01-23T04:56:07Z"`, `"2024-08-27T06:37:55.540681+00:00"`, `1748779100`, `null`, `"x"`, `-5`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_ = parseCreated(json.RawMessage(raw))
	})
}

// FuzzMask: mask conversion of arbitrary bytes never panics, and either yields a PNG or a
// *providers.Error naming the mask or the image.
func FuzzMask(f *testing.F) {
	f.Add(testMask(f, 8, 8, true), 8, 8, false)
	f.Add(testMask(f, 8, 8, false), 8, 8, true)
	f.Add([]byte("\x89PNG\r\n\x1a\n"), 1, 1, false)
	f.Fuzz(func(t *testing.T, data []byte, w, h int, bw bool) {
		k := knobs{}
		if bw {
			k.maskFormat = "bw"
		}
		req := &providers.Request{Images: []providers.Image{{Data: []byte("x"), Width: w, Height: h}}, Mask: &providers.Image{Data: data}}
		out, err := convertMask(req, k)
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || (pe.Param != "mask" && pe.Param != "image") || pe.Message == "" {
				t.Fatalf("not a client-safe error: %v", err)
			}
			return
		}
		if !strings.HasPrefix(string(out), "\x89PNG") {
			t.Fatal("a converted mask is not a PNG")
		}
	})
}

// FuzzParseKnobs: arbitrary extension values never panic and only ever fail with a named
// parameter.
func FuzzParseKnobs(f *testing.F) {
	for _, s := range []struct{ key, val string }{
		{"color_palette", `{"members":[{"color_hex":"#ffffff","color_weight":0.5}]}`},
		{"color_palette", `"{\"name\":\"EMBER\"}"`},
		{"style_codes", `"01234567, 89abcdef"`},
		{"aspect_ratio", `"ASPECT_16_9"`},
		{"resolution", `"RESOLUTION_1024_1024"`},
		{"image_weight", `"50"`},
		{"magic_prompt", `true`},
	} {
		f.Add(s.key, []byte(s.val))
	}
	models := Catalog()
	m, _ := lookupModel(models, ModelV3)
	f.Fuzz(func(t *testing.T, key string, val []byte) {
		for _, op := range m.Operations {
			req := &providers.Request{Model: ModelV3, Prompt: "p", Extra: map[string]json.RawMessage{key: val}}
			_, err := parseKnobs(m, op, req)
			if err != nil {
				var pe *providers.Error
				if !errors.As(err, &pe) || pe.Param == "" {
					t.Fatalf("error without a parameter: %v", err)
				}
			}
		}
	})
}
