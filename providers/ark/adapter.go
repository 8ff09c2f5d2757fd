package ark

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire"
)

// Name is the provider type this package registers.
const Name = "ark"

// DefaultBaseURL is Volcengine Ark's API root (Beijing region), including the version path.
const DefaultBaseURL = "https://ark.cn-beijing.volces.com/api/v3"

// DefaultTimeout bounds one upstream call when the channel sets no timeout. Seedream 4.x at 4K
// takes tens of seconds.
const DefaultTimeout = 120 * time.Second

// requestIDHeader carries the id the gateway gives each call; Ark echoes it in the answer and
// the official SDK reports it as the request id (§3.1.3).
const requestIDHeader = "X-Client-Request-Id"

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

// Adapter is one Ark channel: an API key and a base URL.
type Adapter struct {
	ch  *arkwire.Channel
	now func() time.Time
}

// New builds an Ark adapter from its channel configuration. It takes no options.
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

// Generate makes an image from a prompt, with reference images on the models that take them.
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.call(ctx, providers.OpGenerate, req)
}

// Edit changes an image following the prompt (SeedEdit, Seedream 4.x/5.0). Ark has no mask
// input: a request with a mask is refused.
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.call(ctx, providers.OpEdit, req)
}

// call translates req, sends it and translates the answer. Each call carries a fresh
// X-Client-Request-Id; the id Ark echoes (or, failing that, the one sent) names the call in logs
// and in Result.UpstreamRequestID. No error leaves with the key in it.
func (a *Adapter) call(ctx context.Context, op providers.Operation, req *providers.Request) (_ *providers.Result, err error) {
	defer func() { err = a.ch.Scrub(err) }()
	w, err := toWire(lookup(req.Model), op, req)
	if err != nil {
		return nil, a.ch.Own(err)
	}
	body, err := encodeRequest(w)
	if err != nil {
		return nil, a.ch.EncodeError(err)
	}
	sent := newRequestID()
	ans, err := a.ch.Post(ctx, body, http.Header{requestIDHeader: {sent}})
	if err != nil {
		return nil, err
	}
	defer ans.Release() // unless Keep hands the body to the result
	id := a.ch.RequestID(ans.Header.Get(requestIDHeader))
	if id == "" {
		id = sent
	}
	if ans.Failed() {
		e := errorFromResponse(a.ch.Name, ans.Status, ans.Header, ans.Body)
		a.ch.LogError(ans.Status, e, zap.String("request_id", id))
		return nil, e
	}
	if err := a.ch.RequireJSON(ans, "request id "+id); err != nil {
		return nil, err
	}
	res, err := translate(a.ch.Name, ans.Body, req.ResponseFormat, req.Seed, a.now())
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			pe.Status = ans.Status
			pe.Err = fmt.Errorf("%w (request id %s)", pe.Err, id)
		}
		return nil, err
	}
	res.UpstreamRequestID = id
	ans.Keep(res) // the images' base64 text points into the body
	return res, nil
}

// newRequestID returns a fresh id for X-Client-Request-Id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "imagegw-" + hex.EncodeToString(b[:])
}
