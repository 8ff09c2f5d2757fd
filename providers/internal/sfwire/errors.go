package sfwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imagegw/imagegw/providers"
)

// Upstream error codes seen in SiliconFlow's {"code":…,"message":…,"data":null} envelope
// (PROVIDERS.md §1.4).
const (
	// CodeModelNotFound: "Model does not exist. Please check it carefully." (HTTP 400).
	CodeModelNotFound = 20012
	// CodeInvalidParameter: request validation failed, such as "Field required" (HTTP 400).
	CodeInvalidParameter = 20015
	// CodeBusy: "System is too busy now. Please try again later." (HTTP 503).
	CodeBusy = 50508
	// CodeInsufficientBalance: the account cannot pay (HTTP 403). From SiliconFlow's chat API;
	// not confirmed for images.
	CodeInsufficientBalance = 30001
)

// ErrorBody is the error envelope. Code is an integer upstream; a string code is tolerated.
type ErrorBody struct {
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
}

// bodyForm says what an error body turned out to be.
type bodyForm int

const (
	formEmpty bodyForm = iota
	formObject
	formString // a JSON string literal, such as SiliconFlow's 401 "Invalid token"
	formText
	formHTML
	formOther
)

// inspect reads an error body without trusting it: the content type decides whether JSON is
// attempted; HTML pages and binary junk are recognised and never quoted.
func inspect(h http.Header, body []byte) (code, msg string, form bodyForm) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return "", "", formEmpty
	}
	ct := strings.ToLower(h.Get("Content-Type"))
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = ct
	}
	switch {
	case strings.Contains(mt, "html") || bytes.HasPrefix(b, []byte("<")):
		return "", "", formHTML
	case mt == "" || strings.Contains(mt, "json") || mt == "text/plain":
		switch b[0] {
		case '{':
			var eb struct {
				ErrorBody
				// Error is the OpenAI-style {"error":{"message","code"}} a reseller may send.
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(b, &eb) != nil {
				return "", "", formOther
			}
			code, msg = codeString(eb.Code), eb.Message
			if code == "" && msg == "" && len(eb.Error) > 0 {
				var oe ErrorBody
				if json.Unmarshal(eb.Error, &oe) == nil {
					code, msg = codeString(oe.Code), oe.Message
				} else {
					_ = json.Unmarshal(eb.Error, &msg) // {"error":"<string>"}
				}
			}
			return code, msg, formObject
		case '"':
			var s string
			if json.Unmarshal(b, &s) == nil {
				return "", s, formString
			}
			return "", "", formOther
		}
		if mt == "text/plain" || mt == "" {
			if utf8.Valid(b) {
				return "", string(b), formText
			}
		}
	}
	return "", "", formOther
}

// codeString normalizes an integer or string code to its decimal text.
func codeString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := n.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		return n.String()
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && len(s) <= 64 {
		return s
	}
	return ""
}

// ParseError turns a non-success answer (status, headers, body) into a *providers.Error with a
// message of our own. The upstream's message is kept only in Err (for logs), sanitized by
// providers.UpstreamText with secret redacted; its code only when it is numeric; it is used to refine the kind (model not found, content policy) and to name
// the rejected parameter when it names one.
func ParseError(provider string, status int, h http.Header, body []byte, secret string) *providers.Error {
	code, msg, form := inspect(h, body)
	e := &providers.Error{Provider: provider, Status: status, Code: numericCode(code), Kind: providers.StatusKind(status)}
	switch {
	case msg != "":
		e.Err = fmt.Errorf("upstream said: %q", providers.UpstreamText(msg, secret))
	case form == formHTML:
		e.Err = errors.New("upstream answered with an HTML page")
	case form == formEmpty:
		e.Err = errors.New("upstream answered with an empty body")
	default:
		e.Err = errors.New("upstream answered with an unrecognised body")
	}
	if ra := providers.ParseRetryAfter(h); ra > 0 {
		e.RetryAfter = ra
	}

	switch {
	case status == http.StatusUnauthorized:
		e.Kind = providers.KindUpstreamAuth
		e.Message = "the provider refused the gateway's credential"
	case status == http.StatusForbidden && contentPolicy(msg):
		e.Kind = providers.KindContentPolicy
		e.Message = "the provider's content-safety check rejected the request"
	case status == http.StatusForbidden:
		e.Kind = providers.KindUpstreamAuth
		e.Message = "the provider refused the gateway's account for this request (for example: real-name verification required, or insufficient balance)"
	case status == http.StatusTooManyRequests:
		e.Kind = providers.KindUpstreamRateLimited
		e.Message = "the provider is rate limiting the gateway; retry later"
	case code == strconv.Itoa(CodeModelNotFound):
		e.Kind = providers.KindModelNotFound
		e.Message = "the provider does not know this model"
	case code == strconv.Itoa(CodeBusy):
		e.Kind = providers.KindUpstreamUnavailable
		e.Message = "the provider is too busy; retry later"
	case code == strconv.Itoa(CodeInsufficientBalance):
		e.Kind = providers.KindUpstreamAuth
		e.Message = "the gateway's account at the provider cannot pay for this request"
	case status == http.StatusNotFound && (form == formHTML || form == formEmpty || form == formOther):
		// A bare 404 page means the path is wrong (a misconfigured base URL), not the model.
		e.Kind = providers.KindUpstreamBadResponse
		e.Message = "the provider's endpoint was not found (check the channel's base URL)"
	case status == http.StatusNotFound:
		e.Kind = providers.KindModelNotFound
		e.Message = "the provider does not know this model"
	case status >= 500:
		if e.Kind == providers.KindUpstreamTimeout {
			e.Message = "the provider timed out"
		} else {
			e.Kind = providers.KindUpstreamUnavailable
			e.Message = "the provider is temporarily unavailable"
		}
	case (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity ||
		status == http.StatusUnavailableForLegalReasons || status < 300) && contentPolicy(msg):
		e.Kind = providers.KindContentPolicy
		e.Message = "the provider's content-safety check rejected the request"
	case code == strconv.Itoa(CodeInvalidParameter) || status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		e.Kind = providers.KindInvalidRequest
		e.Param = ParamFromMessage(msg)
		if e.Param != "" {
			e.Message = "the provider rejected the value of " + e.Param
		} else {
			e.Message = "the provider rejected the request as invalid"
		}
	case e.Kind == providers.KindUpstreamTimeout:
		e.Message = "the provider timed out"
	case e.Kind == providers.KindTooLarge:
		e.Message = "the request was too large for the provider"
	default:
		e.Kind = providers.KindUpstreamBadResponse
		e.Message = fmt.Sprintf("the provider answered with an unexpected status %d", status)
	}
	return e
}

// wireParams maps upstream field names to the canonical request field a client set.
var wireParams = map[string]string{
	"prompt":              "prompt",
	"negative_prompt":     "negative_prompt",
	"image_size":          "size",
	"batch_size":          "n",
	"seed":                "seed",
	"num_inference_steps": "steps",
	"guidance_scale":      "guidance_scale",
	"cfg":                 "cfg",
	"prompt_enhancement":  "prompt_enhancement",
	"image":               "image",
	"image2":              "image",
	"image3":              "image",
	"model":               "model",
}

// ParamFromMessage returns the canonical name of the first request field the upstream's message
// names as a whole word ("model" only when no other field is named), or "".
func ParamFromMessage(msg string) string {
	found := ""
	for _, tok := range strings.FieldsFunc(msg, func(r rune) bool {
		return r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9')
	}) {
		p, ok := wireParams[tok]
		if !ok {
			continue
		}
		if tok != "model" {
			return p
		}
		found = p
	}
	return found
}

// contentPolicyWords are fragments of content-safety rejections (English and Chinese). SiliconFlow
// documents no code for them, so the message decides [INFER].
var contentPolicyWords = []string{
	"sensitive", "inappropriate", "content policy", "content safety", "content-safety",
	"safety check", "nsfw", "unsafe content", "policy violation", "content violation", "violates our",
	"敏感", "违规", "违禁", "不合规", "审核",
}

func contentPolicy(msg string) bool {
	if msg == "" {
		return false
	}
	m := strings.ToLower(msg)
	for _, w := range contentPolicyWords {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// numericCode returns code when it is a number of at most six digits, as SiliconFlow's codes
// are (20012, 50508), else "": Code is an allowlisted field, and a hostile upstream may put
// anything, our key included, where the code should be.
func numericCode(code string) string {
	if len(code) > 0 && len(code) <= 6 && strings.Trim(code, "0123456789") == "" {
		return code
	}
	return ""
}
