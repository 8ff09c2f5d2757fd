package providers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failure. The set is closed; the kind is the metrics label and decides the
// status and OpenAI error type the client sees.
type Kind string

// Caller faults: the request cannot be served as asked (4xx).
const (
	KindInvalidRequest Kind = "invalid_request"
	// KindUnsupported: the model or provider cannot honour a parameter or operation.
	KindUnsupported   Kind = "unsupported"
	KindContentPolicy Kind = "content_policy"
	KindModelNotFound Kind = "model_not_found"
	KindTooLarge      Kind = "too_large"
)

// Policy: the gateway refuses by rule.
const (
	KindUnauthenticated  Kind = "unauthenticated"
	KindPermissionDenied Kind = "permission_denied"
	KindRateLimited      Kind = "rate_limited"
	KindQuotaExceeded    Kind = "quota_exceeded"
)

// Provider faults: the upstream failed, or failed us.
const (
	// KindUpstreamAuth: our credential for the upstream was refused.
	KindUpstreamAuth        Kind = "upstream_auth"
	KindUpstreamRateLimited Kind = "upstream_rate_limited"
	// KindUpstreamUnavailable: 5xx, connection refused or reset.
	KindUpstreamUnavailable Kind = "upstream_unavailable"
	KindUpstreamTimeout     Kind = "upstream_timeout"
	// KindUpstreamBadResponse: a malformed, truncated, oversized or unexpected answer.
	KindUpstreamBadResponse Kind = "upstream_bad_response"
)

// Gateway faults.
const (
	KindInternal Kind = "internal"
	// KindUnavailable: a dependency of the gateway (store, limiter) is down.
	KindUnavailable Kind = "unavailable"
	// KindCanceled: the client went away.
	KindCanceled Kind = "canceled"
)

// Fault groups kinds by whose fault the failure is.
type Fault string

// Fault groups.
const (
	FaultCaller   Fault = "caller"
	FaultPolicy   Fault = "policy"
	FaultProvider Fault = "provider"
	FaultGateway  Fault = "gateway"
)

// Fault returns the group k belongs to.
func (k Kind) Fault() Fault {
	switch k {
	case KindInvalidRequest, KindUnsupported, KindContentPolicy, KindModelNotFound, KindTooLarge:
		return FaultCaller
	case KindUnauthenticated, KindPermissionDenied, KindRateLimited, KindQuotaExceeded:
		return FaultPolicy
	case KindUpstreamAuth, KindUpstreamRateLimited, KindUpstreamUnavailable, KindUpstreamTimeout, KindUpstreamBadResponse:
		return FaultProvider
	}
	return FaultGateway
}

// Error is the one error type adapters return. Message is safe to show a client: it never
// contains an upstream body verbatim, a credential or an internal address.
type Error struct {
	Kind     Kind
	Message  string
	Param    string
	Provider string
	// Status is the upstream HTTP status, when there was one (for logs, never shown as ours).
	Status int
	// Code is the upstream's own error code (for logs and tests).
	Code string
	// RetryAfter is the upstream's requested wait, when it gave one.
	RetryAfter time.Duration
	// Final says that sending the same request again cannot succeed (for example more images
	// than a rate limit's whole burst): the client gets no Retry-After and x-should-retry: false.
	Final bool
	// AfterSend says the call failed after its request had reached the upstream in full (the
	// connection reset or the answer broke off while it was awaited or read): the upstream may
	// have generated, and billed, the images. TransportError sets it; sending the call again, on
	// this channel or another, could pay twice (see Idempotent).
	AfterSend bool
	// Err is the cause, for logs; it is not shown to clients.
	Err error
}

func (e *Error) Error() string {
	s := string(e.Kind)
	if e.Provider != "" {
		s = e.Provider + ": " + s
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != "" {
			s += " " + e.Code
		}
		s += ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of kind k with a client-safe message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// ParamError builds a KindInvalidRequest error naming the offending parameter.
func ParamError(param, format string, args ...any) *Error {
	return &Error{Kind: KindInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// UnsupportedParam builds a KindUnsupported error naming the parameter.
func UnsupportedParam(param, format string, args ...any) *Error {
	return &Error{Kind: KindUnsupported, Param: param, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err: an *Error's kind, KindCanceled / KindUpstreamTimeout for
// context errors, KindInternal otherwise.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindUpstreamTimeout
	}
	return KindInternal
}

// TransportError classifies an error from sending a request or reading its answer: the
// caller's cancellation, a redirect (ErrRedirect: an upstream fault), a deadline or a body that
// arrived too slowly, a network failure. ctx is the call's context. A timeout or network failure
// is AfterSend unless the request provably never reached the upstream in full (see Sent).
func TransportError(ctx context.Context, provider string, err error) *Error {
	e := &Error{Provider: provider, Err: err}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled):
		e.Kind, e.Message = KindCanceled, "the request was canceled"
	case errors.Is(err, ErrRedirect):
		// The *url.Error names the API URL, never the redirect's target; still, the cause is
		// only the fact, not where the upstream pointed.
		e.Kind, e.Message = KindUpstreamBadResponse, "the provider answered with a redirect, which the gateway does not follow"
		e.Err = ErrRedirect
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		e.Kind, e.Message = KindUpstreamTimeout, "the provider did not answer in time"
		e.AfterSend = afterSend(ctx, err)
	default:
		e.Kind, e.Message = KindUpstreamUnavailable, "the provider could not be reached"
		if e.AfterSend = afterSend(ctx, err); e.AfterSend {
			e.Message = "the provider's answer broke off"
		}
	}
	return e
}

// StatusKind is the default kind for an upstream HTTP error status, for adapters to refine
// with what the body says.
func StatusKind(status int) Kind {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return KindUpstreamAuth
	case status == http.StatusTooManyRequests:
		return KindUpstreamRateLimited
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return KindUpstreamTimeout
	case status == http.StatusNotFound:
		return KindModelNotFound
	case status == http.StatusRequestEntityTooLarge:
		return KindTooLarge
	case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
		return KindInvalidRequest
	case status >= 500:
		return KindUpstreamUnavailable
	}
	return KindUpstreamBadResponse
}

// MaxRetryAfter bounds the wait an upstream may ask for: a larger Retry-After (a hostile or
// broken upstream's 1e9 seconds) is taken as this long.
const MaxRetryAfter = 10 * time.Minute

// ParseRetryAfter reads a Retry-After header (seconds or HTTP date), clamped to MaxRetryAfter;
// zero when absent or bad.
func ParseRetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseUint(v, 10, 64)
	switch {
	case err == nil && secs < uint64(MaxRetryAfter/time.Second):
		return time.Duration(secs) * time.Second
	case err == nil || errors.Is(err, strconv.ErrRange):
		return MaxRetryAfter
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}
