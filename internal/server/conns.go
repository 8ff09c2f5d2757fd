package server

import (
	"container/list"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/internal/metrics"
)

// MaxConnsFraction is the share of the process's open-file limit (RLIMIT_NOFILE) that client
// connections may take when Options.MaxConns is 0. The rest is the reserve for what the gateway
// opens itself: upstream connections (one per image request waiting on a provider), the store's
// and Redis's pools, the usage journal, hosted images and the SQLite file.
const MaxConnsFraction = 0.8

// minConnsReserve is the least number of file descriptors left to the reserve whatever the limit.
const minConnsReserve = 64

// slowBodyRate is the average rate (bytes/s) below which a connection still reading its request
// body, after its first second, may be evicted when the connection cap is reached: a trickle,
// not an upload on any real link.
const slowBodyRate = 64 << 10

// DefaultMaxConns returns the cap on open client connections when Options.MaxConns is 0:
// MaxConnsFraction of the soft RLIMIT_NOFILE (which the Go runtime raises to the hard limit at
// start), leaving at least minConnsReserve descriptors; on systems without that limit, a fixed
// fallback.
func DefaultMaxConns() int {
	n, ok := openFileLimit()
	if !ok {
		return fallbackMaxConns
	}
	n = min(n, 1<<24)
	c := int(float64(n) * MaxConnsFraction)
	if n-uint64(c) < minConnsReserve {
		c = int(n) - minConnsReserve
	}
	return max(c, 16)
}

// slowHeaderAge is how long the server may wait on a connection without a request (new and
// silent, still sending its headers, or idle between keep-alive requests) before, at the
// connection cap, it counts as slow and may be evicted. It counts from the server's first read
// and only while a read is waiting on the client: a connection whose request arrived at once (a
// probe) is never slow, even if a flood keeps the server from parsing it for a while. A real
// client's request line and headers arrive within a round trip of the connection.
const slowHeaderAge = 50 * time.Millisecond

// unreadAge is when a new connection that the server has not read at all yet (it is behind on
// its accepted connections) may be evicted anyway, as the oldest, at the cap.
const unreadAge = time.Second

// maxAdmitWait bounds how long a new connection at the cap waits for a connection to become
// evictable (or to close) before it is refused. Meanwhile the listener accepts nothing: later
// connections wait in the kernel's accept queue, first come first served, and hold no
// descriptor of the process.
const maxAdmitWait = time.Second

// Connection states, as the tracker sees them.
const (
	connNew      int32 = iota // accepted, no request read yet (or still reading its headers)
	connIdle                  // keep-alive, waiting for (or reading the headers of) the next request
	connActive                // a request is being served
	connBody                  // a request is being served and its body is being read
	connDiscard               // the handler answered before the end of the body: net/http reads the rest
	connHijacked              // taken over by a handler: never evicted
)

// connTracker counts the open client connections and enforces the cap. At the cap, a new
// connection takes the place of the oldest slow one: new or idle for slowHeaderAge (silent, still
// sending its request headers, idle keep-alive, or answered while net/http reads the rest of a
// body the handler did not need), or trickling its body (below slowBodyRate after its first
// second). When the only candidates are younger than that, the new connection
// waits for the oldest to age (at most maxAdmitWait); when every connection is serving a request,
// it is closed at once. Its listener and the http.Server's ConnState hook keep the states; a
// request's body reader marks the body phase.
type connTracker struct {
	max     int // 0: unlimited (still counted)
	minSlow time.Duration
	open    interface{ Set(float64) }
	dropped func(reason string)
	now     func() time.Time

	mu    sync.Mutex
	conns list.List     // of *trackedConn, oldest accepted first
	wake  chan struct{} // closed when a connection is forgotten, while add waits
}

func newConnTracker(maxConns int, m *metrics.Metrics) *connTracker {
	t := &connTracker{max: max(maxConns, 0), minSlow: slowHeaderAge, open: m.OpenConns, now: time.Now,
		dropped: func(reason string) { m.ConnsDropped.WithLabelValues(reason).Inc() }}
	m.ConnLimit.Set(float64(t.max))
	return t
}

// trackedConn is a client connection the tracker knows.
type trackedConn struct {
	net.Conn
	t     *connTracker
	el    *list.Element // in t.conns; nil once removed (under t.mu)
	state atomic.Int32
	// since is when the connection entered its state (accepted, went idle, started its body).
	since atomic.Int64
	// bodyRead counts the body bytes read since since, in state connBody.
	bodyRead atomic.Int64
	// waitSince is when the server first read the connection in its state new or idle (0
	// before); waiting is set while such a read waits on the client.
	waitSince atomic.Int64
	waiting   atomic.Bool
}

// Read notes, for a connection without a request (new or idle), when the server started
// waiting on the client and whether it still is; other reads pass straight through.
func (c *trackedConn) Read(p []byte) (int, error) {
	if s := c.state.Load(); s != connNew && s != connIdle {
		return c.Conn.Read(p)
	}
	if c.waitSince.Load() == 0 {
		c.waitSince.Store(c.t.now().UnixNano())
	}
	c.waiting.Store(true)
	n, err := c.Conn.Read(p)
	c.waiting.Store(false)
	return n, err
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.t.remove(c)
	return c.Conn.Close()
}

// ReadFrom keeps net/http's sendfile(2) path (hosted images) through the wrapper.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite half-closes the connection, as net/http does before closing one whose client may
// still be sending (so the client reads the response instead of a reset).
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writerOnly hides a writer's ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

func (c *trackedConn) setState(s int32) { c.state.Store(s) }

// beginBody marks the start of a request body read (see limitBody).
func (c *trackedConn) beginBody(now time.Time) {
	c.bodyRead.Store(0)
	c.since.Store(now.UnixNano())
	c.state.Store(connBody)
}

// endBody marks the body as read (or cut): the connection is serving its request.
func (c *trackedConn) endBody() { c.state.CompareAndSwap(connBody, connActive) }

// discardBody marks a body the handler answered without finishing: what net/http reads of the
// rest only keeps the connection, so the connection may make room like an idle one.
func (c *trackedConn) discardBody(now time.Time) {
	c.since.Store(now.UnixNano())
	if !c.state.CompareAndSwap(connBody, connDiscard) {
		c.state.CompareAndSwap(connActive, connDiscard) // the handler never read it
	}
}

// evictableAt reports whether c is a candidate for eviction and from when: a time not after now
// when it may be evicted now; a later one when it is too young to tell yet. minSlow and unread
// are slowHeaderAge and unreadAge, or zero when the process is out of descriptors.
func (c *trackedConn) evictableAt(now time.Time, minSlow, unread time.Duration) (time.Time, bool) {
	since := time.Unix(0, c.since.Load())
	switch c.state.Load() {
	case connNew, connIdle:
		w := c.waitSince.Load()
		switch {
		case w == 0 && c.state.Load() == connNew:
			return since.Add(unread), true
		case w == 0 || !c.waiting.Load():
			return time.Time{}, false // the server is reading its request
		}
		return time.Unix(0, w).Add(minSlow), true
	case connDiscard:
		return since.Add(minSlow), true
	case connBody:
		elapsed := now.Sub(since)
		if elapsed < time.Second {
			return since.Add(time.Second), true
		}
		if float64(c.bodyRead.Load()) < slowBodyRate*elapsed.Seconds() {
			return now, true
		}
	}
	return time.Time{}, false
}

// pickLocked returns the oldest connection that may be evicted now; or, when there is none, the
// earliest time a candidate may become evictable (zero when there is no candidate). It scans
// from the oldest connection and runs only at the cap (or when the process is out of file
// descriptors); under a flood the oldest connections are the slow ones, so it stops early.
// t.mu is held.
func (t *connTracker) pickLocked(now time.Time, minSlow, unread time.Duration) (*trackedConn, time.Time) {
	var next time.Time
	for el := t.conns.Front(); el != nil; el = el.Next() {
		c := el.Value.(*trackedConn)
		at, ok := c.evictableAt(now, minSlow, unread)
		switch {
		case !ok:
		case !at.After(now):
			return c, time.Time{}
		case next.IsZero() || at.Before(next):
			next = at
		}
	}
	return nil, next
}

// add tracks a newly accepted connection. At the cap it evicts the oldest slow connection to make
// room, waiting for a young candidate to age if need be, or reports false (the caller closes c).
func (t *connTracker) add(c *trackedConn) bool {
	c.t = t
	c.since.Store(t.now().UnixNano())
	deadline := t.now().Add(maxAdmitWait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	t.mu.Lock()
	for {
		if t.max == 0 || t.conns.Len() < t.max {
			t.pushLocked(c)
			t.mu.Unlock()
			return true
		}
		now := t.now()
		victim, next := t.pickLocked(now, t.minSlow, unreadAge)
		if victim != nil {
			t.removeLocked(victim)
			t.pushLocked(c)
			t.mu.Unlock()
			_ = victim.Conn.Close()
			t.dropped("evicted")
			return true
		}
		if next.IsZero() || !now.Before(deadline) {
			t.mu.Unlock()
			t.dropped("refused")
			return false
		}
		wake := make(chan struct{})
		t.wake = wake
		t.mu.Unlock()
		wait := min(next.Sub(now), deadline.Sub(now)) + time.Millisecond
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-wake:
		case <-timer.C:
		}
		t.mu.Lock()
		if t.wake == wake {
			t.wake = nil
		}
	}
}

func (t *connTracker) pushLocked(c *trackedConn) {
	c.el = t.conns.PushBack(c)
	t.open.Set(float64(t.conns.Len()))
}

// evictOne closes the oldest evictable connection, whatever its age, to free its file
// descriptor: the process is out of them.
func (t *connTracker) evictOne() bool {
	t.mu.Lock()
	victim, _ := t.pickLocked(t.now(), 0, 0)
	if victim != nil {
		t.removeLocked(victim)
	}
	t.mu.Unlock()
	if victim == nil {
		return false
	}
	_ = victim.Conn.Close()
	t.dropped("evicted")
	return true
}

func (t *connTracker) remove(c *trackedConn) {
	t.mu.Lock()
	t.removeLocked(c)
	t.mu.Unlock()
}

// removeLocked forgets c (once) and wakes a waiting add. t.mu is held.
func (t *connTracker) removeLocked(c *trackedConn) {
	if c.el == nil {
		return
	}
	t.conns.Remove(c.el)
	c.el = nil
	t.open.Set(float64(t.conns.Len()))
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// Len returns the number of open connections.
func (t *connTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conns.Len()
}

// connState is the http.Server's ConnState hook.
func (t *connTracker) connState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*trackedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		c.setState(connActive)
	case http.StateIdle:
		c.waitSince.Store(0)
		c.setState(connIdle)
	case http.StateHijacked:
		c.setState(connHijacked)
	case http.StateClosed:
		t.remove(c)
	}
}

type connKey struct{}

// connContext is the http.Server's ConnContext hook: requests find their connection with connFrom.
func connContext(ctx context.Context, nc net.Conn) context.Context {
	if c, ok := nc.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

func connFrom(ctx context.Context) *trackedConn {
	c, _ := ctx.Value(connKey{}).(*trackedConn)
	return c
}

// limitListener tracks the connections it accepts and applies the tracker's cap.
type limitListener struct {
	net.Listener
	t *connTracker
}

// Accept returns the next connection the cap admits. Connections refused at the cap are closed
// here and never reach the http.Server. When the process is out of file descriptors, it evicts
// an idle or trickling connection and tries again, so that a probe still gets through.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if fdExhausted(err) && l.t.evictOne() {
				continue
			}
			return nil, err
		}
		c := &trackedConn{Conn: nc}
		if l.t.add(c) {
			return c, nil
		}
		_ = nc.Close()
	}
}

// What net/http looks for on a connection, kept through the wrapper.
var (
	_ io.ReaderFrom                   = (*trackedConn)(nil)
	_ interface{ CloseWrite() error } = (*trackedConn)(nil)
)
