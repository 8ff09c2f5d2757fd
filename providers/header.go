package providers

import (
	"net/http"

	"github.com/imagegw/imagegw/internal/httpx"
)

// Header builds the request header an adapter sends on every call of one kind, once, from
// name/value pairs (canonicalised as http.Header.Set does). It adds the gateway's User-Agent and
// "Accept-Encoding: identity" unless the pairs set them: image answers are base64 of compressed
// images, which gzip shrinks by a quarter at the cost of inflating megabytes on the gateway's CPU
// for every request.
//
// The header is shared by every request that carries it, concurrently, so nothing may change it
// once built: set it as a request's Header (Send and the transport only read it) and use
// WithHeader for a call that needs a field of its own. Sharing it saves each call in flight a
// header map of its own, a copy of it in the client (for the User-Agent) and the transport's
// map for the Accept-Encoding it would add (about 1 KB).
func Header(kv ...string) http.Header {
	h := WithHeader(nil, kv...)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{httpx.DefaultUserAgent}
	}
	if _, ok := h["Accept-Encoding"]; !ok {
		h["Accept-Encoding"] = []string{"identity"}
	}
	return h
}

// WithHeader is a copy of a shared header (see Header) with name/value pairs set: for a call
// whose header differs from the shared one (a multipart boundary, a per-call field).
func WithHeader(h http.Header, kv ...string) http.Header {
	c := make(http.Header, len(h)+len(kv)/2)
	for k, vs := range h {
		c[k] = vs
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}
