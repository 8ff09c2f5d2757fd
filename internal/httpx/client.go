package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	// DefaultTimeout bounds a whole exchange, body included. Image upstreams answer only when the
	// images are made, which can take minutes; per-call deadlines come from the request context.
	DefaultTimeout = 5 * time.Minute
	// DefaultDialTimeout bounds establishing a TCP connection.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTLSHandshakeTimeout bounds a TLS handshake.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for response headers once the request is sent.
	// It is long because synchronous image APIs send headers only when generation is done.
	DefaultResponseHeaderTimeout = 3 * time.Minute
	// DefaultIdleConnTimeout is how long an idle keep-alive connection stays in the pool.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConns caps idle connections across all hosts.
	DefaultMaxIdleConns = 1024
	// DefaultMaxIdleConnsPerHost caps idle connections per host, well above net/http's default of
	// 2 so that peak concurrency to one upstream does not keep reopening connections.
	DefaultMaxIdleConnsPerHost = 256
	// DefaultMaxRedirects is how many redirects a request follows.
	DefaultMaxRedirects = 5
	// DefaultMaxResponseHeaderBytes caps the size of response headers.
	DefaultMaxResponseHeaderBytes = 128 << 10
	// DefaultUserAgent is sent when a request sets no User-Agent.
	DefaultUserAgent = "imagegw"
	// DefaultMinBodyRate is the slowest a response body may arrive, in bytes per second. Any
	// real upstream or image host sends far faster; a trickle is an attack or a dead peer.
	DefaultMinBodyRate = 1 << 10
	// DefaultBodyRateWindow is the window DefaultMinBodyRate is measured over.
	DefaultBodyRateWindow = 10 * time.Second
)

// Options configures a client built by New. Zero values mean the defaults above; a negative
// duration means "no limit of this kind" (the request context still applies).
type Options struct {
	// Timeout bounds a whole exchange including reading the body (http.Client.Timeout). The
	// gateway sets it from outbound.timeout.
	Timeout time.Duration
	// DialTimeout bounds establishing a connection.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after the request is written.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout is how long an idle connection is kept for reuse.
	IdleConnTimeout time.Duration
	// MinBodyRate is the slowest a response body may arrive once the headers are in, in bytes
	// per second, measured over each BodyRateWindow: a window that delivers less than
	// MinBodyRate × BodyRateWindow bytes (and does not reach the end of the body) fails the read
	// with ErrTooSlow. It stops a peer that trickles a body from holding a request until
	// Timeout. The rate counts what the caller reads, so callers must read bodies promptly (the
	// adapters and the Fetcher read them whole at once). Zero means DefaultMinBodyRate;
	// negative turns the check off.
	MinBodyRate int64
	// BodyRateWindow is the window MinBodyRate is measured over. Zero means
	// DefaultBodyRateWindow; negative turns the check off.
	BodyRateWindow time.Duration

	// MaxIdleConns caps idle connections across all hosts.
	MaxIdleConns int
	// MaxIdleConnsPerHost caps idle connections per host.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost caps all connections (dialing, active, idle) per host; zero means no cap.
	MaxConnsPerHost int

	// AllowHosts lists destinations allowed even when they are loopback or private: a host name
	// ("localhost", any port), host:port ("sim.internal:8089"), an IP ("127.0.0.1", "::1"),
	// ip:port ("127.0.0.1:8089", "[::1]:8089") or a CIDR prefix ("10.20.0.0/16"). A host name
	// entry trusts whatever that name resolves to. Use it for the simulator, tests and upstreams
	// on a private network; never for client-supplied URLs in production.
	AllowHosts []string
	// HTTPSOnly refuses plain http URLs and redirects to them (ErrBlockedScheme). By default both
	// http and https are allowed; other schemes never are.
	HTTPSOnly bool

	// MaxRedirects caps the redirects one GET or HEAD request follows. Zero means
	// DefaultMaxRedirects; negative means redirects are not followed and the 3xx response is
	// returned as is. Requests with other methods (API calls) never follow a redirect. A hop
	// carries only the Accept, Accept-Language and User-Agent headers of the original request:
	// no credentials (Authorization, cookies, custom key headers), no Referer.
	MaxRedirects int
	// UserAgent is sent on requests that set none. Empty means DefaultUserAgent.
	UserAgent string
	// MaxResponseHeaderBytes caps response headers. Zero means DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int64
	// TLSClientConfig, when set, is cloned into the transport (for example to trust a test CA).
	TLSClientConfig *tls.Config
	// DisableKeepAlives turns connection reuse off (for tests and debugging).
	DisableKeepAlives bool
}

// Validate reports every problem with o at once. New panics on options that Validate rejects,
// so configuration loading should call Validate first.
func (o Options) Validate() error {
	var errs []error
	if _, err := parseAllowList(o.AllowHosts); err != nil {
		errs = append(errs, err)
	}
	if o.MaxIdleConns < 0 || o.MaxIdleConnsPerHost < 0 || o.MaxConnsPerHost < 0 {
		errs = append(errs, errors.New("httpx: connection limits must not be negative"))
	}
	if o.MaxResponseHeaderBytes < 0 {
		errs = append(errs, errors.New("httpx: MaxResponseHeaderBytes must not be negative"))
	}
	return errors.Join(errs...)
}

func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func intOr(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// New returns an SSRF-safe client: its dialer refuses non-public addresses (see Blocked) that
// AllowHosts does not list, on every connection including redirect hops; it follows at most
// MaxRedirects redirects, only of GET and HEAD requests, only to http(s) URLs, and without the
// request's credentials; it refuses non-http(s) URLs with ErrBlockedScheme; it fails a body that
// arrives slower than MinBodyRate with ErrTooSlow; it never uses a proxy. The client is safe for concurrent use and should be shared: it owns the
// connection pool. New panics if o fails Validate.
func New(o Options) *http.Client {
	if err := o.Validate(); err != nil {
		panic(err)
	}
	allow, _ := parseAllowList(o.AllowHosts)

	dialer := &net.Dialer{
		Timeout:   durationOr(o.DialTimeout, DefaultDialTimeout),
		KeepAlive: 30 * time.Second,
		Control:   control(allow),
	}
	// Entries allowed by name skip the address check: a host name entry trusts its resolution.
	trusted := &net.Dialer{Timeout: dialer.Timeout, KeepAlive: dialer.KeepAlive}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && allow.allowsName(host, port) {
			return trusted.DialContext(ctx, network, addr)
		}
		return dialer.DialContext(ctx, network, addr)
	}

	t := &http.Transport{
		Proxy:                  nil, // never: a proxy would connect on our behalf and bypass the check
		DialContext:            dial,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    durationOr(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout:  durationOr(o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout),
		IdleConnTimeout:        durationOr(o.IdleConnTimeout, DefaultIdleConnTimeout),
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           intOr(o.MaxIdleConns, DefaultMaxIdleConns),
		MaxIdleConnsPerHost:    intOr(o.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost),
		MaxConnsPerHost:        o.MaxConnsPerHost,
		MaxResponseHeaderBytes: o.MaxResponseHeaderBytes,
		DisableKeepAlives:      o.DisableKeepAlives,
	}
	if t.MaxResponseHeaderBytes == 0 {
		t.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if o.TLSClientConfig != nil {
		t.TLSClientConfig = o.TLSClientConfig.Clone()
	}

	ua := o.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	g := &guard{base: t, httpsOnly: o.HTTPSOnly, userAgent: ua, window: durationOr(o.BodyRateWindow, DefaultBodyRateWindow)}
	if o.MinBodyRate >= 0 && g.window > 0 {
		g.minRate = o.MinBodyRate
		if g.minRate == 0 {
			g.minRate = DefaultMinBodyRate
		}
	}
	maxRedirects := intOr(o.MaxRedirects, DefaultMaxRedirects)
	return &http.Client{
		Transport: g,
		Timeout:   durationOr(o.Timeout, DefaultTimeout),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// Only downloads (GET, HEAD) follow redirects. Anything else is an API call: its body
			// and credentials must never be re-sent elsewhere, so the 3xx comes back as is.
			if maxRedirects < 0 || (via[0].Method != http.MethodGet && via[0].Method != http.MethodHead) {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, maxRedirects)
			}
			stripHeaders(req.Header)
			return g.checkScheme(req.URL)
		},
	}
}

// redirectHeaders are the only request headers a redirect hop carries. net/http copies the
// first request's headers to every hop and drops Authorization and Cookie only when the host
// changes (not when only the port does) and never drops custom credential headers such as
// Api-Key; Referer would leak the previous URL with its signed query. A hop gets none of those.
var redirectHeaders = []string{"Accept", "Accept-Language", "User-Agent"}

// stripHeaders deletes every header of a redirect hop but redirectHeaders.
func stripHeaders(h http.Header) {
	for k := range h {
		if !slices.Contains(redirectHeaders, k) {
			delete(h, k)
		}
	}
}

// guard is the client's RoundTripper: it refuses bad schemes before anything is dialed, sets
// the default User-Agent and enforces the minimum body rate.
type guard struct {
	base      *http.Transport
	httpsOnly bool
	userAgent string
	minRate   int64         // bytes per second; 0: no check
	window    time.Duration // the rate's window
}

func (g *guard) checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !g.httpsOnly {
			return nil
		}
		return fmt.Errorf("%w: %q (only https is allowed)", ErrBlockedScheme, u.Scheme)
	}
	return fmt.Errorf("%w: %q (only http and https are allowed)", ErrBlockedScheme, u.Scheme)
}

// RoundTrip checks the scheme and sends req with the underlying transport.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.checkScheme(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		// A RoundTripper must not modify its request: a shallow copy with a header map of its own.
		req = req.WithContext(req.Context())
		req.Header = withUserAgent(req.Header, g.userAgent)
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil || g.minRate == 0 || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	resp.Body = newRateBody(resp.Body, g.minRate*int64(g.window)/int64(time.Second), g.window)
	return resp, nil
}

// withUserAgent is a copy of h with User-Agent set. Out of RoundTrip's line: a map iterator is
// 0.1 KB of every upstream call's stack.
//
//go:noinline
func withUserAgent(h http.Header, ua string) http.Header {
	c := make(http.Header, len(h)+1)
	for k, vs := range h {
		c[k] = vs
	}
	c["User-Agent"] = []string{ua}
	return c
}

// CloseIdleConnections closes the pool's idle connections (http.Client.CloseIdleConnections
// calls it).
func (g *guard) CloseIdleConnections() { g.base.CloseIdleConnections() }
