package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"sync"
)

// DefaultMaxResponseBytes caps an upstream answer when the channel sets no cap: enough for
// several large base64 images, small enough that a runaway body cannot exhaust memory.
const DefaultMaxResponseBytes = 64 << 20

// ReadBody reads an upstream body of at most max bytes (DefaultMaxResponseBytes when max <= 0).
// A longer body is a KindUpstreamBadResponse; a read failure is classified by TransportError.
func ReadBody(ctx context.Context, provider string, r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, TransportError(ctx, provider, fmt.Errorf("read response: %w", err))
	}
	if int64(len(b)) > max {
		return nil, &Error{Kind: KindUpstreamBadResponse, Provider: provider,
			Message: fmt.Sprintf("the provider's answer exceeded %d bytes", max)}
	}
	return b, nil
}

// ReadResponse reads resp's body, of at most max bytes (DefaultMaxResponseBytes when max <= 0),
// into a pooled buffer: one of the size its Content-Length announces when it has one (no
// growing and copying), else one that grows by doubling. A body over max (or over what its
// Content-Length says, which net/http refuses) is a KindUpstreamBadResponse; a read failure is
// classified by TransportError. release gives the buffer back for the next answer to reuse; call
// it once nothing reads body any more (Result.OnRelease), or never (the GC takes it then).
func ReadResponse(ctx context.Context, provider string, resp *http.Response, max int64) (body []byte, release func(), err error) {
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	tooLarge := func() error {
		return &Error{Kind: KindUpstreamBadResponse, Provider: provider, Status: resp.StatusCode,
			Message: fmt.Sprintf("the provider's answer exceeded %d bytes", max)}
	}
	if resp.ContentLength > max {
		return nil, func() {}, tooLarge()
	}
	readErr := func(err error) error { return TransportError(ctx, provider, fmt.Errorf("read response: %w", err)) }
	if n := resp.ContentLength; n >= 0 {
		buf := getBuffer(int(n))
		b := (*buf)[:n]
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			putBuffer(buf)
			return nil, func() {}, readErr(err)
		}
		var one [1]byte // the end of the body: lets the connection go back to the pool at once
		if k, _ := resp.Body.Read(one[:]); k > 0 {
			putBuffer(buf)
			return nil, func() {}, readErr(errors.New("the body is longer than its Content-Length"))
		}
		return b, releaser(buf), nil
	}
	r := io.LimitReader(resp.Body, max+1)
	buf := getBuffer(minPooled)
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > max {
				putBuffer(buf)
				return nil, func() {}, tooLarge()
			}
			bigger := getBuffer(2 * cap(b))
			nb := append((*bigger)[:0], b...)
			putBuffer(buf)
			buf, b = bigger, nb
		}
		k, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if err == io.EOF {
			break
		}
		if err != nil {
			putBuffer(buf)
			return nil, func() {}, readErr(err)
		}
	}
	if int64(len(b)) > max {
		putBuffer(buf)
		return nil, func() {}, tooLarge()
	}
	return b, releaser(buf), nil
}

// Pooled buffers come in power-of-two sizes from minPooled to maxPooled; others are allocated
// and left to the GC.
const (
	minPooledShift = 12
	maxPooledShift = 26
	minPooled      = 1 << minPooledShift
)

var bufferPools [maxPooledShift - minPooledShift + 1]sync.Pool

// poolIndex is the pool whose buffers hold n bytes, or -1.
func poolIndex(n int) int {
	if n > 1<<maxPooledShift {
		return -1
	}
	i := bits.Len(uint(max(n, minPooled)-1)) - minPooledShift
	return i
}

// getBuffer returns a buffer with a capacity of at least n.
func getBuffer(n int) *[]byte {
	i := poolIndex(n)
	if i < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if v, ok := bufferPools[i].Get().(*[]byte); ok {
		return v
	}
	b := make([]byte, 0, 1<<(i+minPooledShift))
	return &b
}

// putBuffer gives a buffer from getBuffer back.
func putBuffer(b *[]byte) {
	c := cap(*b)
	if c < minPooled || c > 1<<maxPooledShift || c&(c-1) != 0 {
		return
	}
	*b = (*b)[:0]
	bufferPools[poolIndex(c)].Put(b)
}

// releaser returns a function that gives buf back once, however often it is called.
func releaser(buf *[]byte) func() {
	var once sync.Once
	return func() { once.Do(func() { putBuffer(buf) }) }
}
