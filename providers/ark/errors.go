package ark

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/arkwire"
)

// requestIDInMessage finds the "Request id: …" Ark appends to its messages.
var requestIDInMessage = regexp.MustCompile(`Request id: ([A-Za-z0-9._-]{1,128})`)

// paramInMessage finds "The parameter `size` …" in Ark's messages when param is empty.
var paramInMessage = regexp.MustCompile("[Pp]arameter `([a-z_.]{1,64})`")

// pixelsInMessage finds the bound in "image size must be at least 3686400 pixels".
var pixelsInMessage = regexp.MustCompile(`must be at (least|most) ([0-9]{1,12}) pixels`)

// knownParams maps upstream parameter names to the gateway's request field names. Only these
// are ever put into Error.Param, which reaches clients.
var knownParams = map[string]string{
	"model": "model", "prompt": "prompt", "image": "image", "size": "size", "seed": "seed",
	"guidance_scale": "guidance_scale", "response_format": "response_format",
	"watermark": "watermark", "output_format": "output_format",
}

// errorFromResponse turns a non-2xx answer into a *providers.Error. Ark's envelope (§3.1.3) is
//
//	{"error":{"code":"InvalidParameter","message":"… Request id: …","param":"size","type":"BadRequest"}}
//
// with param and type sometimes empty or absent. The upstream's own message goes only into Err
// (for logs); Message is written here. The request id is the echoed X-Client-Request-Id, else
// the one embedded in the message.
func errorFromResponse(provider string, status int, h http.Header, body []byte) *providers.Error {
	return arkwire.ErrorFromResponse(Name, status, h, body, func(eb arkwire.ErrorBody) (*providers.Error, string) {
		e := codeError(provider, status, eb.Code, eb.Param)
		refineMessage(e, eb.Message)
		id := h.Get(requestIDHeader)
		if id == "" {
			if m := requestIDInMessage.FindStringSubmatch(eb.Message); m != nil {
				id = m[1]
			}
		}
		return e, id
	})
}

// knownCodes are Ark's documented error codes (PROVIDERS.md §3.1.3). Error.Code keeps only
// these (see safeCode): the code field is the upstream's free text.
var knownCodes = map[string]bool{
	"AuthenticationError": true, "AccountOverdueError": true, "AccessDenied": true, "OperationDenied": true,
	"InvalidEndpointOrModel": true, "InvalidEndpointOrModel.NotFound": true, "InvalidEndpoint": true,
	"InvalidEndpoint.ClosedEndpoint": true, "ModelNotOpen": true,
	"RateLimitExceeded": true, "RateLimitExceeded.EndpointRPMExceeded": true, "RateLimitExceeded.EndpointTPMExceeded": true,
	"QuotaExceeded": true, "SetLimitExceeded": true,
	"ServerOverloaded": true, "ServiceUnavailable": true, "InternalServiceError": true, "InternalServerError": true,
	"MissingParameter": true, "InvalidParameter": true, "InvalidArgument": true,
	"InputTextSensitiveContentDetected": true, "InputImageSensitiveContentDetected": true,
	"OutputImageSensitiveContentDetected": true, "OutputTextSensitiveContentDetected": true,
	"SensitiveContentDetected": true, "SensitiveContentDetected.SevereViolation": true, "SensitiveContentDetected.Violence": true,
	"InputTextRiskDetection": true, "InputImageRiskDetection": true, "OutputImageRiskDetection": true,
}

// safeCode returns code when Ark documents it, "InvalidParameter.<name>" for a known parameter
// name, the family of an undocumented variant ("RateLimitExceeded" for
// "RateLimitExceeded.Other"), and "" for anything else.
func safeCode(code string) string {
	if knownCodes[code] {
		return code
	}
	fam, sub, ok := strings.Cut(code, ".")
	if !ok {
		return ""
	}
	if _, known := knownParams[sub]; known && fam == "InvalidParameter" {
		return code
	}
	if knownCodes[fam] {
		return fam
	}
	return ""
}

// codeError classifies an Ark error code (with the HTTP status as fallback) and writes a
// client-safe message. param is the upstream's param field, kept only when it is a known name;
// code is kept in Code only as safeCode allows.
func codeError(provider string, status int, code, param string) *providers.Error {
	e := &providers.Error{Provider: provider, Status: status, Code: safeCode(code)}
	if status == http.StatusOK {
		e.Status = 0
	}
	switch {
	case strings.HasPrefix(code, "InputTextSensitiveContentDetected"), strings.HasPrefix(code, "InputTextRiskDetection"):
		e.Kind, e.Message = providers.KindContentPolicy, "the prompt was rejected by the provider's content filter"
		e.Param = "prompt"
	case strings.HasPrefix(code, "InputImageSensitiveContentDetected"), strings.HasPrefix(code, "InputImageRiskDetection"):
		e.Kind, e.Message = providers.KindContentPolicy, "an input image was rejected by the provider's content filter"
		e.Param = "image"
	case strings.HasPrefix(code, "OutputImageSensitiveContentDetected"), strings.HasPrefix(code, "OutputImageRiskDetection"):
		e.Kind, e.Message = providers.KindContentPolicy, "the generated image was withheld by the provider's content filter"
	case strings.Contains(code, "SensitiveContentDetected"), strings.HasSuffix(code, "RiskDetection"):
		e.Kind, e.Message = providers.KindContentPolicy, "the request was rejected by the provider's content filter"
	case code == "AuthenticationError":
		e.Kind, e.Message = providers.KindUpstreamAuth, "the provider refused the gateway's credentials"
	case code == "AccountOverdueError":
		e.Kind, e.Message = providers.KindUpstreamAuth, "the gateway's account with the provider is overdue"
	case strings.HasPrefix(code, "AccessDenied"), strings.HasPrefix(code, "OperationDenied"):
		e.Kind, e.Message = providers.KindUpstreamAuth, "the gateway's account may not use this provider resource"
	case strings.HasPrefix(code, "InvalidEndpointOrModel"), strings.HasPrefix(code, "InvalidEndpoint."), code == "ModelNotOpen":
		e.Kind, e.Message = providers.KindModelNotFound, "the provider does not offer this model to the gateway's account"
	case strings.HasPrefix(code, "RateLimitExceeded"), strings.HasPrefix(code, "QuotaExceeded"), strings.HasPrefix(code, "SetLimitExceeded"):
		e.Kind, e.Message = providers.KindUpstreamRateLimited, "the provider is rate limiting the gateway"
	case code == "ServerOverloaded", code == "ServiceUnavailable", code == "InternalServiceError", code == "InternalServerError":
		e.Kind, e.Message = providers.KindUpstreamUnavailable, "the provider is unavailable"
	case code == "MissingParameter":
		e.Kind, e.Message = providers.KindInvalidRequest, "a required parameter is missing"
	case strings.HasPrefix(code, "InvalidParameter"), strings.HasPrefix(code, "InvalidArgument"):
		e.Kind, e.Message = providers.KindInvalidRequest, "the provider refused a parameter of the request"
		if p, ok := strings.CutPrefix(code, "InvalidParameter."); ok && param == "" {
			param = p
		}
	default:
		e.Kind = providers.StatusKind(status)
		if status == http.StatusOK {
			e.Kind = providers.KindUpstreamBadResponse
		}
		e.Message = arkwire.StatusMessage(e.Kind, status)
	}
	if e.Kind == providers.KindInvalidRequest {
		if p, ok := knownParams[param]; ok {
			e.Param = p
		}
	}
	return e
}

// refineMessage adds what the upstream message says in a form we control: the offending
// parameter's name and, for sizes, the pixel bound. The upstream text itself is never copied.
func refineMessage(e *providers.Error, upstream string) {
	if e.Kind != providers.KindInvalidRequest {
		return
	}
	if e.Param == "" {
		if m := paramInMessage.FindStringSubmatch(upstream); m != nil {
			if p, ok := knownParams[m[1]]; ok {
				e.Param = p
			}
		}
	}
	switch {
	case e.Param == "size" && pixelsInMessage.MatchString(upstream):
		m := pixelsInMessage.FindStringSubmatch(upstream)
		e.Message = fmt.Sprintf("size must be at %s %s pixels for this model", m[1], m[2])
	case e.Param != "" && strings.Contains(upstream, "not supported by the current model"):
		e.Message = fmt.Sprintf("this model does not support %s", e.Param)
	case e.Param == "size" && strings.Contains(upstream, "size is not supported"):
		e.Message = "this size is not supported by this model"
	case e.Param != "" && e.Code == "MissingParameter":
		e.Message = fmt.Sprintf("the parameter %s is required", e.Param)
	case e.Param != "":
		e.Message = fmt.Sprintf("the provider refused the value of %s", e.Param)
	}
}
