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
	m.Sizes, m.DefaultSize = sizesOthers, "1024x1024"
	m.FreeForm, m.MinSide, m.MaxSide, m.MaxPixels, m.Multiple = true, 256, 2048, 2_359_296, 8
	return m
}

// Spec is the fake's model table, written from PROVIDERS.md §1.2 independently of the adapter's
// catalog (tests check that the two agree).
func Spec() sffake.Spec {
	sd := func(m sffake.ModelSpec) sffake.ModelSpec {
		m.Batch, m.Negative, m.PromptEnhancement = true, true, true
		m.Guidance, m.MinGuidance, m.MaxGuidance = true, 0, 20
		if m.FixedSteps == 0 {
			m.MinSteps, m.MaxSteps = 1, 100
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
			"black-forest-labs/FLUX.1-schnell":             {Sizes: sizesSD35, DefaultSize: "1024x1024", FixedSteps: 4, PromptEnhancement: true},
			"Pro/black-forest-labs/FLUX.1-schnell":         freeForm(sffake.ModelSpec{FixedSteps: 4, PromptEnhancement: true}),
			"black-forest-labs/FLUX.1-dev":                 freeForm(sffake.ModelSpec{MinSteps: 1, MaxSteps: 30, PromptEnhancement: true}),
			"black-forest-labs/FLUX.1-pro":                 freeForm(sffake.ModelSpec{PromptEnhancement: true}),
			"stabilityai/stable-diffusion-3-5-large":       sd(sffake.ModelSpec{Sizes: sizesSD35, DefaultSize: "1024x1024"}),
			"stabilityai/stable-diffusion-3-5-large-turbo": sd(sffake.ModelSpec{Sizes: sizesSD35, DefaultSize: "1024x1024", FixedSteps: 4}),
			"stabilityai/stable-diffusion-3-medium":        sd(freeForm(sffake.ModelSpec{})),
			"stabilityai/stable-diffusion-xl-base-1.0":     sd(freeForm(sffake.ModelSpec{Images: 1})),
			"stabilityai/stable-diffusion-2-1":             sd(sffake.ModelSpec{Sizes: sizesSD21, DefaultSize: "512x512", Images: 1}),
			"deepseek-ai/Janus-Pro-7B":                     {FixedOutput: "384x384", DefaultSize: "384x384"},
			"Kwai-Kolors/Kolors": freeForm(sffake.ModelSpec{Batch: true, MinSteps: 1, MaxSteps: 100, Guidance: true,
				MaxGuidance: 20, Negative: true, Images: 1}),
			"Qwen/Qwen-Image":           {Sizes: sizesQwen, DefaultSize: "1328x1328", MinSteps: 1, MaxSteps: 100, CFG: true, Negative: true},
			"Qwen/Qwen-Image-Edit":      {NoImageSize: true, MinSteps: 1, MaxSteps: 100, Negative: true, Images: 1, ImageRequired: true},
			"Qwen/Qwen-Image-Edit-2509": {NoImageSize: true, MinSteps: 1, MaxSteps: 100, Negative: true, Images: 3, ImageRequired: true},
		},
	}
}
