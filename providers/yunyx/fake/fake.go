package fake

import (
	"net/http"
	"time"

	"github.com/imagegw/imagegw/providers/internal/sfwire/sffake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-yunyx"

// UnsafePrompt makes the fake reject a prompt containing it as a content-safety check would.
const UnsafePrompt = sffake.UnsafeMarker

// Options configures a Fake.
type Options struct {
	APIKey    string           // the only key accepted; "" → DefaultKey
	PublicURL string           // absolute URL where this fake is reachable; "" → derive from the request's Host
	URLTTL    time.Duration    // 0 → one hour, yunyx's real URL lifetime
	Now       func() time.Time // nil → time.Now
	Latency   time.Duration    // added to every generation
}

// Call is one recorded API request: method, path, headers and body.
type Call = sffake.Call

// Fake is a yunyx image API. Its zero value is not usable; call New.
type Fake struct {
	// Script holds the faults the next requests suffer before the fake answers normally.
	Script *providertest.Script
	srv    *sffake.Server
}

// New returns a fake yunyx configured by o.
func New(o Options) *Fake {
	return &Fake{
		Script: &providertest.Script{},
		srv: sffake.New(Spec(), sffake.Options{APIKey: o.APIKey, PublicURL: o.PublicURL,
			URLTTL: o.URLTTL, Now: o.Now, Latency: o.Latency}),
	}
}

// ServeHTTP answers one request, applying the Script's faults first.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.srv.Serve(f.Script, w, r) }

// LastRequest returns the last API call the fake received (image downloads excluded).
func (f *Fake) LastRequest() Call { return f.srv.LastRequest() }

// Generation is what the fake made for an accepted request: its size, count and seed (yunyx
// documents no steps, so Steps is 0).
type Generation = sffake.Generation

// LastGeneration returns what the last accepted request generated, and false before any.
func (f *Fake) LastGeneration() (Generation, bool) { return f.srv.LastGeneration() }

// Spec is the fake's model table, written from seed 003 independently of the adapter's catalog:
// image_size is required ("必选" in the page's table, PROVIDERS.md §4.2) and one of the six values
// of "image_size 可选值" (no custom sizes: seed 003 lists only these); prompt_enhancement ("部分模型
// 支持", some models, without naming them) is accepted by both models; no steps, count, negative
// prompt, guidance or image field exists.
func Spec() sffake.Spec {
	sizes := []string{"1024x1024", "512x1024", "768x512", "768x1024", "1024x576", "576x1024"}
	m := sffake.ModelSpec{Sizes: sizes, PromptEnhancement: true}
	return sffake.Spec{
		Vendor:             "yunyx",
		DefaultKey:         DefaultKey,
		UnknownModelStatus: http.StatusNotFound,
		URLTTL:             time.Hour,
		Models: map[string]sffake.ModelSpec{
			"FLUX.1-schnell":             m,
			"stable-diffusion-3-5-large": m,
		},
	}
}
