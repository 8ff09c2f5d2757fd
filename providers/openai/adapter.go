package openai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
)

// Name is the provider type of OpenAI's own API.
const Name = "openai"

// CompatibleName is the provider type of any OpenAI-compatible host (such as seed 001's
// aggregator). Its environment variables are OPENAI_COMPATIBLE_API_KEY and
// OPENAI_COMPATIBLE_BASE_URL: the config loader must map '-' to '_'.
const CompatibleName = "openai-compatible"

// DefaultBaseURL is OpenAI's API root, including the version path. An OpenAI-compatible channel
// has no default: its base URL is required.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultTimeout bounds one upstream call when the channel sets none. gpt-image at high quality
// can take well over a minute, so it is generous.
const DefaultTimeout = 180 * time.Second

// Options keys the "openai" channel takes.
const (
	// OptOrganization is sent as the OpenAI-Organization header.
	OptOrganization = "organization"
	// OptProject is sent as the OpenAI-Project header.
	OptProject = "project"
)

// Options keys the "openai-compatible" channel takes (besides OptOrganization and OptProject).
const (
	// OptSizeField says how the host takes the size: "width_height" (default; seed 001's
	// integer width and height), "size" (OpenAI's "WxH" string) or "both".
	OptSizeField = "size_field"
	// OptExtensions lists, comma-separated, the extension fields the host takes among
	// negative_prompt, seed, num_inference_steps and guidance_scale (default: all four, as seed
	// 001; "none" for none). The catalog offers exactly these, so the front door refuses the others.
	OptExtensions = "extensions"
	// OptResponseFormat: "true" sends the client's response_format hint (default "false": seed
	// 001 shows no such field; the answer may carry URLs or base64 either way).
	OptResponseFormat = "response_format"
	// OptMaxN: how many images one call may ask for with "n" (default 1: seed 001 shows no n,
	// so the front door fans out).
	OptMaxN = "max_n"
	// OptURLTTL: how long the host's image URLs live, as a Go duration ("1h"; default unknown).
	OptURLTTL = "url_ttl"
)

func init() {
	providers.Register(Name, func(cfg providers.Config) (providers.Provider, error) {
		a, err := New(cfg)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return a, nil
	})
	providers.Register(CompatibleName, func(cfg providers.Config) (providers.Provider, error) {
		a, err := NewCompatible(cfg)
		if err != nil {
			return nil, err
		}
		return a, nil
	})
}

// Interface guards: OpenAI edits and varies; a compatible host only generates.
var (
	_ providers.Provider = (*Adapter)(nil)
	_ providers.Editor   = (*Adapter)(nil)
	_ providers.Variator = (*Adapter)(nil)
	_ providers.Provider = (*Compatible)(nil)
)

// client is the HTTP side both adapters share.
type client struct {
	name     string
	baseURL  string
	apiKey   string
	timeout  time.Duration
	maxBytes int64
	http     *http.Client
	log      *zap.Logger
	// jsonHeader and streamHeader are the headers of a JSON call answered in JSON and in
	// events, built once and shared by every call (see providers.Header).
	jsonHeader, streamHeader http.Header
}

func newClient(provider string, cfg providers.Config, defaultBase string, allowed ...string) (*client, error) {
	if cfg.BaseURL == "" && defaultBase == "" {
		return nil, fmt.Errorf("%s: a base URL is required (for example https://api.example.com/v1)", provider)
	}
	cfg, err := cfg.Check(provider, defaultBase, allowed...)
	if err != nil {
		return nil, err
	}
	c := &client{
		name:     cfg.Name,
		baseURL:  strings.TrimRight(cfg.BaseURL, "/"),
		apiKey:   cfg.APIKey,
		timeout:  cfg.Timeout,
		maxBytes: cfg.MaxResponseBytes,
		http:     cfg.HTTP,
		log:      cfg.Logger,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBytes <= 0 {
		c.maxBytes = providers.DefaultMaxResponseBytes
	}
	fields := []string{"Authorization", "Bearer " + c.apiKey, "Content-Type", "application/json"}
	if v := cfg.Options[OptOrganization]; v != "" {
		fields = append(fields, "OpenAI-Organization", v)
	}
	if v := cfg.Options[OptProject]; v != "" {
		fields = append(fields, "OpenAI-Project", v)
	}
	c.jsonHeader = providers.Header(append(fields, "Accept", "application/json")...)
	c.streamHeader = providers.WithHeader(c.jsonHeader, "Accept", "text/event-stream")
	return c, nil
}

// call posts a body to path and translates the answer. Whatever fails, the error leaves without
// the API key (a hostile host may echo it anywhere).
func (c *client) call(ctx context.Context, req *providers.Request, path, contentType string,
	size int64, body func() io.Reader, o resultOptions) (_ *providers.Result, err error) {
	defer func() { err = providers.ScrubError(err, c.apiKey) }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, path, contentType, "application/json", size, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.answer(ctx, req, resp, o)
}

// send posts a body to path and returns the upstream's answer, whatever its status.
func (c *client) send(ctx context.Context, path, contentType, accept string, size int64, body func() io.Reader) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, body())
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: c.name,
			Message: "could not build the provider request", Err: fmt.Errorf("openai: build request: %w", err)}
	}
	hr.ContentLength = size
	hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(body()), nil }
	hr.Header = c.header(contentType, accept)
	resp, err := providers.Send(c.http, hr)
	if err != nil {
		return nil, providers.TransportError(ctx, c.name, fmt.Errorf("openai: send request: %w", err))
	}
	return resp, nil
}

// header is a call's request header: a shared one for a JSON body, a copy with the body's
// own Content-Type (a multipart boundary) otherwise.
func (c *client) header(contentType, accept string) http.Header {
	h := c.jsonHeader
	if accept == "text/event-stream" {
		h = c.streamHeader
	}
	if contentType != "application/json" {
		h = providers.WithHeader(h, "Content-Type", contentType)
	}
	return h
}

// answer reads and translates a JSON answer (an error status included).
// The body is read into a pooled buffer the images' base64 text points into: the Result gives
// it back on Release, or, when no image points into it, this does on return.
func (c *client) answer(ctx context.Context, req *providers.Request, resp *http.Response, o resultOptions) (_ *providers.Result, err error) {
	raw, release, err := providers.ReadResponse(ctx, c.name, resp, c.maxBytes)
	if err != nil {
		return nil, err
	}
	kept := false
	defer func() {
		if !kept {
			release()
		}
	}()
	reqID := providers.RequestID(resp.Header.Get("X-Request-Id"), c.apiKey)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.upstreamError(resp, raw, reqID)
	}
	ct := resp.Header.Get("Content-Type")
	if !isJSON(ct) && !(looksJSON(raw) && (ct == "" || strings.HasPrefix(ct, "text/plain"))) {
		return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: c.name, Status: resp.StatusCode,
			Message: "the provider answered with something other than JSON"}
	}
	r, err := decodeImages(raw)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: c.name, Status: resp.StatusCode,
			Message: "the provider's answer could not be decoded", Err: err}
	}
	if len(r.Data) == 0 && len(r.Error) > 0 && string(r.Error) != "null" {
		e := classifyError(c.name, resp.StatusCode, resp.Header, []byte(`{"error":`+string(r.Error)+`}`), c.apiKey)
		return nil, e
	}
	o.now = time.Now()
	res, err := toResult(c.name, r, req, o)
	if err != nil {
		return nil, err
	}
	res.UpstreamRequestID = reqID
	for i := range res.Images {
		if len(res.Images[i].B64) > 0 {
			res.OnRelease(release)
			kept = true
			break
		}
	}
	if r.Usage != nil {
		c.logUsage(r.Usage, reqID)
	}
	return res, nil
}

// upstreamError classifies an error answer and logs it. It and logUsage are out of answer's
// line: their log fields would be 0.5 KB of the stack of every request decoding an answer.
//
//go:noinline
func (c *client) upstreamError(resp *http.Response, raw []byte, reqID string) *providers.Error {
	e := classifyError(c.name, resp.StatusCode, resp.Header, raw, c.apiKey)
	c.log.Debug("upstream error", zap.Int("status", resp.StatusCode), zap.String("code", e.Code),
		zap.String("kind", string(e.Kind)), zap.String("upstream_request_id", reqID))
	return e
}

//go:noinline
func (c *client) logUsage(u *usage, reqID string) {
	c.log.Debug("upstream usage", zap.Int64("input_tokens", u.InputTokens),
		zap.Int64("output_tokens", u.OutputTokens), zap.String("upstream_request_id", reqID))
}

// inputError gives an adapter-side refusal its provider name.
func (c *client) inputError(err error) error {
	if pe, ok := err.(*providers.Error); ok {
		pe.Provider = c.name
		return pe
	}
	return &providers.Error{Kind: providers.KindInternal, Provider: c.name, Message: "could not encode the provider request", Err: err}
}

// Adapter speaks OpenAI's own Images API: dall-e-2 (generate, edit, variation), dall-e-3
// (generate) and gpt-image-1 / gpt-image-1-mini (generate, edit).
type Adapter struct {
	c *client
}

// New builds an OpenAI channel. Options: OptOrganization, OptProject.
func New(cfg providers.Config) (*Adapter, error) {
	c, err := newClient(Name, cfg, DefaultBaseURL, OptOrganization, OptProject)
	if err != nil {
		return nil, err
	}
	if c.name == "" {
		c.name = Name
	}
	return &Adapter{c: c}, nil
}

// Name is the channel name.
func (a *Adapter) Name() string { return a.c.name }

// Models is OpenAI's built-in catalog.
func (a *Adapter) Models() []providers.Model { return openAIModels() }

func (a *Adapter) ttl(model string) time.Duration {
	if familyOf(model) == famGPTImage {
		return 0
	}
	return URLTTL
}

// Generate calls POST /images/generations.
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	body, err := encodeGenerate(req, openAIDialect)
	if err != nil {
		return nil, a.c.inputError(err)
	}
	return a.c.call(ctx, req, "/images/generations", "application/json", int64(len(body)),
		func() io.Reader { return bytes.NewReader(body) }, resultOptions{ttl: a.ttl(req.Model)})
}

// Edit calls POST /images/edits (multipart).
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	mp, err := encodeEdit(req, "")
	if err != nil {
		return nil, a.c.inputError(err)
	}
	return a.c.call(ctx, req, "/images/edits", mp.contentType, mp.size, mp.reader, resultOptions{ttl: a.ttl(req.Model)})
}

// Vary calls POST /images/variations (multipart, dall-e-2).
func (a *Adapter) Vary(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	mp, err := encodeVariation(req, "")
	if err != nil {
		return nil, a.c.inputError(err)
	}
	return a.c.call(ctx, req, "/images/variations", mp.contentType, mp.size, mp.reader, resultOptions{ttl: URLTTL})
}

// Compatible speaks the OpenAI Images API of another host (seed 001's aggregator and the like):
// JSON generations with seed 001's extension fields, as configured by the channel's options.
type Compatible struct {
	c      *client
	d      dialect
	maxN   int
	urlTTL time.Duration
}

// NewCompatible builds an OpenAI-compatible channel. The base URL is required. Options:
// OptSizeField, OptExtensions, OptResponseFormat, OptMaxN, OptURLTTL, OptOrganization, OptProject.
func NewCompatible(cfg providers.Config) (*Compatible, error) {
	c, err := newClient(CompatibleName, cfg, "", OptSizeField, OptExtensions, OptResponseFormat, OptMaxN, OptURLTTL,
		OptOrganization, OptProject)
	if err != nil {
		return nil, err
	}
	if c.name == "" {
		c.name = CompatibleName
	}
	a := &Compatible{c: c, d: dialect{compatible: true, sizeField: sizeWidthHeight, ext: allExtensions}, maxN: 1}
	o := cfg.Options
	switch v := o[OptSizeField]; v {
	case "":
	case sizeString, sizeWidthHeight, sizeBoth:
		a.d.sizeField = v
	default:
		return nil, fmt.Errorf("openai-compatible: option %s=%q: want size, width_height or both", OptSizeField, v)
	}
	if v, ok := o[OptExtensions]; ok {
		a.d.ext = 0
		for f := range strings.SplitSeq(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" || f == "none" {
				continue
			}
			p, ok := extParam(f)
			if !ok {
				return nil, fmt.Errorf("openai-compatible: option %s: unknown field %q (known: %s, %s, %s, %s)",
					OptExtensions, f, ExtNegativePrompt, ExtSeed, ExtSteps, ExtGuidance)
			}
			a.d.ext |= p
		}
	}
	if v := o[OptResponseFormat]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("openai-compatible: option %s=%q: want true or false", OptResponseFormat, v)
		}
		a.d.responseFormat = b
	}
	if v := o[OptMaxN]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10 {
			return nil, fmt.Errorf("openai-compatible: option %s=%q: want an integer from 1 to 10", OptMaxN, v)
		}
		a.maxN = n
	}
	if v := o[OptURLTTL]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("openai-compatible: option %s=%q: want a positive duration such as 1h", OptURLTTL, v)
		}
		a.urlTTL = d
	}
	return a, nil
}

// Name is the channel name.
func (a *Compatible) Name() string { return a.c.name }

// Models is seed 001's catalog, narrowed to the extension fields this host takes.
func (a *Compatible) Models() []providers.Model { return compatibleModels(a.d.ext, a.maxN, a.urlTTL) }

// Generate calls POST /images/generations on the compatible host.
func (a *Compatible) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	if req.N > a.maxN {
		return nil, a.c.inputError(providers.ParamError("n", "this host makes at most %d images per call", a.maxN))
	}
	body, err := encodeGenerate(req, a.d)
	if err != nil {
		return nil, a.c.inputError(err)
	}
	return a.c.call(ctx, req, "/images/generations", "application/json", int64(len(body)),
		func() io.Reader { return bytes.NewReader(body) },
		resultOptions{ttl: a.urlTTL, echoSeed: req.Seed != nil})
}
