package httpx

import (
	"net/http"
	"strconv"
	"time"
)

// SetRetryAfter tells a client to wait d before retrying: retry-after-ms (which the OpenAI SDKs
// prefer) is d rounded up to the millisecond, and Retry-After is that rounded up to whole
// seconds, so the two headers always agree (never 1000 and 2).
func SetRetryAfter(h http.Header, d time.Duration) {
	ms := (max(d, 0) + time.Millisecond - 1) / time.Millisecond
	h.Set("Retry-After", strconv.FormatInt(int64((ms+999)/1000), 10))
	h.Set("retry-after-ms", strconv.FormatInt(int64(ms), 10))
}
