package fake

import (
	"net/http"
	"time"

	"github.com/imagegw/imagegw/providers/internal/sfwire/sffake"
	"github.com/imagegw/imagegw/providers/providertest"
)

// DefaultKey is the API key the fake accepts when Options.APIKey is empty.
const DefaultKey = "sk-fake-siliconflow"

// UnsafePrompt makes the fake reject a prompt containing it as its content-safety check would
// (the body is an assumption: SiliconFlow documents no code for it).
const UnsafePrompt = sffake.UnsafeMarker

// Options configures a Fake.
type Options struct {
	APIKey    string           // the only key accepted; "" → DefaultKey
	PublicURL string           // absolute URL where this fake is reachable; "" → derive from the request's Host
	URLTTL    time.Duration    // 0 → one hour, SiliconFlow's real URL lifetime
	Now       func() time.Time // nil → time.Now
	Latency   time.Duration    // added to every generation
}

// Call is one recorded API request: method, path, headers and body.
type Call = sffake.Call

// Fake is a SiliconFlow image API. Its zero value is not usable; call New.
type Fake struct {
	// Script holds the faults the next requests suffer before the fake answers normally.
	Script *providertest.Script
	srv    *sffake.Server
}

// New returns a fake SiliconFlow configured by o.
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

// Generation is what the fake made for an accepted request: its size, steps, count and seed
// after the documented defaults were applied (what SiliconFlow bills).
type Generation = sffake.Generation

// LastGeneration returns what the last accepted request generated, and false before any.
func (f *Fake) LastGeneration() (Generation, bool) { return f.srv.LastGeneration() }

// defaultSteps is num_inference_steps when a request leaves it out: "Default 20" (PROVIDERS.md
// §1.2), not a value of our catalog.
const defaultSteps = 20

// Sizes the fake accepts, from PROVIDERS.md §1.2.
var (
	// sizesSD35 is the image_size enum of FLUX.1-schnell and SD 3.5 large / large turbo.
	sizesSD35 = []string{"1024x1024", "512x1024", "768x512", "768x1024", "1024x576", "576x1024"}
	// sizesOthers are the listed sizes of the models that also take "others".
	sizesOthers = []string{"1024x1024", "960x1280", "768x1024", "720x1440", "720x1280"}
	sizesSD21   = []string{"512x512", "512x1024", "768x512", "768x1024", "1024x576", "576x1024"}
	sizesQwen   = []string{"1328x1328", "1664x928", "928x1664", "1472x1140", "1140x1472", "1584x1056", "1056x1584"}
)

// freeForm marks a model that takes any WxH besides its listed sizes. The 2 359 296-pixel cap is
// documented for Pro/FLUX.1-schnell and FLUX.1-dev; the side bounds (256–2048), the multiple of 8
// and applying the cap to the other "others" models are assumptions.
func freeForm(m sffake.ModelSpec) sffake.ModelSpec {
	m.Sizes = sizesOthers
	m.FreeForm, m.MinSide, m.MaxSide, m.MaxPixels, m.Multiple = true, 256, 2048, 2_359_296, 8
	return m
}

// custom marks a model of seed 000's era whose documented image_size is a list, which seed 000
// nevertheless says can be customised ("You can customize various resolutions", and its worked
// example prices 1024x512 on SD 3.5 large turbo, a size not in the list). It takes the listed
// sizes and any WxH inside their envelope: sides 512–1024, multiples of 64 (every listed size
// is). The envelope is an assumption; the real limits are not documented.
func custom(m sffake.ModelSpec, sizes []string) sffake.ModelSpec {
	m.Sizes = sizes
	m.FreeForm, m.MinSide, m.MaxSide, m.Multiple = true, 512, 1024, 64
	return m
}

// Spec is the fake's model table, written from PROVIDERS.md §1.2 and seed 000 independently of
// the adapter's catalog (tests check that the two agree). Every model that takes image_size
// requires it; num_inference_steps defaults to 20 where a model takes it.
func Spec() sffake.Spec {
	sd := func(m sffake.ModelSpec) sffake.ModelSpec {
		m.Batch, m.Negative, m.PromptEnhancement = true, true, true
		m.Guidance, m.MinGuidance, m.MaxGuidance = true, 0, 20
		if m.FixedSteps == 0 {
			m.MinSteps, m.MaxSteps, m.DefaultSteps = 1, 100, defaultSteps
		}
		return m
	}
	return sffake.Spec{
		Vendor:             "siliconflow",
		DefaultKey:         DefaultKey,
		UnknownModelStatus: http.StatusBadRequest,
		TraceHeader:        "x-siliconcloud-trace-id",
		SharedID:           true,
		URLTTL:             time.Hour,
		Models: map[string]sffake.ModelSpec{
			// Fixed at 4 steps (seed 000 §2); num_inference_steps is not in its schema.
			"black-forest-labs/FLUX.1-schnell":     custom(sffake.ModelSpec{FixedSteps: 4, PromptEnhancement: true}, sizesSD35),
			"Pro/black-forest-labs/FLUX.1-schnell": freeForm(sffake.ModelSpec{FixedSteps: 4, PromptEnhancement: true}),
			"black-forest-labs/FLUX.1-dev": freeForm(sffake.ModelSpec{MinSteps: 1, MaxSteps: 30, DefaultSteps: defaultSteps,
				PromptEnhancement: true}),
			// FLUX.1-pro: no steps field is documented (priced per image, seed 000 §3).
			"black-forest-labs/FLUX.1-pro":                 freeForm(sffake.ModelSpec{PromptEnhancement: true}),
			"stabilityai/stable-diffusion-3-5-large":       sd(custom(sffake.ModelSpec{}, sizesSD35)),
			"stabilityai/stable-diffusion-3-5-large-turbo": sd(custom(sffake.ModelSpec{FixedSteps: 4}, sizesSD35)),
			"stabilityai/stable-diffusion-3-medium":        sd(freeForm(sffake.ModelSpec{})),
			"stabilityai/stable-diffusion-xl-base-1.0":     sd(freeForm(sffake.ModelSpec{Images: 1})),
			"stabilityai/stable-diffusion-2-1":             sd(custom(sffake.ModelSpec{Images: 1}, sizesSD21)),
			// Janus-Pro ignores image_size's value and always outputs 384x384 (seed 000 §4,
			// PROVIDERS.md §1.2). That it requires the field like every other model is an
			// assumption: the 2024 schemas that mark it required predate Janus.
			"deepseek-ai/Janus-Pro-7B": {FixedOutput: "384x384"},
			"Kwai-Kolors/Kolors": freeForm(sffake.ModelSpec{Batch: true, MinSteps: 1, MaxSteps: 100, DefaultSteps: defaultSteps,
				Guidance: true, MaxGuidance: 20, Negative: true, Images: 1}),
			"Qwen/Qwen-Image": {Sizes: sizesQwen, MinSteps: 1, MaxSteps: 100, DefaultSteps: defaultSteps, CFG: true, Negative: true},
			"Qwen/Qwen-Image-Edit": {NoImageSize: true, MinSteps: 1, MaxSteps: 100, DefaultSteps: defaultSteps, Negative: true,
				Images: 1, ImageRequired: true},
			"Qwen/Qwen-Image-Edit-2509": {NoImageSize: true, MinSteps: 1, MaxSteps: 100, DefaultSteps: defaultSteps, Negative: true,
				Images: 3, ImageRequired: true},
		},
	}
}
