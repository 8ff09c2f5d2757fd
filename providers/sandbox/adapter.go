package sandbox

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
)

// Name is the provider type the sandbox registers under.
const Name = "sandbox"

// DefaultBaseURL is empty: the sandbox renders in process and calls no upstream, so a configured
// base URL (and API key) is ignored.
const DefaultBaseURL = ""

// Channel options the sandbox takes (providers.Config.Options).
const (
	// OptionLatency is a Go duration ("300ms") added to every call.
	OptionLatency = "latency"
	// OptionFail is a providers.Kind every call of the channel fails with.
	OptionFail = "fail"
)

// DefaultTimeout bounds one call when the channel sets no timeout.
const DefaultTimeout = 120 * time.Second

// randomSeedLimit bounds the seeds the sandbox picks itself: below 2^53, so JavaScript clients
// read them exactly.
const randomSeedLimit = 1 << 53

var (
	_ providers.Provider = (*Adapter)(nil)
	_ providers.Editor   = (*Adapter)(nil)
	_ providers.Variator = (*Adapter)(nil)
)

func init() {
	providers.Register(Name, func(cfg providers.Config) (providers.Provider, error) { return New(cfg) })
}

// Adapter is one sandbox channel. It is safe for concurrent use.
type Adapter struct {
	name     string
	timeout  time.Duration
	latency  time.Duration
	fail     providers.Kind
	maxBytes int64
	log      *zap.Logger
	models   []providers.Model
}

// New builds a sandbox channel from cfg. It refuses unknown options and malformed values, naming
// every problem at once.
func New(cfg providers.Config) (*Adapter, error) {
	a := &Adapter{name: cfg.Name, timeout: cfg.Timeout, maxBytes: cfg.MaxResponseBytes, log: cfg.Logger, models: catalog()}
	if a.name == "" {
		a.name = Name
	}
	if a.timeout <= 0 {
		a.timeout = DefaultTimeout
	}
	if a.maxBytes <= 0 {
		a.maxBytes = providers.DefaultMaxResponseBytes
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	keys := make([]string, 0, len(cfg.Options))
	for k := range cfg.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		v := cfg.Options[k]
		switch k {
		case OptionLatency:
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("sandbox: option %q: %q is not a non-negative duration such as 300ms", k, v))
				continue
			}
			a.latency = d
		case OptionFail:
			if !knownKind(providers.Kind(v)) {
				errs = append(errs, fmt.Errorf("sandbox: option %q: %q is not an error kind (%s)", k, v, kindList()))
				continue
			}
			a.fail = providers.Kind(v)
		default:
			errs = append(errs, fmt.Errorf("sandbox: unknown option %q (known: %s, %s)", k, OptionLatency, OptionFail))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Name returns the channel name.
func (a *Adapter) Name() string { return a.name }

// Models returns the sandbox's catalog; the caller owns the returned slices.
func (a *Adapter) Models() []providers.Model { return catalog() }

// Generate renders req.N images from the prompt, blending in reference images when given.
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpGenerate, req)
}

// Edit repaints the masked area of req.Images[0] (alpha 0 in req.Mask, or in the image itself
// when there is no mask) and keeps every other pixel.
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpEdit, req)
}

// Vary renders variations of req.Images[0]: its hue rotated by an angle derived from the seed.
func (a *Adapter) Vary(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpVariation, req)
}

func (a *Adapter) model(id string) *providers.Model {
	for i := range a.models {
		if a.models[i].ID == id {
			return &a.models[i]
		}
	}
	return nil
}

// run is every operation: check, simulate latency and failures, render, encode.
func (a *Adapter) run(ctx context.Context, op providers.Operation, req *providers.Request) (*providers.Result, error) {
	m := a.model(req.Model)
	if m == nil {
		ids := make([]string, len(a.models))
		for i, mm := range a.models {
			ids[i] = mm.ID
		}
		return nil, &providers.Error{Kind: providers.KindModelNotFound, Param: "model", Provider: a.name,
			Message: fmt.Sprintf("the sandbox has no model %s (it has %s)", strconv.QuoteToASCII(truncate(req.Model, 64)), strings.Join(ids, ", "))}
	}
	if err := check(m, op, req); err != nil {
		return nil, withProvider(a.name, err)
	}
	var dir directives
	if op != providers.OpVariation {
		var err error
		if dir, err = parseDirectives(req.Prompt); err != nil {
			return nil, withProvider(a.name, err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if err := sleep(ctx, a.latency+dir.latency); err != nil {
		return nil, providers.TransportError(ctx, a.name, fmt.Errorf("sandbox: simulated latency: %w", err))
	}
	if a.fail != "" {
		return nil, simulated(a.name, a.fail, false)
	}
	if dir.fail != "" {
		a.log.Debug("sandbox: simulated failure asked for by the prompt", zap.String("kind", string(dir.fail)))
		return nil, simulated(a.name, dir.fail, true)
	}
	n := max(req.N, 1)
	if dir.withhold >= n {
		return nil, &providers.Error{Kind: providers.KindContentPolicy, Param: "prompt", Provider: a.name, Code: "sandbox_withheld", Status: 200,
			Message: "the sandbox withheld every image, as the prompt asked with [sandbox:withhold=" + strconv.Itoa(dir.withhold) + "]"}
	}

	j, err := prepare(m, op, req)
	if err != nil {
		return nil, withProvider(a.name, err)
	}
	var base int64
	if req.Seed != nil {
		base = *req.Seed
	} else {
		base = rand.Int64N(randomSeedLimit)
	}
	res := &providers.Result{
		Created:           time.Now(),
		Withheld:          dir.withhold,
		UpstreamRequestID: fmt.Sprintf("sandbox-%016x", rand.Uint64()),
	}
	var total int64
	for i := range n - dir.withhold {
		if err := ctx.Err(); err != nil {
			return nil, providers.TransportError(ctx, a.name, fmt.Errorf("sandbox: render: %w", err))
		}
		seed := seedAt(base, i)
		data, err := encodePNG(j.render(i, n, seed))
		if err != nil {
			return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "the sandbox could not encode an image", Err: err}
		}
		if total += int64(len(data)); total > a.maxBytes {
			return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: a.name,
				Message: fmt.Sprintf("the provider's answer exceeded %d bytes", a.maxBytes)}
		}
		res.Images = append(res.Images, providers.Output{
			Data: data, ContentType: "image/png", Seed: &seed,
			Width: j.size.W, Height: j.size.H, RevisedPrompt: j.revisedPrompt(),
		})
	}
	return res, nil
}

// seedAt is the seed of image i of a call whose first image has seed base: base+i, wrapping
// within the non-negative int64 range.
func seedAt(base int64, i int) int64 {
	return int64((uint64(base) + uint64(i)) & math.MaxInt64)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// job is one validated call, with its inputs decoded and scaled to the output size.
type job struct {
	model    *providers.Model
	op       providers.Operation
	req      *providers.Request
	size     providers.Size
	srcSize  providers.Size
	source   *image.NRGBA // edit, variation
	area     []bool       // edit: pixels to repaint
	masked   bool         // edit: the area comes from a mask
	ref      *image.NRGBA // generate and edit: the average of the reference images
	refs     int
	weight   int // blend weight of ref, out of 256
	steps    int
	captions captionLayout
}

// prepare decodes the call's images and works out the output size.
func prepare(m *providers.Model, op providers.Operation, req *providers.Request) (*job, error) {
	j := &job{model: m, op: op, req: req, weight: strengthWeight(req.Strength)}
	j.steps = req.Steps
	if j.steps == 0 {
		j.steps = max(m.FixedSteps, m.DefaultSteps)
	}
	refs := req.Images
	var src image.Image
	if op == providers.OpEdit || op == providers.OpVariation {
		var err error
		if src, err = decodeImage("image", req.Images[0]); err != nil {
			return nil, err
		}
		b := src.Bounds()
		j.srcSize = providers.Size{W: b.Dx(), H: b.Dy()}
		refs = refs[1:]
	}
	j.size = outputSize(m, req, j.srcSize)
	j.captions = layoutFor(j.size.W, j.size.H)
	if src != nil {
		j.source = toNRGBA(src, j.size.W, j.size.H)
	}
	if op == providers.OpEdit {
		if req.Mask != nil {
			mask, err := decodeImage("mask", *req.Mask)
			if err != nil {
				return nil, err
			}
			if mb := mask.Bounds(); mb.Dx() != j.srcSize.W || mb.Dy() != j.srcSize.H {
				return nil, providers.ParamError("mask", "the mask must be the same size as the image (%s), not %dx%d", j.srcSize, mb.Dx(), mb.Dy())
			}
			j.area, j.masked = transparentArea(mask, j.size.W, j.size.H), true
		} else {
			j.area = transparentArea(j.source, j.size.W, j.size.H)
		}
	}
	if len(refs) > 0 {
		scaled := make([]*image.NRGBA, len(refs))
		for i, im := range refs {
			img, err := decodeImage("image", im)
			if err != nil {
				return nil, err
			}
			scaled[i] = toNRGBA(img, j.size.W, j.size.H)
		}
		j.ref, j.refs = averageNRGBA(scaled), len(refs)
	}
	return j, nil
}

// outputSize is the requested size, else the size an aspect ratio stands for, else the source
// image's size (fitted within the model's largest side), else the model's default.
func outputSize(m *providers.Model, req *providers.Request, src providers.Size) providers.Size {
	switch {
	case req.Width > 0 && req.Height > 0:
		return providers.Size{W: req.Width, H: req.Height}
	case req.AspectRatio != "":
		if s, ok := ratioSize(req.AspectRatio); ok {
			return s
		}
	case !src.IsZero():
		if limit := m.Size.MaxSide; limit > 0 && max(src.W, src.H) > limit {
			if src.W >= src.H {
				return providers.Size{W: limit, H: max(1, src.H*limit/src.W)}
			}
			return providers.Size{W: max(1, src.W*limit/src.H), H: limit}
		}
		return src
	}
	return m.Size.Default
}

// ratioSize is the size of a "W:H" aspect ratio: 1024 on the longer side, the shorter one
// rounded to the nearest multiple of 8.
func ratioSize(ratio string) (providers.Size, bool) {
	ws, hs, ok := strings.Cut(ratio, ":")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return providers.Size{}, false
	}
	short := func(a, b int) int { // round(ratioLongSide*a/b) to a multiple of 8, at least minSide
		return max(minSide, (ratioLongSide*a+b*multiple/2)/(b*multiple)*multiple)
	}
	if w >= h {
		return providers.Size{W: ratioLongSide, H: short(h, w)}, true
	}
	return providers.Size{W: short(w, h), H: ratioLongSide}, true
}

// hueAngle is the hue rotation of a variation: a multiple of 15 degrees, never 0.
func hueAngle(seed int64) int { return 15 * (1 + int(mix64(uint64(seed))%23)) }

// revisedPrompt is what the sandbox reports as the prompt it used when prompt enhancement is on.
func (j *job) revisedPrompt() string {
	if j.req.PromptEnhancement == nil || !*j.req.PromptEnhancement {
		return ""
	}
	return j.req.Prompt + ", as a sandbox test pattern with a caption"
}

// render draws image i of n with the given seed.
func (j *job) render(i, n int, seed int64) image.Image {
	r := image.Rect(0, 0, j.size.W, j.size.H)
	if j.op == providers.OpVariation {
		out := image.NewNRGBA(r)
		copy(out.Pix, j.source.Pix)
		deg := hueAngle(seed)
		hueRotate(out, deg)
		j.captions.draw(nrgbaCanvas{out}, j.captionLines(i, n, seed, deg))
		return out
	}
	h := patternHash(j.req.Prompt, seed)
	p := image.NewPaletted(r, newPalette(h, j.req.Style))
	paint(p, h)
	if j.op == providers.OpGenerate && j.ref == nil {
		j.captions.draw(palCanvas{p}, j.captionLines(i, n, seed, 0))
		return p
	}
	layer := paletteNRGBA(p)
	if j.ref != nil {
		blend(layer, j.ref, j.weight)
	}
	j.captions.draw(nrgbaCanvas{layer}, j.captionLines(i, n, seed, 0))
	if j.op == providers.OpEdit {
		return composite(layer, j.source, j.area)
	}
	return layer
}

// captionLines is what the caption of image i says, cut to what fits.
func (j *job) captionLines(i, n int, seed int64, hue int) []string {
	l := j.captions
	budget := l.maxLines()
	var lines []string
	add := func(s string, maxLines int) { lines = append(lines, wrap(s, l.cols, maxLines)...) }
	label := map[providers.Operation]string{providers.OpGenerate: "image", providers.OpEdit: "edit", providers.OpVariation: "variation"}[j.op]
	add("imagegw sandbox | "+j.model.ID+" | "+j.size.String(), 1)
	add(fmt.Sprintf("%s %d of %d | seed %d", label, i+1, n, seed), 1)
	req := j.req
	if j.op != providers.OpVariation {
		add("prompt: "+req.Prompt, 6)
		if req.NegativePrompt != "" {
			add("negative: "+req.NegativePrompt, 2)
		}
	}
	var parts []string
	if j.op != providers.OpVariation && j.steps > 0 {
		s := "steps " + strconv.Itoa(j.steps)
		if j.model.FixedSteps > 0 {
			s += " (fixed)"
		}
		parts = append(parts, s)
	}
	if g := req.GuidanceScale; g != nil {
		parts = append(parts, "guidance "+strconv.FormatFloat(*g, 'g', 4, 64))
	}
	if s := req.Strength; s != nil {
		parts = append(parts, "strength "+strconv.FormatFloat(*s, 'g', 4, 64))
	}
	if req.Quality != "" {
		parts = append(parts, "quality "+req.Quality)
	}
	if req.Style != "" {
		parts = append(parts, "style "+req.Style)
	}
	if req.PromptEnhancement != nil && *req.PromptEnhancement {
		parts = append(parts, "prompt enhancement")
	}
	if len(parts) > 0 {
		add(strings.Join(parts, " | "), 2)
	}
	switch {
	case j.op == providers.OpEdit && j.masked:
		add(fmt.Sprintf("edit of a %s source where the mask is transparent", j.srcSize), 1)
	case j.op == providers.OpEdit:
		add(fmt.Sprintf("edit of a %s source where it is transparent", j.srcSize), 1)
	case j.op == providers.OpVariation:
		add(fmt.Sprintf("hue +%d deg of a %s source", hue, j.srcSize), 1)
	}
	if j.refs > 0 {
		add(fmt.Sprintf("%d reference image(s) blended at %d/256", j.refs, j.weight), 1)
	}
	if len(lines) > budget {
		lines = lines[:budget]
	}
	return lines
}
