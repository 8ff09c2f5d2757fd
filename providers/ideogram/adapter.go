package ideogram

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
)

// Name is the provider type this adapter registers under.
const Name = "ideogram"

// DefaultBaseURL is Ideogram's official API host. Legacy paths (/generate, …) and 3.0 paths
// (/v1/ideogram-v3/…) both hang off it, so it has no version path of its own.
const DefaultBaseURL = "https://api.ideogram.ai"

// AiHubMixBaseURL is the AiHubMix proxy (seed 002): the same paths under /ideogram, the same
// Api-Key header carrying an AiHubMix key.
const AiHubMixBaseURL = "https://aihubmix.com/ideogram"

// Channel options (providers.Config.Options).
const (
	// OptionLayout selects the host layout: LayoutOfficial (default) or LayoutAiHubMix.
	OptionLayout = "layout"
	// LayoutOfficial is api.ideogram.ai's layout: paths directly under the base URL.
	LayoutOfficial = "official"
	// LayoutAiHubMix is AiHubMix's layout: the same paths under /ideogram. With no base URL the
	// channel uses AiHubMixBaseURL; a base URL with an empty path gets /ideogram appended.
	LayoutAiHubMix = "aihubmix"
)

// DefaultTimeout bounds one upstream call when the channel sets no timeout. Ideogram answers
// synchronously; QUALITY renders of eight images can take most of a minute.
const DefaultTimeout = 120 * time.Second

func init() {
	providers.Register(Name, func(cfg providers.Config) (providers.Provider, error) { return New(cfg) })
}

// Interface guards: every optional operation Ideogram has.
var (
	_ providers.Provider           = (*Adapter)(nil)
	_ providers.Editor             = (*Adapter)(nil)
	_ providers.Variator           = (*Adapter)(nil)
	_ providers.Remixer            = (*Adapter)(nil)
	_ providers.Upscaler           = (*Adapter)(nil)
	_ providers.Describer          = (*Adapter)(nil)
	_ providers.Reframer           = (*Adapter)(nil)
	_ providers.BackgroundReplacer = (*Adapter)(nil)
)

// Adapter is one Ideogram channel (one upstream account on the official host or on AiHubMix).
type Adapter struct {
	name     string
	base     string // without a trailing slash
	key      string
	timeout  time.Duration
	maxBytes int64
	client   *http.Client
	log      *zap.Logger
	models   []providers.Model
	now      func() time.Time
	// header is a JSON call's request header, shared (see providers.Header); a multipart call
	// sends a copy with its own Content-Type.
	header http.Header
}

// New builds an Ideogram channel from its configuration.
func New(cfg providers.Config) (*Adapter, error) {
	layout := strings.ToLower(strings.TrimSpace(cfg.Options[OptionLayout]))
	defaultBase := DefaultBaseURL
	switch layout {
	case LayoutOfficial, "":
	case LayoutAiHubMix:
		defaultBase = AiHubMixBaseURL
	default:
		return nil, fmt.Errorf("ideogram: option %s must be %q or %q, not %q", OptionLayout, LayoutOfficial, LayoutAiHubMix, layout)
	}
	cfg.BaseURL = strings.TrimSpace(cfg.BaseURL)
	cfg, err := cfg.Check(Name, defaultBase, OptionLayout)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.BaseURL) // Check made sure it parses
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ideogram: base URL %q must not have a query or fragment", cfg.BaseURL)
	}
	if layout == LayoutAiHubMix && strings.Trim(u.Path, "/") == "" {
		u.Path = "/ideogram"
	}
	a := &Adapter{
		name:     cfg.Name,
		base:     strings.TrimRight(u.String(), "/"),
		key:      cfg.APIKey,
		timeout:  cfg.Timeout,
		maxBytes: cfg.MaxResponseBytes,
		client:   cfg.HTTP,
		log:      cfg.Logger,
		models:   Catalog(),
		now:      time.Now,
		header:   providers.Header("Api-Key", cfg.APIKey, "Content-Type", contentTypeJSON, "Accept", "application/json"),
	}
	if a.timeout <= 0 {
		a.timeout = DefaultTimeout
	}
	return a, nil
}

// Name is the channel name.
func (a *Adapter) Name() string { return a.name }

// BaseURL is the base URL calls go to (for logs and tests).
func (a *Adapter) BaseURL() string { return a.base }

// Models returns the built-in catalog (a fresh copy).
func (a *Adapter) Models() []providers.Model { return Catalog() }

// Generate makes images from a prompt: legacy /generate, or /v1/ideogram-v3/generate for V_3 (whose
// Request.Images are style reference images).
func (a *Adapter) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpGenerate, req)
}

// Edit changes the masked area of Images[0]: legacy /edit (V_2, V_2_TURBO) or 3.0 edit. The
// OpenAI mask (transparent = change) is converted to Ideogram's black-and-white mask; with the
// extension field mask_format "bw" the mask is taken as already black = change.
func (a *Adapter) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpEdit, req)
}

// Vary makes variations of Images[0]: a remix with the request's prompt, or DefaultVariationPrompt
// when it has none.
func (a *Adapter) Vary(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpVariation, req)
}

// Remix makes new images from Images[0] and the prompt (image_weight 1-100 sets how close they
// stay). Without a prompt it makes variations (DefaultVariationPrompt).
func (a *Adapter) Remix(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpRemix, req)
}

// Upscale enlarges Images[0] twofold (/upscale, the same endpoint for every model).
func (a *Adapter) Upscale(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpUpscale, req)
}

// Describe writes descriptions of Images[0] (/describe, the same endpoint for every model).
func (a *Adapter) Describe(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpDescribe, req)
}

// Reframe extends Images[0] (ideally square) to the requested size: legacy /reframe or 3.0 reframe.
func (a *Adapter) Reframe(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpReframe, req)
}

// ReplaceBackground replaces the background of Images[0] following the prompt (3.0 only).
func (a *Adapter) ReplaceBackground(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return a.run(ctx, providers.OpReplaceBackground, req)
}

// run validates and translates req, calls Ideogram and translates the answer. Errors carry the
// channel name as their Provider.
func (a *Adapter) run(ctx context.Context, op providers.Operation, req *providers.Request) (*providers.Result, error) {
	res, err := a.call(ctx, op, req)
	if err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			pe.Provider = a.name
		}
		return nil, err
	}
	return res, nil
}

// call runs one operation. No error leaves with the key in it: a hostile upstream may echo it.
func (a *Adapter) call(ctx context.Context, op providers.Operation, req *providers.Request) (_ *providers.Result, err error) {
	defer func() { err = providers.ScrubError(err, a.key) }()
	if req == nil {
		return nil, &providers.Error{Kind: providers.KindInvalidRequest, Provider: Name, Message: "empty request"}
	}
	m, ok := lookupModel(a.models, req.Model)
	if !ok {
		known := make([]string, len(a.models))
		for i := range a.models {
			known[i] = a.models[i].ID
		}
		sort.Strings(known)
		return nil, &providers.Error{Kind: providers.KindModelNotFound, Param: "model", Provider: Name,
			Message: fmt.Sprintf("Ideogram has no model %q (known: %s)", req.Model, strings.Join(known, ", "))}
	}
	c, err := buildCall(m, op, req)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	body, length, contentType := c.body("")
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+c.path, body)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: Name,
			Message: "the upstream request could not be built", Err: fmt.Errorf("ideogram: build request: %w", err)}
	}
	hreq.ContentLength = length
	hreq.Header = a.header
	if contentType != contentTypeJSON {
		hreq.Header = providers.WithHeader(a.header, "Content-Type", contentType)
	}

	start := time.Now()
	resp, err := providers.Send(a.client, hreq)
	if err != nil {
		return nil, providers.TransportError(ctx, Name, fmt.Errorf("ideogram: %s %s: %w", op, c.path, err))
	}
	defer resp.Body.Close()
	raw, err := providers.ReadBody(ctx, Name, resp.Body, a.maxBytes)
	if err != nil {
		return nil, err
	}
	a.log.Debug("ideogram call", zap.String("op", string(op)), zap.String("path", c.path),
		zap.Int("status", resp.StatusCode), zap.Int("bytes", len(raw)), zap.Duration("took", time.Since(start)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, classify(resp.StatusCode, resp.Header, raw, op, a.key)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, badResponse("ideogram: %s answered 200 with Content-Type %q", c.path, resp.Header.Get("Content-Type"))
	}
	var res *providers.Result
	if op == providers.OpDescribe {
		res, err = decodeDescribe(raw)
	} else {
		res, err = decodeImages(raw, a.now())
	}
	if err != nil {
		return nil, err
	}
	res.UpstreamRequestID = providers.RequestID(resp.Header.Get("X-Request-Id"), a.key)
	if res.Withheld > 0 {
		a.log.Info("ideogram withheld unsafe images", zap.String("op", string(op)), zap.Int("withheld", res.Withheld),
			zap.Int("delivered", len(res.Images)))
	}
	return res, nil
}
