package httpx

import (
	"net/http"
	"testing"
	"time"
)

func TestSetRetryAfterHeadersAgree(t *testing.T) {
	for _, c := range []struct {
		d     time.Duration
		s, ms string
	}{
		{time.Second, "1", "1000"}, {time.Second + 400*time.Microsecond, "2", "1001"},
		{999*time.Millisecond + 1, "1", "1000"}, {1500 * time.Millisecond, "2", "1500"}, {0, "0", "0"},
	} {
		h := http.Header{}
		SetRetryAfter(h, c.d)
		if h.Get("Retry-After") != c.s || h.Get("retry-after-ms") != c.ms {
			t.Errorf("%v: Retry-After %s, retry-after-ms %s; want %s and %s", c.d, h.Get("Retry-After"), h.Get("retry-after-ms"), c.s, c.ms)
		}
	}
}
