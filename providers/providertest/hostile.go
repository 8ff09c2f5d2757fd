package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/redact"
)

// EchoStatuses are the statuses EchoFaults answers with: each takes its own path through an
// adapter's error classification (200 is an error inside a success answer).
var EchoStatuses = []int{200, 400, 401, 403, 404, 413, 422, 429, 500, 503}

// EchoFaults returns answers of a hostile upstream that echoes secret (the adapter's own API key)
// in every field an error body can have, in every shape the adapters read — OpenAI's and Ark's
// {"error":{message,type,param,code}} envelope, SiliconFlow's flat {code,message}, Ideogram's
// {"error":"…"}, problem+json, a bare JSON string, plain text, an HTML page, Ark's per-image
// errors — with the key raw, URL-encoded and JSON-escaped, and in the response headers that carry
// request ids, for every status in EchoStatuses. An adapter must turn each into an error whose
// Error(), Message, Param and Code hold no trace of the key.
func EchoFaults(secret string) []Fault {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	k := q(secret)
	// The key with its first character as a JSON \u escape: the same string once decoded.
	escaped := k
	if secret != "" && secret[0] < 0x80 {
		escaped = fmt.Sprintf(`"\u%04x%s`, secret[0], k[2:])
	}
	text := q("Incorrect API key provided: " + secret + " (" + url.QueryEscape(secret) + "). Request id: " + secret)
	shapes := []struct{ contentType, body string }{
		{"application/json", `{"error":{"message":` + text + `,"type":` + k + `,"param":` + k + `,"code":` + k + `}}`},
		{"application/json", `{"error":{"message":` + escaped + `,"type":` + escaped + `,"param":` + escaped + `,"code":` + escaped + `}}`},
		{"application/json", `{"error":{"message":` + q("The parameter `"+secret+"` specified in the request is not valid. Request id: "+secret) +
			`,"type":"BadRequest","param":` + k + `,"code":` + q("InvalidParameter."+secret) + `}}`},
		{"application/json", `{"code":` + k + `,"message":` + text + `,"data":null}`},
		{"application/json", `{"error":` + text + `,"message":` + k + `,"detail":` + k + `,"code":` + k + `}`},
		{"application/problem+json", `{"detail":` + text + `,"title":` + k + `,"type":` + k + `}`},
		{"application/json", text},
		{"text/plain", "invalid api key " + secret + " " + url.QueryEscape(secret)},
		{"text/html", "<html><body><h1>Bad key</h1><p>" + secret + "</p></body></html>"},
		{"application/json", `{"created":1,"data":[{"error":{"code":` + k + `,"message":` + text + `}}],"error":{"code":` + k + `,"message":` + text + `,"param":` + k + `}}`},
	}
	h := http.Header{
		"X-Request-Id": {secret}, "X-Client-Request-Id": {secret}, "X-Trace-Id": {secret},
		"X-Siliconcloud-Trace-Id": {secret}, "Retry-After": {secret},
	}
	var out []Fault
	for _, status := range EchoStatuses {
		for _, s := range shapes {
			out = append(out, Fault{Status: status, ContentType: s.contentType, Body: s.body, Header: h})
		}
	}
	return out
}

// Leaks reports whether s holds secret raw, URL-encoded or JSON-escaped.
func Leaks(s, secret string) bool {
	return secret != "" && (strings.Contains(s, secret) || redact.Of(secret).Contains(s))
}

// Logs keeps everything a logger writes, JSON-encoded at every level, so that a test can look
// for secrets in it. Give Logger() to the adapter under test and the Logs to Harness.Logs.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLogs returns an empty log.
func NewLogs() *Logs { return &Logs{} }

// Logger returns a debug-level logger writing into l.
func (l *Logs) Logger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(l), zapcore.DebugLevel))
}

// Write appends p.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
