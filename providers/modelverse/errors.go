package modelverse

import (
	"net/http"
	"regexp"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire"
)

// requestIDPattern is what a request id looks like (a UUID in the docs' examples).
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID returns the request id from the envelope's param, or from a response header.
func requestID(param string, h http.Header) string {
	if requestIDPattern.MatchString(param) {
		return param
	}
	for _, k := range []string{"X-Request-Id", "X-Trace-Id"} {
		if v := h.Get(k); requestIDPattern.MatchString(v) {
			return v
		}
	}
	return ""
}

// errorFromResponse turns a non-2xx answer into a *providers.Error. Modelverse's envelope
// (PROVIDERS.md §3.2) is
//
//	{"error":{"message":"Invalid param","type":"invalid_request_error","param":"<request id>","code":"param_error"}}
//
// param holds the request id, not a parameter name: it is kept for logs and never becomes
// Error.Param. The upstream's message goes only into Err (for logs); Message is written here.
func errorFromResponse(provider string, status int, h http.Header, body []byte) *providers.Error {
	return arkwire.ErrorFromResponse(Name, status, h, body, func(eb arkwire.ErrorBody) (*providers.Error, string) {
		return codeError(provider, status, eb.Code), requestID(eb.Param, h)
	})
}

// codeError classifies a Modelverse error code (error-code.md, PROVIDERS.md §3.2), falling back
// on the HTTP status, and writes a client-safe message. Only a documented code is kept in Code. The codes name no parameter, so Param
// stays empty except for content-filter rejections of the prompt.
func codeError(provider string, status int, code string) *providers.Error {
	e := &providers.Error{Provider: provider, Status: status, Code: code}
	switch code {
	case "param_error", "invalid_messages":
		e.Kind, e.Message = providers.KindInvalidRequest, "the provider refused a parameter of the request"
	case "tokens_too_long":
		e.Kind, e.Message, e.Param = providers.KindInvalidRequest, "the prompt is too long for the provider", "prompt"
	case "sensitive_check_error":
		e.Kind, e.Message = providers.KindContentPolicy, "the request was rejected by the provider's content filter"
	case "model_error":
		e.Kind, e.Message = providers.KindModelNotFound, "the provider does not let the gateway's account use this model"
	case "auth_error":
		e.Kind, e.Message = providers.KindUpstreamAuth, "the provider refused the gateway's credentials"
	case "rate_limit":
		e.Kind, e.Message = providers.KindUpstreamRateLimited, "the provider is rate limiting the gateway"
	case "timeout", "gateway_timeout_error":
		e.Kind, e.Message = providers.KindUpstreamTimeout, "the provider timed out"
	case "internal_error", "model_server_error", "websearch_error":
		e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider is unavailable"
	default:
		// Not a documented code: whatever the upstream wrote there is not kept.
		e.Code = ""
		e.Kind = providers.StatusKind(status)
		e.Message = arkwire.StatusMessage(e.Kind, status)
	}
	return e
}
