package ideogram_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/ideogram"
	"github.com/imagegw/imagegw/providers/ideogram/fake"
)

// sentFields reads the scalar fields of the fake's last call, wherever Ideogram carries them: the
// image_request object of a JSON /generate, the text parts of a multipart call, and the JSON
// image_request part of /remix and /upscale.
func sentFields(t *testing.T, f *fake.Fake) map[string]string {
	t.Helper()
	out := map[string]string{}
	addJSON := func(b []byte) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("image_request %s: %v", b, err)
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			out[k] = s
		}
	}
	lr := f.LastRequest()
	if strings.HasPrefix(lr.Header.Get("Content-Type"), "application/json") {
		var body struct {
			ImageRequest json.RawMessage `json:"image_request"`
		}
		if err := json.Unmarshal(lr.Body, &body); err != nil {
			t.Fatal(err)
		}
		addJSON(body.ImageRequest)
		return out
	}
	form := lastForm(t, f)
	for k, vs := range form.Value {
		if k == "image_request" {
			addJSON([]byte(vs[0]))
			continue
		}
		out[k] = vs[0]
	}
	return out
}

// TestBilledIsSent runs requests that give and omit the size, the count and the quality, on every
// operation of every model, through the adapter to the fake, and checks that what billing prices
// for the same model and request is what the fake received (and, for the size, what it
// delivered): the number of images (num_images is always sent), the price tier (3.0's rendering
// speed is always sent, DEFAULT when the request names none, and a request is priced at the
// speed sent), and the size (a request without one sends Ideogram's default aspect ratio 1:1,
// rendered 1024x1024, the size billing prices; a resolution sent is the size billed; a ratio the
// client chose is priced as an estimate).
func TestBilledIsSent(t *testing.T) {
	eng, err := billing.New("USD", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, false, fake.Options{}, nil)
	src := srcImage(t, 512, 512)
	type tc struct {
		name string
		req  providers.Request
	}
	casesFor := func(m *providers.Model, op providers.Operation) []tc {
		v3 := m.ID == ideogram.ModelV3
		takesSize := slices.Contains(m.Extras, ideogram.ExtraResolution)
		var cs []tc
		switch op {
		case providers.OpGenerate:
			cs = []tc{{"all omitted", providers.Request{Prompt: "a lighthouse"}},
				{"n=3", providers.Request{Prompt: "a lighthouse", N: 3}},
				{"aspect ratio", providers.Request{Prompt: "a lighthouse", AspectRatio: "16:9"}}}
			if takesSize {
				size := providers.Size{W: 1280, H: 720}
				if v3 {
					size = providers.Size{W: 1312, H: 736}
				}
				cs = append(cs, tc{"size", providers.Request{Prompt: "a lighthouse", Width: size.W, Height: size.H}})
			}
			if v3 {
				cs = append(cs, tc{"quality low", providers.Request{Prompt: "a lighthouse", Quality: "low"}},
					tc{"rendering_speed QUALITY", providers.Request{Prompt: "a lighthouse", Extra: extra("rendering_speed", "QUALITY")}})
			}
		case providers.OpRemix:
			cs = []tc{{"omitted", providers.Request{Prompt: "at night", Images: []providers.Image{src}}},
				{"n=2", providers.Request{Prompt: "at night", Images: []providers.Image{src}, N: 2}}}
			if v3 {
				cs = append(cs, tc{"quality high", providers.Request{Prompt: "at night", Images: []providers.Image{src}, Quality: "high"}})
			}
		case providers.OpVariation:
			cs = []tc{{"omitted", providers.Request{Images: []providers.Image{src}}}}
		case providers.OpEdit:
			cs = []tc{{"omitted", providers.Request{Prompt: "a hat", Images: []providers.Image{src}, Mask: openAIMask(t, 512, 512)}}}
			if v3 {
				cs = append(cs, tc{"quality low", providers.Request{Prompt: "a hat", Images: []providers.Image{src}, Mask: openAIMask(t, 512, 512), Quality: "low"}})
			}
		case providers.OpReframe:
			cs = []tc{{"size", providers.Request{Images: []providers.Image{src}, Width: 1536, Height: 640}}}
		case providers.OpReplaceBackground:
			cs = []tc{{"omitted", providers.Request{Prompt: "on a beach", Images: []providers.Image{src}}}}
		case providers.OpUpscale:
			cs = []tc{{"omitted", providers.Request{Images: []providers.Image{src}}}}
		case providers.OpDescribe:
			cs = []tc{{"omitted", providers.Request{Images: []providers.Image{src}}}}
		}
		return cs
	}
	run := map[providers.Operation]func(context.Context, *providers.Request) (*providers.Result, error){
		providers.OpGenerate: e.ad.Generate, providers.OpRemix: e.ad.Remix, providers.OpVariation: e.ad.Vary,
		providers.OpEdit: e.ad.Edit, providers.OpReframe: e.ad.Reframe, providers.OpReplaceBackground: e.ad.ReplaceBackground,
		providers.OpUpscale: e.ad.Upscale, providers.OpDescribe: e.ad.Describe,
	}
	models := ideogram.Catalog()
	for i := range models {
		m := &models[i]
		for _, op := range m.Operations {
			cs := casesFor(m, op)
			if len(cs) == 0 {
				t.Fatalf("%s: no cases for %s", m.ID, op)
			}
			for _, c := range cs {
				t.Run(m.ID+"/"+string(op)+"/"+c.name, func(t *testing.T) {
					req := c.req
					req.Model, req.Operation = m.ID, op
					q, err := eng.Quote(m, &req)
					if err != nil {
						t.Fatal(err)
					}
					res, err := run[op](context.Background(), &req)
					if err != nil {
						t.Fatal(err)
					}
					sent := sentFields(t, e.fake)

					// The price tier: the request is priced at the rendering speed sent (none for
					// legacy models and upscale, whose prices do not depend on one).
					atWire := providers.Request{Model: m.ID, Operation: op, N: req.N}
					if speed, ok := sent["rendering_speed"]; ok {
						atWire.Extra = extra("rendering_speed", speed)
					} else if m.ID == ideogram.ModelV3 && op != providers.OpUpscale && op != providers.OpDescribe {
						t.Fatalf("a 3.0 %s sent no rendering_speed", op)
					}
					qw, err := eng.Quote(m, &atWire)
					if err != nil {
						t.Fatal(err)
					}
					if q.PerImage != qw.PerImage {
						t.Fatalf("billed %s per image (%s), the speed sent (%q) costs %s", q.PerImage, q.Rule(), sent["rendering_speed"], qw.PerImage)
					}
					if op == providers.OpDescribe {
						return // no images: the count and the size do not apply
					}

					// The count.
					if n := sent["num_images"]; n != fmt.Sprint(q.Images) || len(res.Images) != q.Images {
						t.Fatalf("billed %d images, sent num_images %q, delivered %d", q.Images, n, len(res.Images))
					}

					// The size.
					billed := providers.Size{W: q.Width, H: q.Height}
					res0 := providers.Size{W: res.Images[0].Width, H: res.Images[0].Height}
					resolution := strings.Replace(strings.TrimPrefix(sent["resolution"], "RESOLUTION_"), "_", "x", 1)
					aspect := sent["aspect_ratio"]
					switch {
					case resolution != "":
						if resolution != billed.String() || q.SizeEstimated || res0 != billed {
							t.Fatalf("sent resolution %s, billed %s (estimated %v), delivered %s", resolution, billed, q.SizeEstimated, res0)
						}
					case aspect != "" && req.AspectRatio == "":
						// Ideogram's default ratio written out, which it renders at the size billed.
						if (aspect != "1x1" && aspect != "ASPECT_1_1") || billed != m.Size.Default || q.SizeEstimated || res0 != billed {
							t.Fatalf("sent aspect_ratio %s, billed %s (estimated %v), delivered %s", aspect, billed, q.SizeEstimated, res0)
						}
					case aspect != "":
						// The client's ratio: Ideogram picks the pixels, billing says it estimated.
						if !q.SizeEstimated {
							t.Fatalf("sent aspect_ratio %s, billed %s as exact", aspect, billed)
						}
					default:
						// Edit and replace-background keep the source's size, upscale doubles it: no
						// size is sent, and none can be. (Billing prices these per image, so the size it
						// resolves does not change the amount.)
						if !slices.Contains([]providers.Operation{providers.OpEdit, providers.OpReplaceBackground, providers.OpUpscale}, op) {
							t.Fatalf("a %s sent no size", op)
						}
					}
				})
			}
		}
	}
}
