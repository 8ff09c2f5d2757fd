package sfwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// DefaultTimeout bounds one upstream call when the channel sets no timeout. Image generation
// takes seconds to tens of seconds; two minutes leaves room for queueing at busy times.
const DefaultTimeout = 120 * time.Second

// Caller performs POST {base}/images/generations for one channel.
type Caller struct {
	// Provider labels errors (the channel name).
	Provider string
	// Endpoint is the absolute URL of the generation endpoint.
	Endpoint string
	// APIKey is sent as "Authorization: Bearer <key>" and redacted from every error.
	APIKey string
	// HTTP is the channel's outbound client.
	HTTP *http.Client
	// Timeout bounds one call; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes caps the answer; zero means providers.DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// TraceHeader names the response header carrying the upstream's request id, if any.
	TraceHeader string

	// header is every call's request header, built once by NewCaller and shared (see
	// providers.Header).
	header http.Header
}

// NewCaller is c with its request header built once, for every call to share.
func NewCaller(c Caller) Caller {
	c.header = c.requestHeader()
	return c
}

// requestHeader is the header every call sends.
func (c *Caller) requestHeader() http.Header {
	if c.header != nil {
		return c.header
	}
	return providers.Header("Authorization", "Bearer "+c.APIKey, "Content-Type", "application/json", "Accept", "application/json")
}

// Endpoint joins a base URL (scheme, host and version path, such as
// "https://api.siliconflow.cn/v1") with Path. It refuses anything but an absolute http(s) URL
// without query or fragment.
func Endpoint(base string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		// url.Error quotes the whole URL, credentials included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("base URL is not a valid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base URL %q is not an absolute http(s) URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("base URL %q must not carry credentials, a query or a fragment", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/") + Path, nil
}

// Post sends body (an encoded Request) and returns the decoded answer and the upstream's request
// id. Every failure is a *providers.Error, and none holds the API key.
func (c *Caller) Post(ctx context.Context, body []byte) (_ *Response, _ string, err error) {
	defer func() { err = providers.ScrubError(err, c.APIKey) }()
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, "", &providers.Error{Kind: providers.KindInternal, Provider: c.Provider,
			Message: "the request to the provider could not be built", Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header = c.requestHeader()

	if c.HTTP == nil {
		return nil, "", &providers.Error{Kind: providers.KindInternal, Provider: c.Provider,
			Message: "the channel has no HTTP client", Err: fmt.Errorf("send request: nil HTTP client")}
	}
	resp, err := providers.Send(c.HTTP, req)
	if err != nil {
		return nil, "", providers.TransportError(ctx, c.Provider, fmt.Errorf("send request: %w", err))
	}
	defer resp.Body.Close()

	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = providers.DefaultMaxResponseBytes
	}
	if resp.ContentLength > limit {
		return nil, "", &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: c.Provider, Status: resp.StatusCode,
			Message: fmt.Sprintf("the provider's answer exceeded %d bytes", limit)}
	}
	b, err := providers.ReadBody(ctx, c.Provider, resp.Body, limit)
	if err != nil {
		return nil, "", err
	}
	trace := ""
	if c.TraceHeader != "" {
		trace = providers.RequestID(resp.Header.Get(c.TraceHeader), c.APIKey)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := ParseError(c.Provider, resp.StatusCode, resp.Header, b, c.APIKey)
		return nil, trace, e
	}
	r, err := DecodeResponse(c.Provider, resp.Header, b, c.APIKey)
	if err != nil {
		return nil, trace, err
	}
	return r, trace, nil
}
