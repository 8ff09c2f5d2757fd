package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// DefaultMaxImageBytes caps a fetched image when Fetch is given no cap: OpenAI's limit for an
// input image.
const DefaultMaxImageBytes = 50 << 20

// imageTypes are the content types Fetch accepts, as http.DetectContentType names them.
var imageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/webp": true, "image/gif": true}

// Fetcher downloads images: client-supplied reference images and provider-returned image URLs.
// It is safe for concurrent use.
type Fetcher struct {
	client *http.Client
}

// NewFetcher returns a Fetcher that downloads with client, which should come from New (so that
// the SSRF policy applies). A nil client means New(Options{}).
func NewFetcher(client *http.Client) *Fetcher {
	if client == nil {
		client = New(Options{})
	}
	return &Fetcher{client: client}
}

// Fetch downloads the image at rawURL, or decodes it when rawURL is a base64 data: URI (see
// DecodeDataURI; no network is used then). It enforces, in order: an http or https URL
// (ErrBlockedScheme), the client's address policy on every connection and redirect hop
// (ErrBlockedAddress), a 200 OK answer (*StatusError), at most maxBytes of body (ErrTooLarge; a
// declared Content-Length over the cap is refused before reading, and never more than maxBytes+1
// bytes are read), and bytes that sniff as PNG, JPEG, WebP or GIF (ErrNotImage). The returned
// content type is the sniffed one, never the server's claim. maxBytes <= 0 means
// DefaultMaxImageBytes. Errors name the URL without its query string or credentials.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, maxBytes int64) (data []byte, contentType string, err error) {
	// The download runs on a goroutine of its own. A gateway fetches deep in a request's stack
	// (an input image before the upstream call, an output after it), and the HTTP client's frames
	// (3 KB and more) on top of that would double the stack of the request's connection for as
	// long as it lives (see TestRequestFitsInAGoroutinesFirstStack in internal/app). A goroutine
	// costs a microsecond; a download, milliseconds.
	type result struct {
		data        []byte
		contentType string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.data, r.contentType, r.err = f.fetch(ctx, rawURL, maxBytes)
		done <- r
	}()
	r := <-done
	return r.data, r.contentType, r.err
}

func (f *Fetcher) fetch(ctx context.Context, rawURL string, maxBytes int64) (data []byte, contentType string, err error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxImageBytes
	}
	if IsDataURI(rawURL) {
		return DecodeDataURI(rawURL, maxBytes)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("httpx: fetch: bad URL: %w", redactParseError(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return nil, "", fmt.Errorf("httpx: fetch %s: %w: %q", Redact(u), ErrBlockedScheme, u.Scheme)
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("httpx: fetch %s: the URL has no host", Redact(u))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("httpx: fetch %s: %w", Redact(u), err)
	}
	req.Header.Set("Accept", "image/png, image/jpeg, image/webp, image/gif;q=0.9, */*;q=0.1")
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if pu, perr := url.Parse(ue.URL); perr == nil {
				ue.URL = Redact(pu)
			}
			return nil, "", fmt.Errorf("httpx: fetch: %w", ue)
		}
		return nil, "", fmt.Errorf("httpx: fetch %s: %w", Redact(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so a small error page does not cost the connection.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return nil, "", &StatusError{StatusCode: resp.StatusCode, URL: Redact(resp.Request.URL)}
	}
	data, err = readLimited(resp.Body, resp.ContentLength, maxBytes)
	if err != nil {
		return nil, "", fmt.Errorf("httpx: fetch %s: %w", Redact(resp.Request.URL), err)
	}
	ct, err := sniffImage(data)
	if err != nil {
		return nil, "", fmt.Errorf("httpx: fetch %s: %w", Redact(resp.Request.URL), err)
	}
	return data, ct, nil
}

// sniffImage returns the content type of data if it is one of the accepted image types.
func sniffImage(data []byte) (string, error) {
	ct := http.DetectContentType(data)
	if !imageTypes[ct] {
		return "", fmt.Errorf("%w: the bytes look like %s", ErrNotImage, ct)
	}
	return ct, nil
}

// maxPooledBuffer is the largest read buffer returned to the pool; bigger ones are dropped so
// that one huge image does not pin its memory forever.
const maxPooledBuffer = 8 << 20

var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readLimited reads a body of at most max bytes and never reads more than max+1 bytes. With a
// known length (>= 0) it reads into one exactly sized allocation; otherwise it reads into a
// pooled buffer and copies the result out once.
func readLimited(r io.Reader, contentLength, max int64) ([]byte, error) {
	if contentLength > max {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the limit of %d bytes", ErrTooLarge, contentLength, max)
	}
	if contentLength >= 0 {
		buf := make([]byte, contentLength)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return buf, nil
	}
	b := readBuffers.Get().(*bytes.Buffer)
	b.Reset()
	defer func() {
		if b.Cap() <= maxPooledBuffer {
			readBuffers.Put(b)
		}
	}()
	if _, err := b.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(b.Len()) > max {
		return nil, fmt.Errorf("%w: the body exceeds the limit of %d bytes", ErrTooLarge, max)
	}
	return bytes.Clone(b.Bytes()), nil
}

// Redact returns u as a string without user info, query or fragment, for logs and errors:
// signed URLs carry their signature in the query.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	return c.String()
}

// redactParseError drops the URL text from a url.Parse error, which may be a huge or secret string.
func redactParseError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
