package ideogram

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// upstreamError is what an Ideogram error body says, as far as it says anything: the documented
// 422 body is {"error": "<string>"}; other statuses are untyped in the spec, so the decoder also
// takes {"error": {"message", "code"}}, {"message"}, connexion's problem+json {"detail", "title"}
// and plain text. HTML pages are never read.
type upstreamError struct {
	Message string
	Code    string
}

// parseErrorBody extracts the upstream's message from an error body, looking at the Content-Type
// first.
func parseErrorBody(h http.Header, body []byte) upstreamError {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return parseJSONError(body)
	case mt == "text/plain" || mt == "":
		t := strings.TrimSpace(string(body))
		if strings.HasPrefix(t, "{") || strings.HasPrefix(t, `"`) {
			if ue := parseJSONError(body); ue.Message != "" {
				return ue
			}
		}
		if strings.HasPrefix(strings.ToLower(t), "<") {
			return upstreamError{}
		}
		return upstreamError{Message: t}
	}
	return upstreamError{} // HTML and anything else: not read
}

func parseJSONError(body []byte) upstreamError {
	var s string
	if err := json.Unmarshal(body, &s); err == nil {
		return upstreamError{Message: s}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return upstreamError{}
	}
	var ue upstreamError
	str := func(raw json.RawMessage) string {
		var v string
		if json.Unmarshal(raw, &v) == nil {
			return v
		}
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
		return ""
	}
	if raw, ok := obj["error"]; ok {
		if v := str(raw); v != "" {
			ue.Message = v
		} else {
			var inner map[string]json.RawMessage
			if json.Unmarshal(raw, &inner) == nil {
				ue.Message = str(inner["message"])
				ue.Code = str(inner["code"])
				if ue.Code == "" {
					ue.Code = str(inner["type"])
				}
			}
		}
	}
	for _, key := range []string{"message", "detail"} {
		if ue.Message == "" {
			ue.Message = str(obj[key])
		}
	}
	if ue.Code == "" {
		ue.Code = str(obj["code"])
	}
	if ue.Code == "" {
		ue.Code = str(obj["title"])
	}
	return ue
}

// wireParams maps the field names Ideogram uses in its messages to the gateway's request fields.
var wireParams = map[string]string{
	"num_images": "n", "resolution": "size", "aspect_ratio": "aspect_ratio", "seed": "seed",
	"negative_prompt": "negative_prompt", "magic_prompt_option": "magic_prompt", "magic_prompt": "magic_prompt",
	"style_type": "style_type", "style_preset": "style_preset", "style_codes": "style_codes",
	"color_palette": "color_palette", "image_weight": "image_weight", "resemblance": "resemblance",
	"detail": "detail", "rendering_speed": "rendering_speed", "describe_model_version": "describe_model_version",
	"image_file": "image", "image": "image", "style_reference_images": "image", "mask": "mask",
	"prompt": "prompt", "model": "model",
}

// wireParamRe finds those names as whole words ('_' counts as a word character, so "prompt" does
// not match inside "negative_prompt").
var wireParamRe = func() *regexp.Regexp {
	names := make([]string, 0, len(wireParams))
	for n := range wireParams {
		names = append(names, regexp.QuoteMeta(n))
	}
	return regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b`)
}()

// paramOf returns the request field an upstream message names first, or "".
func paramOf(msg string) string {
	if m := wireParamRe.FindString(msg); m != "" {
		return wireParams[m]
	}
	return ""
}

// classify turns an upstream error status and body into a *providers.Error. The client-facing
// Message is always written here; the upstream's own words go only to Err (for logs), truncated
// and with secret (the API key) removed.
func classify(status int, h http.Header, body []byte, op providers.Operation, secret string) *providers.Error {
	ue := parseErrorBody(h, body)
	e := &providers.Error{Provider: Name, Status: status, Code: safeCode(ue.Code)}
	if ue.Message != "" {
		e.Err = fmt.Errorf("ideogram: upstream said: %q", providers.UpstreamText(ue.Message, secret))
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// Ideogram answers 403 (not 401) on remix and upscale.
		e.Kind, e.Message = providers.KindUpstreamAuth, "the provider rejected the gateway's credentials"
	case status == http.StatusUnprocessableEntity:
		e.Kind = providers.KindContentPolicy
		if op == providers.OpDescribe || op == providers.OpUpscale {
			e.Message = "the provider's safety check rejected the image"
		} else {
			e.Message = "the provider's safety check rejected the prompt or image"
		}
	case status == http.StatusTooManyRequests:
		e.Kind, e.Message = providers.KindUpstreamRateLimited, "the provider is rate limiting the gateway; try again later"
		e.RetryAfter = providers.ParseRetryAfter(h)
	case status == http.StatusBadRequest:
		e.Kind = providers.KindInvalidRequest
		e.Param = paramOf(ue.Message)
		if e.Param != "" {
			e.Message = fmt.Sprintf("the provider rejected the request: invalid %s", e.Param)
		} else {
			e.Message = "the provider rejected the request as invalid"
		}
	case status == http.StatusNotFound:
		// A wrong path, not a missing model: Ideogram names models in the body, not the path.
		e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider's endpoint was not found (check the channel's base URL and layout)"
	case status == http.StatusRequestEntityTooLarge:
		e.Kind, e.Message = providers.KindTooLarge, "the provider refused the request as too large (images may be at most 10 MB)"
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e.Kind, e.Message = providers.KindUpstreamTimeout, "the provider did not answer in time"
	case status >= 500:
		e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider is unavailable"
	default:
		e.Kind = providers.StatusKind(status)
		e.Message = fmt.Sprintf("the provider answered with an unexpected status %d", status)
	}
	return e
}

// knownCodes are the codes an Ideogram error may carry in Code. Ideogram documents none; these
// are the ones seen in its bodies. A problem+json title (an HTTP reason phrase) is also kept.
// Anything else is the upstream's free text and is dropped.
var knownCodes = map[string]bool{"invalid_mask": true, "invalid_request": true, "safety_check_failed": true}

// safeCode returns code when it is known or an HTTP reason phrase, else "".
func safeCode(code string) string {
	if knownCodes[code] {
		return code
	}
	for s := 100; s < 600; s++ {
		if t := http.StatusText(s); t != "" && t == code {
			return code
		}
	}
	return ""
}
