package yunyx

import (
	"net/http"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/sfwire"
)

// parseError classifies a yunyx error answer. Seed 003 lists only statuses (400 bad parameters,
// 401 auth failure, 404 model not found, 429 too frequent, 503 unavailable, 504 timeout); the
// bodies are assumed to be SiliconFlow's (PROVIDERS.md §4.5 [INFER]): {"code":…,"message":…,
// "data":null} and a bare-string 401. The classification therefore leans on the status:
//
//	400 → KindInvalidRequest (KindContentPolicy for content-safety wording; Param when named)
//	401, 403 → KindUpstreamAuth
//	404 with a JSON or text body, or code 20012 → KindModelNotFound (a bare HTML 404 → bad response)
//	429 → KindUpstreamRateLimited with Retry-After
//	503, 5xx → KindUpstreamUnavailable; 504 → KindUpstreamTimeout
func parseError(channel string, status int, h http.Header, body []byte, key string) *providers.Error {
	return sfwire.ParseError(channel, status, h, body, key)
}
