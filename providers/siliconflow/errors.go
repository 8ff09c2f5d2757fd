package siliconflow

import (
	"net/http"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// parseError classifies a SiliconFlow error answer (PROVIDERS.md §1.4):
//
//	400 {"code":20012,…}            model does not exist        → KindModelNotFound
//	400 {"code":20015,…}            validation failed           → KindInvalidRequest (Param when the message names a field)
//	400 content-safety wording      (no documented code)        → KindContentPolicy
//	401 "Invalid token" (JSON string literal or plain text)    → KindUpstreamAuth
//	403 real-name verification / insufficient balance           → KindUpstreamAuth
//	429 {"message":…,"data":null}   IPM/IPD limits              → KindUpstreamRateLimited, RetryAfter from Retry-After
//	503 {"code":50508,…}, 500, 502  busy / unknown              → KindUpstreamUnavailable
//	504                              timeout                     → KindUpstreamTimeout
//
// The upstream's own message never reaches the client: it is kept (truncated, with the key
// redacted) in Err for logs.
func parseError(channel string, status int, h http.Header, body []byte, key string) *providers.Error {
	return sfwire.ParseError(channel, status, h, body, key)
}
