package yunyx

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
const Name = "yunyx"

// DefaultBaseURL is yunyx's API (seed 003).
const DefaultBaseURL = "https://api.yunyx.top/v1"

// DefaultTimeout bounds one upstream call when the channel sets none.
const DefaultTimeout = sfwire.DefaultTimeout

func init() {
	providers.Register(Name, func(cfg providers.Config) (providers.Provider, error) { return New(cfg) })
}

// yunyx only generates: no edit, variation or other optional operation.
var _ providers.Provider = (*Adapter)(nil)

// Adapter is one yunyx channel (one account and base URL).
type Adapter struct {
	name   string
	caller sfwire.Caller
	models []providers.Model
	byID   map[string]*providers.Model
	log    *zap.Logger
	now    func() time.Time
}

// New builds a yunyx channel from cfg. It needs an API key; an empty BaseURL means DefaultBaseURL
// and a zero Timeout means DefaultTimeout. The adapter takes no Options.
func New(cfg providers.Config) (*Adapter, error) {
	cfg, err := cfg.Check(Name, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	endpoint, err := sfwire.Endpoint(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("yunyx: %w", err)
	}
	a := &Adapter{
		name: cfg.Name,
		caller: sfwire.NewCaller(sfwire.Caller{Provider: cfg.Name, Endpoint: endpoint, APIKey: cfg.APIKey, HTTP: cfg.HTTP,
			Timeout: cfg.Timeout, MaxResponseBytes: cfg.MaxResponseBytes}),
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

// Generate makes one image from a prompt.
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	if req == nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "no request"}
	}
	m := a.byID[req.Model]
	w, err := toWire(m, req)
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) && pe.Provider == "" {
			pe.Provider = a.name
		}
		return nil, err
	}
	body, err := encode(w)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "the request could not be encoded", Err: err}
	}
	start := time.Now()
	r, _, err := a.caller.Post(ctx, body)
	if err != nil {
		a.log.Debug("upstream call failed", zap.String("model", req.Model), zap.Duration("took", time.Since(start)), zap.Error(err))
		return nil, err
	}
	res, err := fromWire(a.name, m, req, r, a.now())
	if err != nil {
		return nil, err
	}
	a.log.Debug("upstream call succeeded", zap.String("model", req.Model), zap.Duration("took", time.Since(start)))
	return res, nil
}
