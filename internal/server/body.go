package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/internal/frontdoor"
)

// Request-body timeouts: a body must keep arriving at BodyMinRate bytes/s or more once
// BodyReadGrace has passed since the handler started reading it, and must be complete within
// BodyReadTimeout of the request's start. A body that falls behind has its connection's read
// deadline pass: the handler's read fails, the client gets a 408 in the OpenAI error envelope if
// nothing was written yet, and the connection is closed. The headers have their own bound
// (http.Server.ReadHeaderTimeout, 10 s).
const (
	// DefaultBodyMinRate is the minimum body transfer rate (bytes/s) when Options.BodyMinRate
	// is 0: 4 KiB/s (32 kbit/s) is below any real uplink, and far above a slowloris trickle.
	DefaultBodyMinRate = 4 << 10
	// DefaultBodyReadGrace is how long, from the handler's first read, a body may take before
	// the minimum rate applies when Options.BodyReadGrace is 0: room for a slow start and a
	// pause, as long as the header timeout.
	DefaultBodyReadGrace = 10 * time.Second
	// DefaultBodyReadTimeout bounds a whole body when Options.BodyReadTimeout is 0: 64 MiB (the
	// default limits.max_body_bytes) in 10 minutes is about 110 KB/s.
	DefaultBodyReadTimeout = 10 * time.Minute
)

// bodyDeadlineStep is how far the deadline must move before it is moved (or a quarter of the
// grace, when less): setting it costs a timer update, so a body read in many small reads moves
// it about once per second's worth of bytes. The deadline in force thus lags what the bytes
// earned by less than a step, which the grace covers.
const bodyDeadlineStep = time.Second

// bodyDiscardWindow bounds the reads of a body the handler did not finish when it starts its
// response (or returns): net/http reads up to 256 KiB of what is left to keep the connection.
const bodyDiscardWindow = time.Second

// bodyPolicy is the resolved request-body timeouts.
type bodyPolicy struct {
	rate    int64         // bytes/s; 0: no minimum rate
	grace   time.Duration // before the rate applies
	timeout time.Duration // whole body; 0: none
	step    time.Duration // see bodyDeadlineStep
	// message is the 408 body.
	message []byte
}

func newBodyPolicy(rate int64, grace, timeout time.Duration) *bodyPolicy {
	p := &bodyPolicy{rate: rate, grace: grace, timeout: timeout}
	switch {
	case p.rate == 0:
		p.rate = DefaultBodyMinRate
	case p.rate < 0:
		p.rate = 0
	}
	if p.grace <= 0 {
		p.grace = DefaultBodyReadGrace
	}
	p.step = min(bodyDeadlineStep, p.grace/4)
	switch {
	case p.timeout == 0:
		p.timeout = DefaultBodyReadTimeout
	case p.timeout < 0:
		p.timeout = 0
	}
	msg := "The request body arrived too slowly"
	switch {
	case p.rate > 0 && p.timeout > 0:
		msg += fmt.Sprintf(": it must arrive at %d bytes/s or more after the first %s, and in full within %s.", p.rate, p.grace, p.timeout)
	case p.rate > 0:
		msg += fmt.Sprintf(": it must arrive at %d bytes/s or more after the first %s.", p.rate, p.grace)
	case p.timeout > 0:
		msg += fmt.Sprintf(": it must arrive in full within %s.", p.timeout)
	}
	p.message, _ = json.Marshal(map[string]any{"error": map[string]any{
		"message": msg, "type": "invalid_request_error", "param": nil, "code": "request_timeout"}})
	p.message = append(p.message, '\n')
	return p
}

func (p *bodyPolicy) off() bool { return p.rate == 0 && p.timeout == 0 }

// readDeadliner is what http.ResponseController.SetReadDeadline finds on net/http's writer.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// deadlinerOf finds the connection's read deadline setter behind w (as http.ResponseController
// does), or nil.
func deadlinerOf(w http.ResponseWriter) readDeadliner {
	for {
		switch t := w.(type) {
		case readDeadliner:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
		}
	}
}

// limitBody puts the request body under the connection's read deadline (see the constants
// above), a step of front; endBody finishes what it started once the handler returned. A
// request without a body passes untouched (nil).
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) *deadlineBody {
	if r.Body == nil || r.Body == http.NoBody || s.body.off() {
		return nil
	}
	sw, _ := w.(*statusWriter)
	var dl readDeadliner
	if sw != nil {
		dl = deadlinerOf(sw.ResponseWriter)
	} else {
		dl = deadlinerOf(w)
	}
	if dl == nil {
		return nil
	}
	b := &deadlineBody{body: r.Body, dl: dl, p: s.body, conn: connFrom(r.Context()), timeouts: s.o.Metrics.BodyTimeouts}
	if s.body.timeout > 0 {
		b.hard = time.Now().Add(s.body.timeout)
	}
	// No deadline yet: nothing reads the connection until the handler does (its first read
	// sets one) or answers (responding bounds what net/http then reads of the rest).
	if sw != nil {
		sw.body = b
	}
	r.Body = b
	return b
}

// endBody: a body that timed out gets its 408 unless the handler answered; otherwise what
// net/http reads of the rest is bounded from now on.
func (s *Server) endBody(w http.ResponseWriter, r *http.Request, b *deadlineBody) {
	if b == nil {
		return
	}
	if b.timedOut.Load() {
		frontdoor.InfoFrom(r.Context()).Update(func(i *frontdoor.Info) { i.ErrorKind = "request_timeout" })
		if sw, _ := w.(*statusWriter); sw != nil && sw.status == 0 {
			sw.writeBodyTimeout()
		}
		return
	}
	b.responding()
}

// deadlineBody is a request body read under the connection's read deadline, moved as the bytes
// arrive: start of the first read + grace + bytes read / rate, and never past the whole-body
// bound.
type deadlineBody struct {
	body     io.ReadCloser
	dl       readDeadliner
	p        *bodyPolicy
	conn     *trackedConn // nil without the tracking listener
	hard     time.Time    // the request's start + the whole-body timeout; zero when none
	timeouts interface{ Inc() }

	reading   time.Time // the first read; zero before it
	read      int64
	set       atomic.Int64 // the deadline in force (UnixNano); 0 before the first
	done      atomic.Bool  // EOF or an error: the deadline no longer applies
	timedOut  atomic.Bool
	responded atomic.Bool
}

// errBodyTimeout is what a read of a body that fell behind returns (wrapping the net error).
type errBodyTimeout struct{ err error }

func (e *errBodyTimeout) Error() string {
	return "server: the request body arrived too slowly: " + e.err.Error()
}
func (e *errBodyTimeout) Unwrap() error { return e.err }
func (e *errBodyTimeout) Timeout() bool { return true }

// limit caps t at the whole-body bound.
func (b *deadlineBody) limit(t time.Time) time.Time {
	if !b.hard.IsZero() && t.After(b.hard) {
		return b.hard
	}
	return t
}

// earned is the deadline the bytes read so far have earned.
func (b *deadlineBody) earned() time.Time {
	if b.p.rate <= 0 {
		return b.hard
	}
	secs, rem := b.read/b.p.rate, b.read%b.p.rate
	if secs > 1<<32 {
		return b.limit(b.reading.Add(1 << 62))
	}
	d := time.Duration(secs)*time.Second + time.Duration(rem)*time.Second/time.Duration(b.p.rate)
	return b.limit(b.reading.Add(b.p.grace + d))
}

func (b *deadlineBody) setDeadline(t time.Time) {
	b.set.Store(t.UnixNano())
	_ = b.dl.SetReadDeadline(t)
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return b.body.Read(p)
	}
	if b.reading.IsZero() {
		b.reading = time.Now()
		if b.conn != nil {
			b.conn.beginBody(b.reading)
		}
	}
	if e := b.earned(); b.set.Load() == 0 || e.UnixNano()-b.set.Load() >= int64(b.p.step) {
		b.setDeadline(e)
	}
	n, err := b.body.Read(p)
	if n > 0 {
		b.read += int64(n)
		if b.conn != nil {
			b.conn.bodyRead.Store(b.read)
		}
	}
	if err != nil {
		b.done.Store(true)
		if b.conn != nil {
			b.conn.endBody()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.timedOut.Store(true)
			b.timeouts.Inc()
			return n, &errBodyTimeout{err}
		}
		// Done. At EOF net/http clears the deadline as it starts its background read of the
		// connection (which would otherwise hit it and cancel the request's context while the
		// handler works on: TestBodyAtRateIsNotCut); after a malformed body the connection is
		// closed after the response.
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// responding is called when the handler starts its response or returns: what is left of a body
// it did not finish gets bodyDiscardWindow at most (net/http reads some of it to keep the
// connection, and otherwise closes it).
func (b *deadlineBody) responding() {
	if b.done.Load() || b.timedOut.Load() || !b.responded.CompareAndSwap(false, true) {
		return
	}
	now := time.Now()
	if b.conn != nil {
		b.conn.discardBody(now)
	}
	b.setDeadline(now.Add(bodyDiscardWindow))
}

// bodyTimeoutHeaders are dropped from a response replaced by the 408: they described the
// handler's answer.
var bodyTimeoutHeaders = []string{"Content-Length", "Content-Encoding", "Content-Disposition", "Transfer-Encoding",
	"Etag", "Last-Modified", "Retry-After", "Retry-After-Ms", "X-Should-Retry"}

// writeBodyTimeout writes the 408 in place of the handler's response.
func (w *statusWriter) writeBodyTimeout() {
	w.stamp()
	h := w.ResponseWriter.Header()
	for _, k := range bodyTimeoutHeaders {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Connection", "close")
	w.status = http.StatusRequestTimeout
	w.replaced = true
	w.ResponseWriter.WriteHeader(http.StatusRequestTimeout)
	n, _ := w.ResponseWriter.Write(w.body.p.message)
	w.bytes += int64(n)
}
