package ratelimit

import (
	"github.com/imagegw/imagegw/internal/httpx"
	"net/http"
	"strconv"
	"time"
)

// SetHeaders writes the OpenAI-style rate limit headers of a key's decision:
//
//	x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests
//	x-ratelimit-limit-images,   x-ratelimit-remaining-images,   x-ratelimit-reset-images
//
// for each dimension that is limited, and, when the request was refused and retrying can help,
// Retry-After (whole seconds, rounded up) and retry-after-ms (which the OpenAI SDKs prefer).
// Reset values are durations the way OpenAI writes them ("1s", "6m0s", "20ms").
func (d *Decision) SetHeaders(h http.Header) {
	setQuota(h, "requests", d.Requests)
	setQuota(h, "images", d.Images)
	if d.Allowed || d.Unsatisfiable || d.RetryAfter <= 0 {
		return
	}
	httpx.SetRetryAfter(h, d.RetryAfter)
}

func setQuota(h http.Header, name string, q Quota) {
	if q.Limit <= 0 {
		return
	}
	h.Set("X-Ratelimit-Limit-"+name, strconv.FormatInt(q.Limit, 10))
	h.Set("X-Ratelimit-Remaining-"+name, strconv.FormatInt(q.Remaining, 10))
	h.Set("X-Ratelimit-Reset-"+name, FormatReset(q.Reset))
}

// FormatReset renders a reset duration the way OpenAI's x-ratelimit-reset-* headers do, rounded
// up to the millisecond: "0s", "20ms", "1.5s", "6m0s".
func FormatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
}
