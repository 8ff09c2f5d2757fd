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

// knownParams are the parameter names the adapters send (OpenAI's Images API fields, the
// multipart parts, and a compatible host's extension fields). An upstream's param reaches the
// client only when it is one of these: anything else (a key echoed by a hostile host, junk) is
// dropped.
var knownParams = map[string]bool{
	"model": true, "prompt": true, "n": true, "size": true, "quality": true, "style": true,
	"response_format": true, "user": true, "background": true, "output_format": true,
	"output_compression": true, "moderation": true, "image": true, "image[]": true, "mask": true,
	"input_fidelity": true, "partial_images": true, "stream": true,
	"width": true, "height": true, "negative_prompt": true, "seed": true,
	"num_inference_steps": true, "guidance_scale": true,
}

// knownCodes are the OpenAI error codes (and the error types used as codes when the code is
// null) that an error may carry in Code and in its message. Anything else is dropped: a
// compatible host may put anything, the gateway's key included, in code.
var knownCodes = map[string]bool{
	// Authentication and account.
	"invalid_api_key": true, "invalid_organization": true, "unsupported_country_region_territory": true,
	"insufficient_quota": true, "billing_hard_limit_reached": true, "billing_not_active": true,
	"account_deactivated": true, "organization_verification_required": true,
	// Rate limits.
	"rate_limit_exceeded": true, "requests": true, "tokens": true,
	// Safety.
	"content_policy_violation": true, "moderation_blocked": true, "content_filter": true,
	"safety_violation": true, "image_generation_user_error": true,
	// Parameters.
	"unknown_parameter": true, "unsupported_parameter": true, "missing_required_parameter": true,
	"invalid_value": true, "unsupported_value": true, "invalid_type": true, "invalid_size": true,
	"integer_above_max_value": true, "integer_below_min_value": true, "decimal_above_max_value": true,
	"decimal_below_min_value": true, "string_above_max_length": true, "string_below_min_length": true,
	"array_above_max_length": true, "array_below_min_length": true, "invalid_image": true,
	"invalid_image_file": true, "invalid_image_format": true, "invalid_image_mode": true,
	"invalid_image_size": true, "image_too_large": true, "invalid_mask": true,
	// Others.
	"model_not_found": true, "server_error": true, "request_forbidden": true,
	"image_generation_server_error": true,
}

// safeCode returns c when it is a known code or a short number (compatible hosts send integer
// codes such as SiliconFlow's 20012), else "".
func safeCode(c string) string {
	if knownCodes[c] {
		return c
	}
	if len(c) > 0 && len(c) <= 6 && strings.Trim(c, "0123456789") == "" {
		return c
	}
	return ""
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
// name; secret is our API key, scrubbed from the cause kept for logs (some hosts echo it). The
// upstream's param and code reach the error only through knownParams and knownCodes, and its
// message never reaches Message.
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
		// Code and param are read only through the allowlists; the message only into the
		// cause, for logs, sanitized.
		e.Code = safeCode(ue.Code)
		if e.Code == "" && ue.Type != "invalid_request_error" {
			e.Code = safeCode(ue.Type)
		}
		if ue.Message != "" {
			e.Err = errors.New("upstream said: " + providers.UpstreamText(ue.Message, secret))
		}
	}
	code, typ := strings.ToLower(ue.Code), strings.ToLower(ue.Type)
	param := ""
	if knownParams[ue.Param] {
		param = canonicalParam(ue.Param)
	}
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
	if ct == "application/json" {
		return true // the usual label, without parsing
	}
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
