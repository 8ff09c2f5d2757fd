package server

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/metrics"
)

// fakeConn is a net.Conn that only knows whether it was closed.
type fakeConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *fakeConn) Close() error { c.closed.Store(true); return nil }

func TestConnTrackerEvictsOldestSlow(t *testing.T) {
	m := metrics.New()
	tr := newConnTracker(3, m)
	// A clock that runs, and that the test can move forward.
	base, realStart := time.Unix(1_800_000_000, 0), time.Now()
	var offset atomic.Int64
	tr.now = func() time.Time { return base.Add(time.Duration(offset.Load()) + time.Since(realStart)) }
	skip := func(d time.Duration) { offset.Add(int64(d)) }
	// wait is the server reading c and waiting on its client.
	wait := func(c *trackedConn) {
		c.waitSince.Store(tr.now().UnixNano())
		c.waiting.Store(true)
	}
	add := func() (*trackedConn, *fakeConn) {
		fc := &fakeConn{}
		c := &trackedConn{Conn: fc}
		if !tr.add(c) {
			return nil, fc
		}
		return c, fc
	}
	a, fa := add()
	b, fb := add()
	c, fc := add()
	for _, x := range []*trackedConn{a, b, c} {
		tr.connState(x, http.StateActive)
	}
	if got := value(m.OpenConns); got != 3 {
		t.Fatalf("open gauge %v, want 3", got)
	}
	// All three serving requests: a fourth is refused, at once.
	start := time.Now()
	if d, _ := add(); d != nil {
		t.Fatal("a connection was admitted past the cap with nothing evictable")
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("the refusal took %v", took)
	}
	if got := value(m.ConnsDropped.WithLabelValues("refused")); got != 1 {
		t.Fatalf("refused = %v, want 1", got)
	}
	// c goes idle (keep-alive: the server waits on it for the next request) and b starts
	// reading a body. Past slowHeaderAge the idle c is slow; b is not yet (its first second). c
	// makes room although b is older.
	tr.connState(c, http.StateIdle)
	wait(c)
	b.beginBody(tr.now())
	skip(2 * slowHeaderAge)
	d, _ := add()
	if d == nil || !fc.closed.Load() || fa.closed.Load() || fb.closed.Load() {
		t.Fatalf("evicted: a %v b %v c %v; want c, the idle one", fa.closed.Load(), fb.closed.Load(), fc.closed.Load())
	}
	tr.connState(d, http.StateActive)
	// Two seconds later b has read 1 KiB: a trickle, evictable; a is still serving.
	skip(2 * time.Second)
	b.bodyRead.Store(1 << 10)
	e, _ := add()
	if e == nil || !fb.closed.Load() || fa.closed.Load() {
		t.Fatal("the trickling body was not evicted")
	}
	// a's body arrives fast: not evictable. e is new and silent (the server waits on it) but
	// young: the next connection waits for it to age, then takes its place.
	a.beginBody(tr.now().Add(-2 * time.Second))
	a.bodyRead.Store(10 << 20)
	wait(e)
	fe := e.Conn.(*fakeConn)
	start = time.Now()
	f, _ := add()
	if took := time.Since(start); f == nil || !fe.closed.Load() || fa.closed.Load() || took < slowHeaderAge/2 {
		t.Fatalf("admitted %v after %v, evicted e %v, a %v; want e evicted once slowHeaderAge old", f != nil, took, fe.closed.Load(), fa.closed.Load())
	}
	if got := value(m.ConnsDropped.WithLabelValues("evicted")); got != 3 {
		t.Errorf("evicted = %v, want 3", got)
	}
	// f's request arrived at once: the server read it and is parsing it (not waiting on the
	// client). However long that takes, f is not slow; d and a (its body read) are serving. The
	// next connection is refused.
	a.endBody()
	f.waitSince.Store(tr.now().Add(-time.Hour).UnixNano())
	skip(time.Hour)
	if g, _ := add(); g != nil || f.Conn.(*fakeConn).closed.Load() {
		t.Fatal("a connection whose request arrived was evicted")
	}
	// A new connection the server has not read at all goes after unreadAge.
	f.waitSince.Store(0)
	if g, _ := add(); g == nil || !f.Conn.(*fakeConn).closed.Load() {
		t.Fatal("an unread connection older than unreadAge was not evicted")
	}
	// Closing forgets (once).
	_ = a.Close()
	_ = a.Close()
	if tr.Len() != 2 || value(m.OpenConns) != 2 {
		t.Errorf("after a close: %d tracked, gauge %v; want 2", tr.Len(), value(m.OpenConns))
	}
	if got := value(m.ConnsDropped.WithLabelValues("refused")); got != 2 {
		t.Errorf("refused = %v, want 2", got)
	}
}

func TestDefaultMaxConns(t *testing.T) {
	n, ok := openFileLimit()
	if !ok {
		if DefaultMaxConns() != fallbackMaxConns {
			t.Fatalf("no limit: %d, want the fallback", DefaultMaxConns())
		}
		return
	}
	got := DefaultMaxConns()
	if got < 16 || uint64(got) > n || (n >= 1000 && uint64(got) > n*8/10+1) {
		t.Fatalf("RLIMIT_NOFILE %d: cap %d", n, got)
	}
}

// TestMaxConnsEvictsIdleRefusesBusy: at the cap, a probe takes the place of an idle connection;
// with every connection serving a request, a new one is closed at once.
func TestMaxConnsEvictsIdleRefusesBusy(t *testing.T) {
	const limit = 6
	m := metrics.New()
	api := newBlockingAPI()
	addr := serve(t, New(Options{Metrics: m, MaxConns: limit, Mount: api.mount}))
	url := "http://" + addr
	if got := value(m.ConnLimit); got != limit {
		t.Fatalf("limit gauge %v", got)
	}
	// limit connections that never send a byte.
	var idle []net.Conn
	for range limit {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitFor(t, func() bool { return value(m.OpenConns) == limit })
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := probe.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("healthz at the cap: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz at the cap: %d", resp.StatusCode)
	}
	// The oldest silent connection made room.
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Error("the oldest idle connection is still open")
	}
	if got := value(m.ConnsDropped.WithLabelValues("evicted")); got < 1 {
		t.Errorf("evicted = %v", got)
	}
	for _, c := range idle {
		c.Close()
	}
	waitFor(t, func() bool { return value(m.OpenConns) == 0 })

	// Every connection serving a request: nothing to evict, a new connection is refused.
	finish := hold(t, api, url, limit)
	if _, err := probe.Get(url + "/healthz"); err == nil {
		t.Error("a connection was served past the cap with every connection busy")
	}
	if got := value(m.ConnsDropped.WithLabelValues("refused")); got < 1 {
		t.Errorf("refused = %v", got)
	}
	if got := value(m.OpenConns); got > limit {
		t.Errorf("open connections %v past the cap %d", got, limit)
	}
	finish()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
