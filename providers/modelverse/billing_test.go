package modelverse

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
)

// TestBilledIsSent runs, on every catalog id, requests that give and omit the size (or aspect
// ratio), the steps and the count through the adapter to the fake, and checks that what billing
// prices for the same model and request is what the fake received: the number of images, the
// steps, and the size. Where the upstream picks the pixels itself (an aspect ratio, an edit whose
// output follows its input), billing must say its size is an estimate.
func TestBilledIsSent(t *testing.T) {
	eng, err := billing.New("CNY", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, testKey)
	ref := arktest.PNG(t, 96, 64)
	type tc struct {
		name string
		op   providers.Operation
		req  providers.Request
	}
	casesFor := func(k kind) []tc {
		switch k {
		case fluxDev:
			return []tc{
				{"all omitted", providers.OpGenerate, providers.Request{}},
				{"size and steps given", providers.OpGenerate, providers.Request{Width: 512, Height: 768, Steps: 20}},
				{"n=3, size omitted", providers.OpGenerate, providers.Request{N: 3}},
				{"image-to-image, size omitted", providers.OpGenerate, providers.Request{Images: []providers.Image{ref}, Strength: f64(0.5)}},
			}
		case kontextSingle:
			return []tc{{"edit", providers.OpEdit, providers.Request{Images: []providers.Image{ref}}}}
		case kontextMulti:
			return []tc{
				{"ratio omitted", providers.OpEdit, providers.Request{Images: []providers.Image{ref, ref}}},
				{"ratio given", providers.OpEdit, providers.Request{Images: []providers.Image{ref, ref}, AspectRatio: "16:9"}},
			}
		case kontextText2Im:
			return []tc{
				{"ratio omitted", providers.OpGenerate, providers.Request{}},
				{"ratio given, n=2", providers.OpGenerate, providers.Request{AspectRatio: "9:21", N: 2}},
			}
		case step1xEdit:
			return []tc{
				{"steps omitted", providers.OpEdit, providers.Request{Images: []providers.Image{ref}}},
				{"steps given", providers.OpEdit, providers.Request{Images: []providers.Image{ref}, Steps: 12}},
			}
		}
		t.Fatalf("no cases for kind %d", k)
		return nil
	}
	models := (&Adapter{}).Models()
	for i := range models {
		m := &models[i]
		_, k := lookup(m.ID)
		for _, c := range casesFor(k) {
			t.Run(m.ID+"/"+c.name, func(t *testing.T) {
				req := c.req
				req.Model, req.Prompt = m.ID, "a cat"
				q, err := eng.Quote(m, &req)
				if err != nil {
					t.Fatal(err)
				}
				call := e.a.Generate
				if c.op == providers.OpEdit {
					call = e.a.Edit
				}
				res, err := call(context.Background(), &req)
				if err != nil {
					t.Fatal(err)
				}
				var sent struct {
					N           *int    `json:"n"`
					Steps       *int    `json:"steps"`
					Size        *string `json:"size"`
					AspectRatio *string `json:"aspect_ratio"`
				}
				if err := json.Unmarshal(e.fake.LastRequest().Body, &sent); err != nil {
					t.Fatal(err)
				}
				// The count: n where the model takes it, else one image per call.
				n := 1
				if sent.N != nil {
					n = *sent.N
				} else if m.MaxN > 1 {
					t.Errorf("model %s takes n but none was sent", m.ID)
				}
				if q.Images != n || len(res.Images) != n {
					t.Errorf("billed %d images, sent n=%d, delivered %d", q.Images, n, len(res.Images))
				}
				// The steps.
				steps := 0
				if sent.Steps != nil {
					steps = *sent.Steps
				}
				if q.Steps != steps {
					t.Errorf("billed %d steps, sent %d", q.Steps, steps)
				}
				// The size.
				billed := fmt.Sprintf("%dx%d", q.Width, q.Height)
				switch {
				case sent.Size != nil:
					if *sent.Size != billed || q.SizeEstimated {
						t.Errorf("sent size %s, billed %s (estimated %v)", *sent.Size, billed, q.SizeEstimated)
					}
					for _, im := range res.Images {
						if got := fmt.Sprintf("%dx%d", im.Width, im.Height); got != billed {
							t.Errorf("delivered %s, billed %s", got, billed)
						}
					}
				case sent.AspectRatio != nil:
					// The upstream picks the pixels of the ratio sent: billing estimates them,
					// at that ratio.
					var rw, rh float64
					_, _ = fmt.Sscanf(strings.Replace(*sent.AspectRatio, ":", " ", 1), "%g %g", &rw, &rh)
					if !q.SizeEstimated || math.Abs(float64(q.Width)/float64(q.Height)-rw/rh) > 0.01 {
						t.Errorf("sent aspect_ratio %s, billed %s (estimated %v)", *sent.AspectRatio, billed, q.SizeEstimated)
					}
				default:
					// No size on the wire: the output follows the input, and billing says it guessed.
					if !q.SizeEstimated {
						t.Errorf("no size sent, but billing prices %s as exact", billed)
					}
				}
			})
		}
	}
}
