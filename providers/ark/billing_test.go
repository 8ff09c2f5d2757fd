package ark

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire/arktest"
)

// TestBilledIsSent runs requests with and without a size on every catalog model through the
// adapter to the fake, and checks that what billing prices for the same model and request is
// what the fake received (and what it delivered): the size, the number of images, and no steps
// (Ark has no steps field and billing prices none).
func TestBilledIsSent(t *testing.T) {
	eng, err := billing.New("CNY", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, testKey)
	ref := arktest.PNG(t, 640, 480)
	cases := []struct {
		name string
		op   providers.Operation
		req  providers.Request
	}{
		{"3.0 size given", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, Width: 768, Height: 1024}},
		{"3.0 size omitted", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I}},
		{"3.0 size omitted, n=1, seed -1", providers.OpGenerate, providers.Request{Model: ModelSeedream30T2I, N: 1, Seed: i64(-1)}},
		{"4.0 size given", providers.OpGenerate, providers.Request{Model: ModelSeedream40, Width: 1280, Height: 720}},
		{"4.0 size omitted", providers.OpGenerate, providers.Request{Model: ModelSeedream40}},
		{"4.0 edit size omitted", providers.OpEdit, providers.Request{Model: ModelSeedream40, Images: []providers.Image{ref}}},
		{"4.5 size given", providers.OpGenerate, providers.Request{Model: ModelSeedream45, Width: 2560, Height: 1440}},
		{"4.5 size omitted", providers.OpGenerate, providers.Request{Model: ModelSeedream45}},
		{"5.0 size given", providers.OpGenerate, providers.Request{Model: ModelSeedream50, Width: 3072, Height: 1536}},
		{"5.0 size omitted", providers.OpGenerate, providers.Request{Model: ModelSeedream50}},
		{"5.0 edit size omitted", providers.OpEdit, providers.Request{Model: ModelSeedream50, Images: []providers.Image{ref}}},
		{"SeedEdit (size follows the input)", providers.OpEdit, providers.Request{Model: ModelSeedEdit30I2I, Images: []providers.Image{ref}}},
	}
	models := (&Adapter{}).Models()
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Prompt = "a fox"
			m := modelIn(t, models, req.Model)
			seen[m.ID] = true
			q, err := eng.Quote(m, &req)
			if err != nil {
				t.Fatal(err)
			}
			call := e.a.Generate
			if tc.op == providers.OpEdit {
				call = e.a.Edit
			}
			res, err := call(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			var sent map[string]json.RawMessage
			if err := json.Unmarshal(e.fake.LastRequest().Body, &sent); err != nil {
				t.Fatal(err)
			}
			var size string
			_ = json.Unmarshal(sent["size"], &size)
			if _, ok := sent["steps"]; ok || q.Steps != 0 {
				t.Errorf("steps: sent %s, billed %d", sent["steps"], q.Steps)
			}
			if q.Images != 1 || len(res.Images) != 1 {
				t.Errorf("billed %d images, delivered %d, Ark makes one per call", q.Images, len(res.Images))
			}
			got := res.Images[0]
			if req.Model == ModelSeedEdit30I2I {
				// No size can be asked for: billing must say its size is an estimate.
				if size != sizeAdaptive || !q.SizeEstimated {
					t.Fatalf("sent size %q, billed %dx%d estimated=%v", size, q.Width, q.Height, q.SizeEstimated)
				}
				return
			}
			billed := providers.Size{W: q.Width, H: q.Height}.String()
			if size != billed || q.SizeEstimated {
				t.Fatalf("sent size %q, billed %s (estimated %v)", size, billed, q.SizeEstimated)
			}
			if delivered := (providers.Size{W: got.Width, H: got.Height}).String(); delivered != billed {
				t.Fatalf("delivered %s, billed %s", delivered, billed)
			}
		})
	}
	for _, m := range models {
		if !seen[m.ID] {
			t.Errorf("model %s has no case", m.ID)
		}
	}
}

// modelIn returns the catalog model with id.
func modelIn(t *testing.T, ms []providers.Model, id string) *providers.Model {
	t.Helper()
	for i := range ms {
		if ms[i].ID == id {
			return &ms[i]
		}
	}
	t.Fatalf("no model %s", id)
	return nil
}
