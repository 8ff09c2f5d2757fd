package arkwire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
)

// Path is the generation endpoint, relative to a base URL that ends in the version path.
const Path = "/images/generations"

// Channel is one configured channel of either upstream: where to send, with which key, how long
// to wait and how much of the answer to read.
type Channel struct {
	// Vendor names the upstream ("ark", "modelverse") at the start of every log text.
	Vendor string
	// Name is the channel name; it labels errors.
	Name string
	// Endpoint is the absolute URL of the generation endpoint.
	Endpoint string
	// APIKey is sent as "Authorization: Bearer <key>" and nowhere else.
	APIKey string
	// Timeout bounds one call.
	Timeout time.Duration
	// MaxBytes caps the answer's body; zero means providers.DefaultMaxResponseBytes.
	MaxBytes int64
	// HTTP is the channel's outbound client.
	HTTP *http.Client
	// Log receives a debug line for each upstream error.
	Log *zap.Logger

	// header is every call's request header, built once by NewChannel and shared (see
	// providers.Header).
	header http.Header
}

// requestHeader is the header every call sends (before its extra fields).
func (c *Channel) requestHeader() http.Header {
	if c.header != nil {
		return c.header
	}
	return providers.Header("Authorization", "Bearer "+c.APIKey, "Content-Type", "application/json", "Accept", "application/json")
}

// NewChannel checks a channel's configuration the way both adapters' New do: an API key is
// required, no option is accepted, and the base URL (defaultBase when empty) must be an
// absolute http(s) URL. The channel is named vendor unless cfg names it, waits defaultTimeout
// unless cfg sets a timeout, and uses a plain client and no logging unless cfg gives them.
func NewChannel(vendor, defaultBase string, defaultTimeout time.Duration, cfg providers.Config) (*Channel, error) {
	cfg, err := cfg.Check(vendor, defaultBase)
	if err != nil {
		return nil, err
	}
	c := &Channel{
		Vendor:   vendor,
		Name:     cfg.Name,
		Endpoint: strings.TrimRight(cfg.BaseURL, "/") + Path,
		APIKey:   cfg.APIKey,
		Timeout:  cfg.Timeout,
		MaxBytes: cfg.MaxResponseBytes,
		HTTP:     cfg.HTTP,
		Log:      cfg.Logger,
	}
	if c.Timeout <= 0 {
		c.Timeout = defaultTimeout
	}
	c.header = c.requestHeader()
	return c, nil
}

// Answer is an upstream's answer with its body read in full, into a pooled buffer
// (providers.ReadResponse): Release it when done, or Keep it with the Result whose images
// point into it.
type Answer struct {
	Status  int
	Header  http.Header
	Body    []byte
	release func()
}

// Release gives the body's buffer back, unless Keep handed it to a Result; Body must not be
// read after it. It may be called more than once.
func (a *Answer) Release() {
	if a.release != nil {
		a.release()
		a.release = nil
	}
}

// Keep hands the body's buffer to res when res's images point into it (their B64): res
// gives it back on Release, and the Answer's Release does nothing.
func (a *Answer) Keep(res *providers.Result) {
	if res == nil || a.release == nil {
		return
	}
	for _, im := range res.Images {
		if len(im.B64) > 0 {
			res.OnRelease(a.release)
			a.release = nil
			return
		}
	}
}

// Failed reports whether the answer's status is outside 2xx.
func (a *Answer) Failed() bool { return a.Status < 200 || a.Status > 299 }

// Post sends body as JSON with the channel's key, plus the headers in extra, and returns the
// answer. The call is bounded by the channel's timeout and the body by its cap. Every failure is a
// *providers.Error; an answer with any status is not a failure here.
func (c *Channel) Post(ctx context.Context, body []byte, extra http.Header) (*Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Provider: c.Name, Message: "the upstream request could not be built",
			Err: fmt.Errorf("%s: build request: %w", c.Vendor, err)}
	}
	req.Header = c.requestHeader()
	if len(extra) > 0 {
		h := providers.WithHeader(req.Header)
		for k, vs := range extra {
			h[http.CanonicalHeaderKey(k)] = vs
		}
		req.Header = h
	}
	resp, err := providers.Send(c.HTTP, req)
	if err != nil {
		return nil, providers.TransportError(ctx, c.Name, fmt.Errorf("%s: send request: %w", c.Vendor, err))
	}
	defer resp.Body.Close()
	data, release, err := providers.ReadResponse(ctx, c.Name, resp, c.MaxBytes)
	if err != nil {
		return nil, err
	}
	return &Answer{Status: resp.StatusCode, Header: resp.Header, Body: data, release: release}, nil
}

// EncodeError is the error for a request body that could not be encoded.
func (c *Channel) EncodeError(err error) error {
	return &providers.Error{Kind: providers.KindInternal, Provider: c.Name, Message: "the request could not be encoded", Err: err}
}

// Scrub removes the channel's key from an error (see providers.ScrubError): the adapters apply
// it to every error they return, since the upstream may echo the key in any field.
func (c *Channel) Scrub(err error) error { return providers.ScrubError(err, c.APIKey) }

// RequestID returns an upstream's request id fit for logs and results (see providers.RequestID).
func (c *Channel) RequestID(v string) string { return providers.RequestID(v, c.APIKey) }

// LogError writes the debug line for an upstream error answer; fields go between the error's
// kind and the error itself. The error is scrubbed of the key first.
func (c *Channel) LogError(status int, e *providers.Error, fields ...zap.Field) {
	c.Scrub(e)
	all := append([]zap.Field{zap.Int("status", status), zap.String("code", e.Code), zap.String("kind", string(e.Kind))}, fields...)
	c.Log.Debug(c.Vendor+": upstream error", append(all, zap.Error(e.Err))...)
}

// RequireJSON returns nil when a success answer's Content-Type names JSON, else the bad-response
// error. ref identifies the request in the log text (for example "request id 1").
func (c *Channel) RequireJSON(a *Answer, ref string) error {
	ct := a.Header.Get("Content-Type")
	if IsJSON(ct) {
		return nil
	}
	return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: c.Name, Status: a.Status,
		Message: "the provider answered with a body that is not JSON",
		Err:     fmt.Errorf("%s: success answer has Content-Type %q (%s)", c.Vendor, ct, ref)}
}

// Own sets the provider on a translation error that has none, so a request refused before the
// upstream is labelled with the channel.
func (c *Channel) Own(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Provider == "" {
		pe.Provider = c.Name
	}
	return err
}

// Encode marshals a request body without HTML escaping (a prompt's "&" stays "&"), so the body
// is what a person would write and byte for byte what the golden files show.
func Encode(vendor string, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", vendor, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
