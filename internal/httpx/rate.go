package httpx

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// rateBody enforces a minimum transfer rate on a response body: every window must deliver at
// least need bytes until the body ends, or the body is closed under its reader, which makes the
// pending and all later reads fail with ErrTooSlow.
//
// Closing is how it cuts a read off, not a context of its own: the transport supports a Close
// while a Read waits (HTTP/1 closes the connection, HTTP/2 resets the stream; both wake the
// reader), and a context would cost every call in flight a cancel context, its channel and a
// copy of the request (0.6 KB).
type rateBody struct {
	rc     io.ReadCloser
	need   int64
	window time.Duration
	got    atomic.Int64 // bytes read in the current window
	slow   atomic.Bool  // the body was cut off for falling behind

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

func newRateBody(rc io.ReadCloser, need int64, window time.Duration) *rateBody {
	b := &rateBody{rc: rc, need: max(need, 1), window: window}
	b.mu.Lock()
	b.timer = time.AfterFunc(window, b.tick)
	b.mu.Unlock()
	return b
}

// tick ends a window: too few bytes close the body, enough start the next window.
func (b *rateBody) tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	if b.got.Swap(0) < b.need {
		b.done = true
		b.slow.Store(true)
		_ = b.rc.Close()
		return
	}
	b.timer.Reset(b.window)
}

// finish stops the clock, at the end of the body and on Close.
func (b *rateBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.timer.Stop()
	}
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.got.Add(int64(n))
	switch {
	case err == io.EOF:
		b.finish()
	case err != nil && b.slow.Load():
		err = ErrTooSlow
	}
	return n, err
}

func (b *rateBody) Close() error {
	err := b.rc.Close()
	b.finish()
	return err
}
