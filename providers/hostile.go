package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imagegw/imagegw/internal/redact"
)

// An upstream is not trusted with anything that reaches a client or a log: it may echo the
// gateway's key in any field of an error body, redirect a call elsewhere, or answer with junk.
// This file holds what every adapter uses to stay safe from that.

// ErrRedirect is the cause of the error a provider API call fails with when the upstream answers
// with a redirect. Calls go to the configured base URL only: a redirect is an upstream fault,
// never followed (following it would re-send the request, key included, to wherever the
// upstream points, and accept that host's answer as the provider's).
var ErrRedirect = errors.New("the provider answered with a redirect")

// NoRedirects returns a copy of c (sharing its transport and connection pool) that never
// follows a redirect: the call fails with ErrRedirect, which TransportError classifies as
// KindUpstreamBadResponse. Config.Check applies it to every adapter's client.
//
// A Timeout of c becomes a deadline on each request's context (the same bound on the whole
// exchange, the body included): http.Client enforces Timeout with two goroutines per request in
// flight (its own and the transport's legacy cancel), a context deadline with a timer.
func NoRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return ErrRedirect }
	if cc.Timeout > 0 {
		rt := cc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		cc.Transport, cc.Timeout = &deadlineTransport{rt: rt, timeout: cc.Timeout}, 0
	}
	return &cc
}

// Send makes one provider API call with c's transport, never following a redirect: a 3xx with a
// Location fails with ErrRedirect (in a *url.Error, as c.Do reports it), whatever c's
// CheckRedirect says. It is c.Do without the machinery Do keeps for redirects, cookies and
// Timeout, and 1.2 KB less stack on every request waiting on its upstream: with it, a request in
// flight fits the 8 KB stack a goroutine starts with (see BenchmarkInFlightFootprint). A client
// with a cookie jar or a Timeout (one NoRedirects did not make) goes through c.Do.
func Send(c *http.Client, req *http.Request) (*http.Response, error) {
	if c.Jar != nil || c.Timeout > 0 {
		return c.Do(req)
	}
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.Redacted(), Err: err}
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if resp.Header.Get("Location") != "" {
			_ = resp.Body.Close()
			return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.Redacted(), Err: ErrRedirect}
		}
	}
	return resp, nil
}

// urlErrorOp is the Op of the *url.Error c.Do would report: "Post" for POST.
func urlErrorOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}

// deadlineTransport bounds each exchange (headers and body) by timeout through its context.
type deadlineTransport struct {
	rt      http.RoundTripper
	timeout time.Duration
}

func (t *deadlineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if d, ok := req.Context().Deadline(); ok && time.Until(d) <= t.timeout {
		// The call's own deadline comes first (an adapter's call timeout is usually shorter
		// than the client's): it bounds the exchange already.
		return t.rt.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases its request's deadline when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// MaxUpstreamText is the most of an upstream's text UpstreamText keeps.
const MaxUpstreamText = 300

// Patterns of what looks like a credential in free text, for UpstreamText.
var (
	// authScheme is an Authorization value: "Bearer <token>", "Basic <token>".
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[^\s"'<>,;]+`)
	// keyValue is a named credential: "api_key=…", "token: …", "password=…".
	keyValue = regexp.MustCompile(`(?i)\b(api[_-]?key|access[_-]?key|secret|token|password|key)(["']?\s*[:=]\s*["']?)[^\s"'<>,;&]+`)
	// prefixed is a key in the usual vendor spelling: "sk-…", "pk_…".
	prefixed = regexp.MustCompile(`\b(sk|pk|rk|ak)[-_][A-Za-z0-9_\-]{4,}`)
	// longRun is a run of base64, base64url or hex characters long enough to be a key, a UUID or
	// a token; it is replaced when it mixes letters and digits (plain words do not).
	longRun = regexp.MustCompile(`[A-Za-z0-9+/=_\-]{20,}`)
)

// UpstreamText makes an upstream's free text (an error message, a raw body) fit for an error's
// cause or a log line — never for a client, whose messages adapters write themselves. It
// replaces secret (the channel's key, also URL-encoded or JSON-escaped) and anything that looks
// like a credential (Bearer and Basic values, key=value pairs, sk-… keys, long runs of base64 or
// hex mixing letters and digits) with "[redacted]", turns control characters into spaces, and
// keeps at most MaxUpstreamText bytes.
func UpstreamText(s, secret string) string {
	s = clip(s, 4*MaxUpstreamText) // bound the work; the tail is cut below anyway
	if secret != "" {
		s = strings.ReplaceAll(s, secret, redact.Placeholder)
		s = redact.Of(secret).String(s)
	}
	s = authScheme.ReplaceAllString(s, "$1 "+redact.Placeholder)
	s = keyValue.ReplaceAllString(s, "$1$2"+redact.Placeholder)
	s = prefixed.ReplaceAllString(s, redact.Placeholder)
	s = longRun.ReplaceAllStringFunc(s, func(run string) string {
		if strings.ContainsFunc(run, unicode.IsDigit) && strings.ContainsFunc(run, unicode.IsLetter) {
			return redact.Placeholder
		}
		return run
	})
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return clip(s, MaxUpstreamText)
}

// clip shortens s to at most n bytes on a rune boundary, marking a cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ScrubError is the last line of defence of an adapter's call: when err is an *Error, it removes
// secret (raw, URL-encoded or JSON-escaped) from its client-facing fields and its cause. A
// Message keeps its text with the secret replaced; a Param or Code holding the secret is dropped
// (they are names, and a name with a key in it is no name); a cause holding it is replaced by
// its redacted text. Other errors and an empty secret leave err as it is.
func ScrubError(err error, secret string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if secret == "" || !errors.As(err, &e) {
		return err
	}
	r := redact.Of(secret)
	has := func(s string) bool { return strings.Contains(s, secret) || r.Contains(s) }
	scrub := func(s string) string { return r.String(strings.ReplaceAll(s, secret, redact.Placeholder)) }
	if has(e.Message) {
		e.Message = scrub(e.Message)
	}
	if has(e.Param) {
		e.Param = ""
	}
	if has(e.Code) {
		e.Code = ""
	}
	if e.Err != nil && has(e.Err.Error()) {
		e.Err = errors.New(scrub(e.Err.Error()))
	}
	return err
}

// requestIDPattern is what an upstream's request or trace id looks like.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// RequestID returns an upstream's request id (from a response header or a body) for logs and
// Result.UpstreamRequestID: v when it looks like an id and does not hold secret, else "".
func RequestID(v, secret string) string {
	if !requestIDPattern.MatchString(v) || (secret != "" && (strings.Contains(v, secret) || redact.Of(secret).Contains(v))) {
		return ""
	}
	return v
}
