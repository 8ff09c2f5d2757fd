package providers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Provider is what every adapter implements. An adapter reads the *Request it is given and never
// changes it (the front door lends its own, not a copy), and keeps no reference to it after
// returning.
type Provider interface {
	// Name is the channel name this instance was configured under (for example "siliconflow" or
	// "siliconflow-backup"); it labels metrics and logs.
	Name() string
	// Models is the adapter's built-in catalog: every upstream model it knows, with capabilities
	// and list prices. Config can add, alias, hide and re-price models on top of it.
	Models() []Model
	// Generate makes images from a prompt (and, where the model takes them, reference images).
	Generate(ctx context.Context, req *Request) (*Result, error)
}

// Editor changes the masked area of an image (OpEdit).
type Editor interface {
	Edit(ctx context.Context, req *Request) (*Result, error)
}

// Variator makes variations of an image (OpVariation).
type Variator interface {
	Vary(ctx context.Context, req *Request) (*Result, error)
}

// Remixer makes a new image from an image and a prompt (OpRemix).
type Remixer interface {
	Remix(ctx context.Context, req *Request) (*Result, error)
}

// Upscaler enlarges an image (OpUpscale).
type Upscaler interface {
	Upscale(ctx context.Context, req *Request) (*Result, error)
}

// Describer writes text descriptions of an image (OpDescribe); the Result carries Descriptions.
type Describer interface {
	Describe(ctx context.Context, req *Request) (*Result, error)
}

// Reframer extends an image to a new size or aspect ratio (OpReframe).
type Reframer interface {
	Reframe(ctx context.Context, req *Request) (*Result, error)
}

// BackgroundReplacer replaces an image's background following the prompt (OpReplaceBackground).
type BackgroundReplacer interface {
	ReplaceBackground(ctx context.Context, req *Request) (*Result, error)
}

// Streamer is implemented by adapters whose upstream can stream partial images while it makes
// an image (OpenAI's gpt-image models with "stream": true and "partial_images"). It is optional,
// found by type assertion like Editor; the front door uses it only when a client streams and
// asks for partial images, and calls Generate or Edit otherwise.
type Streamer interface {
	// Streams reports whether req (OpGenerate or OpEdit, Model already the upstream id) can be
	// streamed upstream. When it cannot, the caller uses Do.
	Streams(req *Request) bool
	// Stream makes the images of req as Do would, asking the upstream for up to partials (1–3)
	// previews of each image. onPartial gets each preview as it arrives, on the calling
	// goroutine and never after Stream returns; it must not keep p.Data beyond the call unless
	// it copies it. The Result is what Do would return; the StreamDetails, when not nil, are
	// parallel to Result.Images.
	Stream(ctx context.Context, req *Request, partials int, onPartial func(p Partial)) (*Result, []StreamDetails, error)
}

// Partial is a preview of an image still being made, streamed by the upstream.
type Partial struct {
	// Index is the preview's 0-based number among the previews of its image.
	Index       int
	Data        []byte
	ContentType string
	// Width and Height are the preview's size, when the upstream says.
	Width, Height int
	StreamDetails
}

// StreamDetails is what a streaming upstream says about an image besides its bytes: the settings
// it used ("" when it does not say) and, on a final image, the tokens it counted.
type StreamDetails struct {
	Quality, Background, OutputFormat string
	Usage                             *StreamUsage
}

// StreamUsage is OpenAI's token count for an image (gpt-image models).
type StreamUsage struct {
	InputTokens      int64
	InputImageTokens int64
	InputTextTokens  int64
	OutputTokens     int64
	TotalTokens      int64
}

// Supports reports whether p implements op.
func Supports(p Provider, op Operation) bool {
	switch op {
	case OpGenerate:
		return true
	case OpEdit:
		_, ok := p.(Editor)
		return ok
	case OpVariation:
		_, ok := p.(Variator)
		return ok
	case OpRemix:
		_, ok := p.(Remixer)
		return ok
	case OpUpscale:
		_, ok := p.(Upscaler)
		return ok
	case OpDescribe:
		_, ok := p.(Describer)
		return ok
	case OpReframe:
		_, ok := p.(Reframer)
		return ok
	case OpReplaceBackground:
		_, ok := p.(BackgroundReplacer)
		return ok
	}
	return false
}

// Do sends req to the method of p that implements req.Operation. The call's context watches
// whether its request reached the upstream (WatchSend), so a transport failure says whether it
// came after the request was sent (Error.AfterSend).
func Do(ctx context.Context, p Provider, req *Request) (*Result, error) {
	ctx = WatchSend(ctx)
	switch req.Operation {
	case OpGenerate, "":
		return p.Generate(ctx, req)
	case OpEdit:
		if e, ok := p.(Editor); ok {
			return e.Edit(ctx, req)
		}
	case OpVariation:
		if v, ok := p.(Variator); ok {
			return v.Vary(ctx, req)
		}
	case OpRemix:
		if r, ok := p.(Remixer); ok {
			return r.Remix(ctx, req)
		}
	case OpUpscale:
		if u, ok := p.(Upscaler); ok {
			return u.Upscale(ctx, req)
		}
	case OpDescribe:
		if d, ok := p.(Describer); ok {
			return d.Describe(ctx, req)
		}
	case OpReframe:
		if r, ok := p.(Reframer); ok {
			return r.Reframe(ctx, req)
		}
	case OpReplaceBackground:
		if b, ok := p.(BackgroundReplacer); ok {
			return b.ReplaceBackground(ctx, req)
		}
	}
	return nil, &Error{Kind: KindUnsupported, Param: "model", Provider: p.Name(),
		Message: "this model does not support the " + string(req.Operation) + " operation"}
}

// Config is what a factory gets to build one channel (one upstream account) of a provider.
// Base URL and credentials come only from configuration, never from a request.
type Config struct {
	// Name is the channel name; it defaults to the provider type.
	Name string
	// BaseURL overrides the adapter's default host (for example the simulator's address).
	BaseURL string
	// APIKey is the upstream credential. Adapters send it only in the auth header and never put
	// it in an error, a log line or a metric label.
	APIKey string
	// Timeout bounds one upstream call; zero means the adapter's default.
	Timeout time.Duration
	// MaxResponseBytes caps an upstream answer; zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Options are adapter-specific settings (for example Ideogram's "layout": "aihubmix").
	Options map[string]string
	// HTTP is the outbound client (internal/httpx): connection pooling, SSRF-safe dialing.
	// Adapters must use it, never http.DefaultClient. Nil means a plain client (tests only).
	// Check replaces it with a copy that never follows redirects (see NoRedirects).
	HTTP *http.Client
	// Logger is never nil when built through New.
	Logger *zap.Logger
}

// Factory builds a provider instance from its configuration.
type Factory func(Config) (Provider, error)

// Check validates the parts of a channel's configuration every HTTP adapter shares and returns
// a copy with the defaults filled in: an API key is required; options not in allowed are
// refused; an empty BaseURL becomes defaultBase, which must be an absolute http(s) URL; Name
// defaults to provider, HTTP to a plain client and Logger to a no-op logger. HTTP is made a
// client that does not follow redirects (NoRedirects): an API call answered with a 3xx fails
// with ErrRedirect. Errors start with the provider's name and never contain the key.
func (c Config) Check(provider, defaultBase string, allowed ...string) (Config, error) {
	if c.APIKey == "" {
		return c, fmt.Errorf("%s: an API key is required (%s_API_KEY)", provider,
			strings.ToUpper(strings.ReplaceAll(provider, "-", "_")))
	}
	for k := range c.Options {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return c, fmt.Errorf("%s: unknown option %q (this adapter takes no options)", provider, k)
			}
			return c, fmt.Errorf("%s: unknown option %q (known: %s)", provider, k, strings.Join(allowed, ", "))
		}
	}
	if c.BaseURL == "" {
		c.BaseURL = defaultBase
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("%s: the base URL is not an absolute http(s) URL", provider)
	}
	if c.Name == "" {
		c.Name = provider
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{}
	}
	c.HTTP = NoRedirects(c.HTTP)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}
