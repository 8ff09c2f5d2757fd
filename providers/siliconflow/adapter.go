package siliconflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// Name is the provider type this package registers.
const Name = "siliconflow"

// DefaultBaseURL is SiliconFlow's mainland API; the international one is
// "https://api.siliconflow.com/v1" (keys are not interchangeable between the two).
const DefaultBaseURL = "https://api.siliconflow.cn/v1"

// DefaultTimeout bounds one upstream call when the channel sets none.
const DefaultTimeout = sfwire.DefaultTimeout

// traceHeader carries SiliconFlow's request id on answers (PROVIDERS.md §1.1).
const traceHeader = "x-siliconcloud-trace-id"

func init() {
	providers.Register(Name, func(cfg providers.Config) (providers.Provider, error) { return New(cfg) })
}

// Interface guards: generation, plus instruction edits for the Qwen-Image-Edit models.
var (
	_ providers.Provider = (*Adapter)(nil)
	_ providers.Editor   = (*Adapter)(nil)
)

// Adapter is one SiliconFlow channel (one account and base URL).
type Adapter struct {
	name   string
	caller sfwire.Caller
	models []providers.Model
	byID   map[string]*providers.Model
	log    *zap.Logger
	now    func() time.Time
}

// New builds a SiliconFlow channel from cfg. It needs an API key; an empty BaseURL means
// DefaultBaseURL and a zero Timeout means DefaultTimeout. The adapter takes no Options.
func New(cfg providers.Config) (*Adapter, error) {
	cfg, err := cfg.Check(Name, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	endpoint, err := sfwire.Endpoint(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("siliconflow: %w", err)
	}
	a := &Adapter{
		name: cfg.Name,
		caller: sfwire.NewCaller(sfwire.Caller{Provider: cfg.Name, Endpoint: endpoint, APIKey: cfg.APIKey, HTTP: cfg.HTTP,
			Timeout: cfg.Timeout, MaxResponseBytes: cfg.MaxResponseBytes, TraceHeader: traceHeader}),
		models: Catalog(),
		log:    cfg.Logger,
		now:    time.Now,
	}
	a.byID = make(map[string]*providers.Model, len(a.models))
	for i := range a.models {
		a.byID[a.models[i].ID] = &a.models[i]
	}
	return a, nil
}

// Name returns the channel name.
func (a *Adapter) Name() string { return a.name }

// Models returns the built-in catalog; the slice and its models are the caller's to keep.
func (a *Adapter) Models() []providers.Model { return providers.CloneModels(a.models) }

// Generate makes images from a prompt, and from a reference image on the image-to-image models
// (SDXL, SD 2.1, Kolors).
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.do(ctx, providers.OpGenerate, req)
}

// Edit changes an image as the prompt instructs, on Qwen/Qwen-Image-Edit (one image) and
// Qwen/Qwen-Image-Edit-2509 (up to three: image, image2, image3). There is no mask: a request
// with one is refused (KindUnsupported, param "mask").
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.do(ctx, providers.OpEdit, req)
}

func (a *Adapter) do(ctx context.Context, op providers.Operation, req *providers.Request) (*providers.Result, error) {
	if req == nil {
		return nil, a.tag(providers.Errorf(providers.KindInternal, "no request"))
	}
	m := a.byID[req.Model]
	w, err := toWire(m, op, req)
	if err != nil {
		return nil, a.tag(err)
	}
	body, err := encode(w)
	if err != nil {
		return nil, a.tag(&providers.Error{Kind: providers.KindInternal, Message: "the request could not be encoded", Err: err})
	}
	start := time.Now()
	r, trace, err := a.caller.Post(ctx, body)
	if err != nil {
		a.log.Debug("upstream call failed", zap.String("model", req.Model), zap.String("trace_id", trace),
			zap.Duration("took", time.Since(start)), zap.Error(err))
		return nil, err
	}
	res, err := fromWire(a.name, m, req, r, trace, a.now())
	if err != nil {
		return nil, err
	}
	a.log.Debug("upstream call succeeded", zap.String("model", req.Model), zap.String("trace_id", trace),
		zap.Int("images", len(res.Images)), zap.Duration("took", time.Since(start)))
	return res, nil
}

// tag sets the channel name on an adapter-made error.
func (a *Adapter) tag(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Provider == "" {
		pe.Provider = a.name
	}
	return err
}
