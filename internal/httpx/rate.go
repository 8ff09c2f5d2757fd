package httpx

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// rateBody enforces a minimum transfer rate on a response body: every window must deliver at
// least need bytes until the body ends, or the request's context is canceled with ErrTooSlow,
// which makes the pending and all later reads fail.
type rateBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	need   int64
	window time.Duration
	got    atomic.Int64 // bytes read in the current window

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

func newRateBody(rc io.ReadCloser, ctx context.Context, cancel context.CancelCauseFunc, need int64, window time.Duration) *rateBody {
	b := &rateBody{rc: rc, ctx: ctx, cancel: cancel, need: max(need, 1), window: window}
	b.mu.Lock()
	b.timer = time.AfterFunc(window, b.tick)
	b.mu.Unlock()
	return b
}

// tick ends a window: too few bytes cancel the request, enough start the next window.
func (b *rateBody) tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	if b.got.Swap(0) < b.need {
		b.done = true
		b.cancel(ErrTooSlow)
		return
	}
	b.timer.Reset(b.window)
}

// finish stops the clock and releases the context. It runs at the end of the body (the
// transport has then already released the connection, so canceling cannot disturb it) and on
// Close.
func (b *rateBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		b.timer.Stop()
	}
	b.cancel(nil)
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.got.Add(int64(n))
	switch {
	case err == io.EOF:
		b.finish()
	case err != nil && context.Cause(b.ctx) == ErrTooSlow:
		err = ErrTooSlow
	}
	return n, err
}

func (b *rateBody) Close() error {
	err := b.rc.Close()
	b.finish()
	return err
}
