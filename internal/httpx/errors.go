package httpx

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Match them with errors.Is; they survive wrapping by *url.Error and *net.OpError.
var (
	// ErrBlockedAddress means the destination resolved to an address the SSRF policy refuses
	// (loopback, private, link-local, metadata, ...) and it is not in Options.AllowHosts.
	ErrBlockedAddress = errors.New("httpx: blocked destination address")
	// ErrBlockedScheme means the URL (or a redirect's target) is not http or https, or is plain
	// http when Options.HTTPSOnly is set.
	ErrBlockedScheme = errors.New("httpx: blocked URL scheme")
	// ErrTooManyRedirects means a redirect chain was longer than Options.MaxRedirects.
	ErrTooManyRedirects = errors.New("httpx: too many redirects")
	// ErrTooLarge means a body (or a data URI's payload) is larger than the allowed size.
	ErrTooLarge = errors.New("httpx: body too large")
	// ErrNotImage means fetched bytes are not a PNG, JPEG, WebP or GIF image.
	ErrNotImage = errors.New("httpx: not an image (PNG, JPEG, WebP or GIF)")
	// ErrBadDataURI means a data: URI is malformed: not base64, not an image media type, or
	// undecodable.
	ErrBadDataURI = errors.New("httpx: malformed data URI")
	// ErrUnexpectedStatus means a fetch got an answer other than 200 OK; the error is a *StatusError.
	ErrUnexpectedStatus = errors.New("httpx: unexpected HTTP status")
	// ErrTooSlow means a response body arrived slower than Options.MinBodyRate. It is a
	// net.Error whose Timeout method reports true, so callers classify it as a timeout.
	ErrTooSlow error = tooSlowError{}
)

type tooSlowError struct{}

func (tooSlowError) Error() string   { return "httpx: the response body arrived too slowly" }
func (tooSlowError) Timeout() bool   { return true }
func (tooSlowError) Temporary() bool { return false }

// StatusError reports that a fetched URL answered with a status other than 200 OK (an expired
// signed URL typically answers 403 or 404). errors.Is(err, ErrUnexpectedStatus) is true for it.
type StatusError struct {
	// StatusCode is the HTTP status the server answered with.
	StatusCode int
	// URL is the fetched URL without its query string and credentials.
	URL string
}

// Error describes the status and the URL it came from.
func (e *StatusError) Error() string {
	return fmt.Sprintf("httpx: fetch %s: unexpected status %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap returns ErrUnexpectedStatus so that errors.Is matches every StatusError.
func (e *StatusError) Unwrap() error { return ErrUnexpectedStatus }
