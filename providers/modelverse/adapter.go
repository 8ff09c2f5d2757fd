package modelverse

import (
	"bytes"
	"context"
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
	name     string
	endpoint string
	apiKey   string
	timeout  time.Duration
	maxBytes int64
	client   *http.Client
	log      *zap.Logger
	now      func() time.Time
}

// New builds a Modelverse adapter from its channel configuration. It takes no options.
func New(cfg providers.Config) (*Adapter, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("modelverse: an API key is required")
	}
	for k := range cfg.Options {
		return nil, fmt.Errorf("modelverse: unknown option %q (the adapter takes none)", k)
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("modelverse: base URL %q is not an absolute http(s) URL", base)
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

// call translates req, sends it and translates the answer.
func (a *Adapter) call(ctx context.Context, op providers.Operation, req *providers.Request) (*providers.Result, error) {
	m, k := lookup(req.Model)
	w, err := toWire(m, k, op, req)
	if err != nil {
		return nil, a.own(err)
	}
	body, err := encodeRequest(w)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "the request could not be encoded", Err: err}
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
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: a.name, Message: "the upstream request could not be built", Err: fmt.Errorf("modelverse: build request: %w", err)}
	}
	hreq.Header.Set("Authorization", "Bearer "+a.apiKey)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(hreq)
	if err != nil {
		return nil, providers.TransportError(ctx, a.name, fmt.Errorf("modelverse: send request: %w", err))
	}
	defer resp.Body.Close()
	data, err := providers.ReadBody(ctx, a.name, resp.Body, a.maxBytes)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := errorFromResponse(a.name, resp.StatusCode, resp.Header, data)
		a.log.Debug("modelverse: upstream error", zap.Int("status", resp.StatusCode), zap.String("code", e.Code),
			zap.String("kind", string(e.Kind)), zap.Error(e.Err))
		return nil, e
	}
	id := requestID("", resp.Header)
	if !isJSON(resp.Header.Get("Content-Type")) {
		return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: a.name, Status: resp.StatusCode,
			Message: "the provider answered with a body that is not JSON",
			Err:     fmt.Errorf("modelverse: success answer has Content-Type %q (request id %q)", resp.Header.Get("Content-Type"), id)}
	}
	res, err := translate(a.name, data, h, a.now())
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			pe.Status = resp.StatusCode
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
