package arkwire

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// ErrorBody is the inside of both upstreams' error envelope:
//
//	{"error":{"code":"…","message":"…","param":"…","type":"…"}}
//
// What param holds is the vendor's business: a parameter name on Ark, the request id on
// Modelverse. Fields are decoded loosely: a value that is not a JSON string reads as "", because
// param and type are sometimes empty, absent or of another type.
type ErrorBody struct {
	Code    string
	Message string
	Param   string
	Type    string
}

// UnmarshalJSON reads the object, keeping only string values.
func (b *ErrorBody) UnmarshalJSON(raw []byte) error {
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

// IsJSON reports whether a Content-Type header names JSON.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// Classify is a vendor's reading of an error answer: eb is the decoded envelope (zero when the
// body is not one). It returns the error with Kind, Message, Code and Param set, and the
// upstream's request id for the log text ("" when unknown).
type Classify func(eb ErrorBody) (*providers.Error, string)

// ErrorFromResponse turns a non-2xx answer into a *providers.Error. The envelope is decoded only
// when the Content-Type says JSON; classify writes the client-safe part, and the upstream's own
// message (or a raw body) goes only into Err, for logs, sanitized by Clip, with the request id
// and the envelope's code and type.
// Retry-After is honoured on 429 and 503.
func ErrorFromResponse(vendor string, status int, h http.Header, body []byte, classify Classify) *providers.Error {
	var env struct {
		Error *ErrorBody `json:"error"`
	}
	var eb ErrorBody
	if IsJSON(h.Get("Content-Type")) && json.Unmarshal(body, &env) == nil && env.Error != nil {
		eb = *env.Error
	}
	e, id := classify(eb)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.RetryAfter = providers.ParseRetryAfter(h)
	}
	detail := eb.Message
	if eb.Code == "" && eb.Message == "" {
		detail = "non-envelope body: " + string(body)
	}
	e.Err = fmt.Errorf("%s: upstream HTTP %d code %q type %q request id %q: %s", vendor, status,
		Clip(eb.Code), Clip(eb.Type), providers.RequestID(id, ""), Clip(detail))
	return e
}

// StatusMessage is the client message for an error known only by its kind and HTTP status (0
// when the error came inside a success answer).
func StatusMessage(k providers.Kind, status int) string {
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

// Clip makes an upstream text fit for a log line: at most providers.MaxUpstreamText bytes, with
// anything that looks like a credential removed (providers.UpstreamText). It does not know the
// channel's key: the adapters remove that from every error they return (Channel.Scrub).
func Clip(s string) string { return providers.UpstreamText(s, "") }
