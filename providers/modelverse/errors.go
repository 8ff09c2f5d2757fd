package modelverse

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/imagegw/imagegw/providers"
)

// wireErrorBody is the inside of Modelverse's error envelope (PROVIDERS.md §3.2):
//
//	{"error":{"message":"Invalid param","type":"invalid_request_error","param":"<request id>","code":"param_error"}}
//
// param holds the request id, not a parameter name: it is kept for logs and never becomes
// Error.Param. Fields are decoded loosely (only string values are kept).
type wireErrorBody struct {
	Code    string
	Message string
	Param   string
	Type    string
}

// UnmarshalJSON reads the object, keeping only string values.
func (b *wireErrorBody) UnmarshalJSON(raw []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	b.Code, b.Message, b.Param, b.Type = str(m["code"]), str(m["message"]), str(m["param"]), str(m["type"])
	return nil
}

// str returns raw as a string when it is a JSON string, else "".
func str(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// isJSON reports whether a Content-Type header names JSON.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

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

// errorFromResponse turns a non-2xx answer into a *providers.Error. The upstream's message goes
// only into Err (for logs); Message is written here.
func errorFromResponse(provider string, status int, h http.Header, body []byte) *providers.Error {
	var env struct {
		Error *wireErrorBody `json:"error"`
	}
	var eb wireErrorBody
	if isJSON(h.Get("Content-Type")) && json.Unmarshal(body, &env) == nil && env.Error != nil {
		eb = *env.Error
	}
	e := codeError(provider, status, eb.Code)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.RetryAfter = providers.ParseRetryAfter(h)
	}
	detail := eb.Message
	if eb.Code == "" && eb.Message == "" {
		detail = "non-envelope body: " + clip(string(body))
	}
	e.Err = fmt.Errorf("modelverse: upstream HTTP %d code %q type %q request id %q: %s", status, eb.Code, eb.Type, requestID(eb.Param, h), clip(detail))
	return e
}

// codeError classifies a Modelverse error code (error-code.md, PROVIDERS.md §3.2), falling back
// on the HTTP status, and writes a client-safe message. The codes name no parameter, so Param
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
		e.Kind = providers.StatusKind(status)
		e.Message = statusMessage(e.Kind, status)
	}
	return e
}

// statusMessage is the message for an error known only by its status.
func statusMessage(k providers.Kind, status int) string {
	switch k {
	case providers.KindUpstreamAuth:
		return "the provider refused the gateway's credentials"
	case providers.KindUpstreamRateLimited:
		return "the provider is rate limiting the gateway"
	case providers.KindUpstreamTimeout:
		return "the provider timed out"
	case providers.KindModelNotFound:
		return "the provider does not offer this model"
	case providers.KindTooLarge:
		return "the request is too large for the provider"
	case providers.KindInvalidRequest:
		return "the provider refused the request as invalid"
	case providers.KindUpstreamUnavailable:
		return fmt.Sprintf("the provider is unavailable (HTTP %d)", status)
	}
	if status == 0 {
		return "the provider answered with an unexpected error"
	}
	return fmt.Sprintf("the provider answered with an unexpected HTTP %d", status)
}

// clip shortens an upstream text for a log line.
func clip(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
