package siliconflow

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
	"github.com/imagegw/imagegw/providers/internal/sfwire/sffake"
)

// billedCase is one request shape of TestBilledParametersAreSent.
type billedCase struct {
	name string
	req  providers.Request
}

// billedCases are, for model m: everything left to the defaults, a size of its own, steps of its
// own, both, and a full batch where the model takes one.
func billedCases(t *testing.T, m *providers.Model) []billedCase {
	t.Helper()
	op := m.Operations[0]
	base := providers.Request{Operation: op, Model: m.ID, Prompt: "a lighthouse at dusk"}
	if op == providers.OpEdit {
		src := providers.Image{Data: sffake.RenderPNG(640, 480, 7, 0), ContentType: "image/png", Width: 640, Height: 480}
		base.Images = []providers.Image{src}
	}
	cases := []billedCase{{"defaults", base}}

	// A size other than the default, where one can be chosen.
	var size providers.Size
	switch r := m.Size; {
	case !r.Fixed.IsZero():
		size = r.Fixed
	case takesNoSize(r):
	default:
		for _, s := range append(append([]providers.Size{}, r.Sizes...), providers.MustSizes("1024x512", "768x1024", "1152x896")...) {
			if s != r.Default && sfwire.SizeAllowed(r, s.W, s.H) {
				size = s
				break
			}
		}
		if size.IsZero() {
			t.Fatalf("%s: no size other than the default to test with", m.ID)
		}
	}
	if !size.IsZero() {
		c := billedCase{"size " + size.String(), base}
		c.req.Width, c.req.Height = size.W, size.H
		cases = append(cases, c)
	}

	// Steps of the request's own: the fixed ones, or the most the model takes.
	steps := m.FixedSteps
	if m.Params.Has(providers.ParamSteps) {
		steps = m.MaxSteps
	}
	if steps > 0 {
		c := billedCase{fmt.Sprintf("steps %d", steps), base}
		c.req.Steps = steps
		cases = append(cases, c)
		if !size.IsZero() {
			c.name += " size " + size.String()
			c.req.Width, c.req.Height = size.W, size.H
			cases = append(cases, c)
		}
	}
	if m.MaxN > 1 {
		c := billedCase{fmt.Sprintf("n %d", m.MaxN), base}
		c.req.N = m.MaxN
		cases = append(cases, c)
	}
	return cases
}

// TestBilledParametersAreSent runs a table of requests for every catalog model through the adapter
// against the fake and checks that billing prices what the upstream was told and ran:
// image_size on the wire is the quote's Width×Height, num_inference_steps the quote's Steps
// (where the model takes steps), and the fake — which applies SiliconFlow's documented defaults to
// whatever was left out, never our catalog's — generated that size, those steps and that many
// images. Where a parameter cannot be sent (an edit model's size, a fixed-step or step-less
// model's steps) the model's price must not depend on it.
func TestBilledParametersAreSent(t *testing.T) {
	fx := newFixture(t)
	engine, err := billing.New("CNY", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Catalog() {
		for _, c := range billedCases(t, &m) {
			t.Run(m.ID+"/"+c.name, func(t *testing.T) {
				q, err := engine.Quote(&m, &c.req)
				if err != nil {
					t.Fatalf("Quote: %v", err)
				}
				req := c.req
				if _, err := providers.Do(context.Background(), fx.a, &req); err != nil {
					t.Fatalf("generate: %v", err)
				}
				var wire struct {
					ImageSize         *string `json:"image_size"`
					NumInferenceSteps *int    `json:"num_inference_steps"`
					BatchSize         *int    `json:"batch_size"`
				}
				body := fx.f.LastRequest().Body
				if err := json.Unmarshal(body, &wire); err != nil {
					t.Fatal(err)
				}
				ran, ok := fx.f.LastGeneration()
				if !ok || ran.Model != m.ID {
					t.Fatalf("the fake generated nothing for %s", m.ID)
				}

				// Size.
				if m.Size.Fixed.IsZero() && takesNoSize(m.Size) {
					if wire.ImageSize != nil {
						t.Errorf("image_size %q sent to a model that takes none", *wire.ImageSize)
					}
					if m.Price.Unit != providers.PerImage || !q.SizeEstimated {
						t.Errorf("the size cannot be sent, yet the price (%s) depends on it or the quote claims to know it (%s)", m.Price.Unit, q.Rule())
					}
				} else {
					billed := fmt.Sprintf("%dx%d", q.Width, q.Height)
					if wire.ImageSize == nil || *wire.ImageSize != billed {
						t.Errorf("image_size %v on the wire, %s billed: %s", str(wire.ImageSize), billed, body)
					}
					if q.SizeEstimated {
						t.Errorf("the quote estimated the size (%s) although it is sent", q.Rule())
					}
					if out := fmt.Sprintf("%dx%d", ran.Width, ran.Height); out != billed {
						t.Errorf("the upstream made %s, %s billed", out, billed)
					}
				}

				// Steps.
				switch {
				case m.Params.Has(providers.ParamSteps):
					if wire.NumInferenceSteps == nil || *wire.NumInferenceSteps != q.Steps {
						t.Errorf("num_inference_steps %v on the wire, %d billed: %s", num(wire.NumInferenceSteps), q.Steps, body)
					}
				case wire.NumInferenceSteps != nil:
					t.Errorf("num_inference_steps %d sent to a model that takes none", *wire.NumInferenceSteps)
				case m.FixedSteps == 0 && m.Price.Unit == providers.PerMegapixelStep:
					t.Errorf("the model runs undocumented steps, yet its price is per step")
				}
				if ran.Steps != q.Steps {
					t.Errorf("the upstream ran %d steps, %d billed", ran.Steps, q.Steps)
				}

				// Count.
				if ran.N != q.Images || (q.Images > 1 && (wire.BatchSize == nil || *wire.BatchSize != q.Images)) {
					t.Errorf("the upstream made %d images (batch_size %v), %d billed", ran.N, num(wire.BatchSize), q.Images)
				}
			})
		}
	}
}

func str(p *string) any {
	if p == nil {
		return "(absent)"
	}
	return *p
}

func num(p *int) any {
	if p == nil {
		return "(absent)"
	}
	return *p
}

// TestCatalogDefaultsAreSendable checks what TestBilledParametersAreSent relies on: every model
// whose size can be set has a default size its own rule accepts, every model that takes steps a
// default within its range, and fixed-step models take no steps field.
func TestCatalogDefaultsAreSendable(t *testing.T) {
	for _, m := range Catalog() {
		switch r := m.Size; {
		case !r.Fixed.IsZero():
			if r.Default != r.Fixed {
				t.Errorf("%s: default %s, fixed %s", m.ID, r.Default, r.Fixed)
			}
		case takesNoSize(r):
			if m.Price.Unit != providers.PerImage {
				t.Errorf("%s: its size cannot be sent, so it cannot be priced by size (%s)", m.ID, m.Price.Unit)
			}
		case r.Default.IsZero() || !sfwire.SizeAllowed(r, r.Default.W, r.Default.H):
			t.Errorf("%s: default size %s is not one the model accepts", m.ID, r.Default)
		}
		if m.Params.Has(providers.ParamSteps) && (m.FixedSteps > 0 || m.DefaultSteps < m.MinSteps || m.DefaultSteps > m.MaxSteps || m.DefaultSteps == 0) {
			t.Errorf("%s: steps %d–%d, default %d, fixed %d", m.ID, m.MinSteps, m.MaxSteps, m.DefaultSteps, m.FixedSteps)
		}
	}
}
