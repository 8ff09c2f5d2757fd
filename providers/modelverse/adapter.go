package modelverse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire"
)

// Name is the provider type this package registers.
const Name = "modelverse"

// DefaultBaseURL is UCloud Modelverse's OpenAI-compatible API root, including the version path.
const DefaultBaseURL = "https://api.modelverse.cn/v1"

// DefaultTimeout bounds one upstream call when the channel sets no timeout.
const DefaultTimeout = 120 * time.Second

func init() {
	providers.Register(Name, func(cfg providers.Config) (providers.Provider, error) {
		a, err := New(cfg)
		if err != nil {
			return nil, err
		}
		return a, nil
	})
}

// Interface guards.
var (
	_ providers.Provider = (*Adapter)(nil)
	_ providers.Editor   = (*Adapter)(nil)
)

// Adapter is one Modelverse channel: an API key and a base URL.
type Adapter struct {
	ch  *arkwire.Channel
	now func() time.Time
}

// New builds a Modelverse adapter from its channel configuration. It takes no options.
func New(cfg providers.Config) (*Adapter, error) {
	ch, err := arkwire.NewChannel(Name, DefaultBaseURL, DefaultTimeout, cfg)
	if err != nil {
		return nil, err
	}
	return &Adapter{ch: ch, now: time.Now}, nil
}

// Name returns the channel name.
func (a *Adapter) Name() string { return a.ch.Name }

// Models returns a copy of the built-in catalog.
func (a *Adapter) Models() []providers.Model { return providers.CloneModels(catalog) }

// Generate makes images from a prompt: FLUX.1-dev (optionally from one reference image) and the
// Kontext text2image models.
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.call(ctx, providers.OpGenerate, req)
}

// Edit changes images following the prompt: Kontext (one image), Kontext multi (several) and
// Step1X-Edit. There is no mask input: a request with a mask is refused.
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.call(ctx, providers.OpEdit, req)
}

// call translates req, sends it and translates the answer. Modelverse's request id comes back
// in a response header, if at all; it becomes Result.UpstreamRequestID. No error leaves with the
// key in it.
func (a *Adapter) call(ctx context.Context, op providers.Operation, req *providers.Request) (_ *providers.Result, err error) {
	defer func() { err = a.ch.Scrub(err) }()
	m, k := lookup(req.Model)
	w, err := toWire(m, k, op, req)
	if err != nil {
		return nil, a.ch.Own(err)
	}
	body, err := encodeRequest(w)
	if err != nil {
		return nil, a.ch.EncodeError(err)
	}
	h := hints{want: req.ResponseFormat, seed: req.Seed}
	if m != nil {
		h.ttl = m.URLTTL
	}
	if m != nil && k == fluxDev {
		h.size = providers.Size{W: req.Width, H: req.Height}
		if h.size.IsZero() {
			h.size = m.Size.Default
		}
	}
	ans, err := a.ch.Post(ctx, body, nil)
	if err != nil {
		return nil, err
	}
	defer ans.Release() // unless Keep hands the body to the result
	if ans.Failed() {
		e := errorFromResponse(a.ch.Name, ans.Status, ans.Header, ans.Body)
		a.ch.LogError(ans.Status, e)
		return nil, e
	}
	id := a.ch.RequestID(requestID("", ans.Header))
	if err := a.ch.RequireJSON(ans, fmt.Sprintf("request id %q", id)); err != nil {
		return nil, err
	}
	res, err := translate(a.ch.Name, ans.Body, h, a.now())
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			pe.Status = ans.Status
		}
		return nil, err
	}
	res.UpstreamRequestID = id
	ans.Keep(res) // the images' base64 text points into the body
	return res, nil
}
