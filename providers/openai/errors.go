package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// upstreamError is what an error body says, whatever its shape.
type upstreamError struct {
	Message string
	Type    string
	Param   string
	Code    string
}

// apiError is the member "error" of OpenAI's envelope {"error":{message,type,param,code}};
// param and code may be null, and some compatible hosts send an integer code.
type apiError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
}

// parseErrorBody reads an error body: OpenAI's envelope, {"error":"text"}, a flat
// {"message","code","type"} object, or a bare JSON string. ok is false for anything else
// (HTML, plain text, empty).
func parseErrorBody(body []byte) (e upstreamError, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return e, false
	}
	switch body[0] {
	case '"':
		var s string
		if json.Unmarshal(body, &s) != nil {
			return e, false
		}
		return upstreamError{Message: s}, true
	case '{':
	default:
		return e, false
	}
	var outer struct {
		Error json.RawMessage `json:"error"`
		apiError
	}
	if json.Unmarshal(body, &outer) != nil {
		return e, false
	}
	inner := outer.apiError
	if len(outer.Error) > 0 && outer.Error[0] == '{' {
		if json.Unmarshal(outer.Error, &inner) != nil {
			return e, false
		}
	} else if len(outer.Error) > 0 && outer.Error[0] == '"' {
		var s string
		_ = json.Unmarshal(outer.Error, &s)
		inner = apiError{Message: s}
	}
	return upstreamError{
		Message: inner.Message,
		Type:    inner.Type,
		Param:   scalar(inner.Param),
		Code:    scalar(inner.Code),
	}, true
}

// scalar prints a JSON string or number; null and anything else are "".
func scalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// token keeps a code or parameter name printable in logs and messages: letters, digits and
// _ . - [ ], at most 64 bytes. Anything else makes it "" (it was not a name).
func token(s string) string {
	if len(s) > 64 {
		return ""
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_.-[]", c)) {
			return ""
		}
	}
	return s
}

// canonicalParam maps an upstream parameter name to the request field the client knows.
func canonicalParam(p string) string {
	switch p {
	case "image[]":
		return "image"
	case "num_inference_steps":
		return "steps"
	case "width", "height":
		return "size"
	}
	return p
}

// Error codes that mean our upstream account cannot pay. They are classified KindUpstreamAuth:
// the channel's credential is unusable until an operator acts, exactly like a revoked key, and
// it is neither the caller's fault nor something waiting fixes (so not KindUpstreamRateLimited,
// whose Retry-After would make clients retry in vain). The front door answers 502 with
// x-should-retry: false and can fail over to another channel.
var accountCodes = map[string]bool{
	"insufficient_quota":         true,
	"billing_hard_limit_reached": true,
	"billing_not_active":         true,
	"account_deactivated":        true,
}

// Error codes and types that mean a content-safety refusal.
var policyCodes = map[string]bool{
	"content_policy_violation": true,
	"moderation_blocked":       true,
	"content_filter":           true,
	"safety_violation":         true,
}

// classifyError turns an upstream error answer into a *providers.Error. provider is the channel
// name; secret is our API key, scrubbed from the cause kept for logs (some hosts echo it).
func classifyError(provider string, status int, header http.Header, body []byte, secret string) *providers.Error {
	e := &providers.Error{Provider: provider, Status: status, Kind: providers.StatusKind(status)}
	if status >= 200 && status < 300 {
		e.Kind = providers.KindUpstreamBadResponse
	}
	var ue upstreamError
	ok := false
	if isJSON(header.Get("Content-Type")) || looksJSON(body) {
		ue, ok = parseErrorBody(body)
	}
	if ok {
		e.Code = token(ue.Code)
		if e.Code == "" && token(ue.Type) != "" && ue.Type != "invalid_request_error" {
			e.Code = token(ue.Type)
		}
		if msg := ue.Message; msg != "" {
			if secret != "" {
				msg = strings.ReplaceAll(msg, secret, "[redacted]")
			}
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			e.Err = errors.New("upstream said: " + msg)
		}
	}
	code, typ := strings.ToLower(ue.Code), strings.ToLower(ue.Type)
	param := canonicalParam(token(ue.Param))
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = providers.KindUpstreamAuth
		e.Message = "the provider refused the gateway's credentials for this model"
	case accountCodes[code]:
		e.Kind = providers.KindUpstreamAuth
		e.Message = "the provider account behind this model has run out of quota"
	case policyCodes[code] || typ == "image_generation_user_error" && strings.Contains(code, "moderation"):
		e.Kind = providers.KindContentPolicy
		e.Message = "the provider's safety system rejected this request"
	case status == http.StatusTooManyRequests:
		e.Kind = providers.KindUpstreamRateLimited
		e.Message = "the provider is rate limiting requests; retry later"
		e.RetryAfter = retryAfter(header)
	case (code == "unknown_parameter" || code == "unsupported_parameter") && param != "" && e.Kind == providers.KindInvalidRequest:
		e.Kind = providers.KindUnsupported
		e.Param = param
		e.Message = fmt.Sprintf("the provider does not take the parameter %q for this model", param)
	case e.Kind == providers.KindInvalidRequest:
		e.Param = param
		switch {
		case param != "" && e.Code != "":
			e.Message = fmt.Sprintf("the provider rejected the parameter %q (%s)", param, e.Code)
		case param != "":
			e.Message = fmt.Sprintf("the provider rejected the parameter %q", param)
		case e.Code != "":
			e.Message = fmt.Sprintf("the provider rejected the request (%s)", e.Code)
		default:
			e.Message = "the provider rejected the request as invalid"
		}
	case e.Kind == providers.KindModelNotFound:
		e.Message = "the provider does not know this model"
	case e.Kind == providers.KindTooLarge:
		e.Message = "the request was too large for the provider"
	case e.Kind == providers.KindUpstreamTimeout:
		e.Message = "the provider timed out"
	case e.Kind == providers.KindUpstreamUnavailable:
		e.Message = fmt.Sprintf("the provider failed (HTTP %d)", status)
		e.RetryAfter = retryAfter(header) // 503s sometimes say when to come back
	default:
		e.Kind = providers.KindUpstreamBadResponse
		e.Message = fmt.Sprintf("the provider answered with an unexpected status (HTTP %d)", status)
	}
	return e
}

// retryAfter reads Retry-After, then OpenAI's retry-after-ms.
func retryAfter(h http.Header) time.Duration {
	if d := providers.ParseRetryAfter(h); d > 0 {
		return d
	}
	if ms, err := strconv.ParseInt(h.Get("Retry-After-Ms"), 10, 64); err == nil && ms > 0 && ms < 24*3600*1000 {
		return time.Duration(ms) * time.Millisecond
	}
	return 0
}

// isJSON reports whether a Content-Type is JSON (application/json or +json).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// looksJSON reports whether a body starts like a JSON object or string (for hosts that label
// JSON text/plain or leave the type out).
func looksJSON(body []byte) bool {
	body = bytes.TrimSpace(body)
	return len(body) > 0 && (body[0] == '{' || body[0] == '"')
}
