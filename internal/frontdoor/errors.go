package frontdoor

import (
	"encoding/json"
	"errors"
	"github.com/imagegw/imagegw/internal/httpx"
	"net/http"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// envelope is OpenAI's error body.
type envelope struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// statusOf maps an error kind to the HTTP status, OpenAI error type and default code.
func statusOf(k providers.Kind) (status int, typ, code string) {
	switch k {
	case providers.KindInvalidRequest:
		return http.StatusBadRequest, "invalid_request_error", "invalid_value"
	case providers.KindUnsupported:
		return http.StatusBadRequest, "invalid_request_error", "unsupported_parameter"
	case providers.KindContentPolicy:
		return http.StatusBadRequest, "invalid_request_error", "content_policy_violation"
	case providers.KindModelNotFound:
		return http.StatusNotFound, "invalid_request_error", "model_not_found"
	case providers.KindTooLarge:
		return http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large"
	case providers.KindUnauthenticated:
		return http.StatusUnauthorized, "invalid_request_error", "invalid_api_key"
	case providers.KindPermissionDenied:
		return http.StatusForbidden, "permission_error", "model_not_allowed"
	case providers.KindRateLimited:
		return http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded"
	case providers.KindQuotaExceeded:
		return http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota"
	case providers.KindUpstreamAuth:
		return http.StatusBadGateway, "server_error", "upstream_auth_failed"
	case providers.KindUpstreamRateLimited:
		return http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded"
	case providers.KindUpstreamUnavailable:
		return http.StatusBadGateway, "server_error", "upstream_unavailable"
	case providers.KindUpstreamTimeout:
		return http.StatusGatewayTimeout, "server_error", "upstream_timeout"
	case providers.KindUpstreamBadResponse:
		return http.StatusBadGateway, "server_error", "upstream_bad_response"
	case providers.KindUnavailable:
		return http.StatusServiceUnavailable, "server_error", "service_unavailable"
	case providers.KindCanceled:
		return 499, "invalid_request_error", "request_canceled"
	}
	return http.StatusInternalServerError, "server_error", "internal_error"
}

// shouldNotRetry lists kinds where an SDK's automatic retry would not help or could double a
// charge (the upstream may already have billed).
func shouldNotRetry(k providers.Kind) bool {
	switch k {
	case providers.KindUpstreamAuth, providers.KindUpstreamTimeout, providers.KindQuotaExceeded:
		return true
	}
	return false
}

// asError turns any error into a *providers.Error safe to show; unknown errors become internal
// errors with a generic message (their text may hold internals and is only logged).
func asError(err error) *providers.Error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe
	}
	k := providers.KindOf(err)
	msg := "The server had an error while processing your request."
	if k == providers.KindCanceled {
		msg = "The request was canceled."
	}
	return &providers.Error{Kind: k, Message: msg, Err: err}
}

// WriteError writes err in the OpenAI envelope with the right status and headers.
func WriteError(w http.ResponseWriter, err error) {
	pe := asError(err)
	status, typ, code := statusOf(pe.Kind)
	if pe.Code == "unsupported_media_type" {
		status = http.StatusUnsupportedMediaType
	}
	// The gateway's own refusal to call a model's upstreams (every channel's circuit breaker
	// open, or every channel disabled: internal/router) is a 503 with Retry-After.
	upstreamsOut := pe.Kind == providers.KindUpstreamUnavailable && pe.Provider == "" && pe.RetryAfter > 0
	if upstreamsOut {
		status = http.StatusServiceUnavailable
	}
	// Our own errors may carry a more specific OpenAI code; an adapter's Code is the upstream's
	// own and is only logged.
	if pe.Code != "" && pe.Provider == "" {
		code = pe.Code
	}
	msg := pe.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	if pe.Kind.Fault() == providers.FaultProvider && pe.Provider != "" {
		msg = "Upstream provider " + pe.Provider + ": " + msg
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if shouldNotRetry(pe.Kind) || pe.Final {
		h.Set("x-should-retry", "false")
	}
	// A rate limit, or a dependency of the gateway (store, limiter) that is unavailable: say when
	// to retry (the error's own RetryAfter, or a second).
	if !pe.Final && (status == http.StatusTooManyRequests && pe.Kind != providers.KindQuotaExceeded || pe.Kind == providers.KindUnavailable || upstreamsOut) {
		ra := min(pe.RetryAfter, providers.MaxRetryAfter)
		if ra <= 0 {
			ra = time.Second
		}
		httpx.SetRetryAfter(h, ra)
	}
	var param *string
	if pe.Param != "" {
		param = &pe.Param
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(envelope{Error: apiError{Message: msg, Type: typ, Param: param, Code: &code}})
}

func badParam(param, format string, args ...any) *providers.Error {
	return providers.ParamError(param, format, args...)
}

func unsupported(param, format string, args ...any) *providers.Error {
	return providers.UnsupportedParam(param, format, args...)
}
