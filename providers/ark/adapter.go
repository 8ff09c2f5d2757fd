package ark

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
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
	name     string
	endpoint string
	apiKey   string
	timeout  time.Duration
	maxBytes int64
	client   *http.Client
	log      *zap.Logger
	now      func() time.Time
}

// New builds an Ark adapter from its channel configuration. It takes no options.
func New(cfg providers.Config) (*Adapter, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("ark: an API key is required")
	}
	for k := range cfg.Options {
		return nil, fmt.Errorf("ark: unknown option %q (the adapter takes none)", k)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ark: base URL %q is not an absolute http(s) URL", base)
	}
	a := &Adapter{
		name:     cfg.Name,
		endpoint: strings.TrimRight(base, "/") + "/images/generations",
		apiKey:   cfg.APIKey,
		timeout:  cfg.Timeout,
		maxBytes: cfg.MaxResponseBytes,
		client:   cfg.HTTP,
		log:      cfg.Logger,
		now:      time.Now,
	}
	if a.name == "" {
		a.name = Name
	}
	if a.timeout <= 0 {
		a.timeout = DefaultTimeout
	}
	if a.client == nil {
		a.client = &http.Client{}
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	return a, nil
}

// Name returns the channel name.
func (a *Adapter) Name() string { return a.name }

// Models returns a copy of the built-in catalog.
func (a *Adapter) Models() []providers.Model { return cloneModels(catalog) }

// Generate makes an image from a prompt, with reference images on the models that take them.
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.call(ctx, providers.OpGenerate, req)
}

// Edit changes an image following the prompt (SeedEdit, Seedream 4.x/5.0). Ark has no mask
// input: a request with a mask is refused.
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.call(ctx, providers.OpEdit, req)
}

// call translates req, sends it and translates the answer.
func (a *Adapter) call(ctx context.Context, op providers.Operation, req *providers.Request) (*providers.Result, error) {
	w, err := toWire(lookup(req.Model), op, req)
	if err != nil {
		return nil, a.own(err)
	}
	body, err := encodeRequest(w)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "the request could not be encoded", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "the upstream request could not be built", Err: fmt.Errorf("ark: build request: %w", err)}
	}
	sent := newRequestID()
	hreq.Header.Set("Authorization", "Bearer "+a.apiKey)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set(requestIDHeader, sent)
	resp, err := a.client.Do(hreq)
	if err != nil {
		return nil, providers.TransportError(ctx, a.name, fmt.Errorf("ark: send request: %w", err))
	}
	defer resp.Body.Close()
	data, err := providers.ReadBody(ctx, a.name, resp.Body, a.maxBytes)
	if err != nil {
		return nil, err
	}
	id := resp.Header.Get(requestIDHeader)
	if id == "" {
		id = sent
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := errorFromResponse(a.name, resp.StatusCode, resp.Header, data)
		a.log.Debug("ark: upstream error", zap.Int("status", resp.StatusCode), zap.String("code", e.Code),
			zap.String("kind", string(e.Kind)), zap.String("request_id", id), zap.Error(e.Err))
		return nil, e
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: a.name, Status: resp.StatusCode,
			Message: "the provider answered with a body that is not JSON",
			Err:     fmt.Errorf("ark: success answer has Content-Type %q (request id %s)", resp.Header.Get("Content-Type"), id)}
	}
	res, err := translate(a.name, data, req.ResponseFormat, req.Seed, a.now())
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			pe.Status = resp.StatusCode
			pe.Err = fmt.Errorf("%w (request id %s)", pe.Err, id)
		}
		return nil, err
	}
	res.UpstreamRequestID = id
	return res, nil
}

// own sets the provider on a translation error.
func (a *Adapter) own(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Provider == "" {
		pe.Provider = a.name
	}
	return err
}

// newRequestID returns a fresh id for X-Client-Request-Id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "imagegw-" + hex.EncodeToString(b[:])
}
