package server

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/providers"
)

// DefaultMaxInFlight bounds the API requests (/v1/images/…) one replica serves at once when
// limits.max_in_flight is 0.
//
// Image requests spend almost all their time waiting on an upstream (seconds), so the number in
// flight is request rate × upstream latency (2048 at 5 s is 400 requests/s per replica), not a
// measure of CPU work; the bound protects the replica's memory, and stops the unbounded queueing
// that starved its own store and Redis calls of CPU when it was driven past capacity. Measured
// with BenchmarkInFlightFootprint (this package; 1000 requests held on a 2 s upstream, gateway
// minus direct-to-upstream): a waiting request costs the gateway about 6 goroutines, 27 KB of
// heap and 38 KB of goroutine stacks, ~65 KB in all. 2048 of them are ~130 MB, about 15 % of the
// 900 MiB GOMEMLIMIT of the 1 GiB pod in deploy/, which leaves the rest for the request and
// response bodies being moved (several MB each, but only while read or written). Raise the bound
// together with the pod's memory.
const DefaultMaxInFlight = 2048

// DefaultQueueWait is how long a request may wait for a slot when the bound is reached before it
// is shed, when Options.QueueWait is 0. Short on purpose: it absorbs bursts, it is not a queue.
const DefaultQueueWait = 50 * time.Millisecond

// overloadRetryAfter is about what a shed request is told to wait before retrying: each answer
// jitters it by ±50 % so that the retries of a burst spread out.
const overloadRetryAfter = time.Second

// limiter bounds the API requests in flight. A nil sem means unlimited (only counted).
type limiter struct {
	sem        chan struct{}
	wait       time.Duration
	maxWaiting int64
	waiting    atomic.Int64
}

func newLimiter(maxInFlight int, wait time.Duration) *limiter {
	l := &limiter{wait: wait}
	if maxInFlight == 0 {
		maxInFlight = DefaultMaxInFlight
	}
	if maxInFlight > 0 {
		l.sem = make(chan struct{}, maxInFlight)
		// A slot frees when a request finishes; within a short wait only a fraction of the
		// bound turns over, so more waiters than that would only be shed later.
		l.maxWaiting = int64(max(maxInFlight/8, 1))
	}
	if l.wait == 0 {
		l.wait = DefaultQueueWait
	}
	return l
}

// limit returns the bound, or 0 when unlimited.
func (l *limiter) limit() int { return cap(l.sem) }

// acquire takes a slot, waiting at most l.wait (and only while fewer than maxWaiting wait). It
// reports false when the request is to be shed.
func (l *limiter) acquire(ctx context.Context) bool {
	if l.sem == nil {
		return true
	}
	select {
	case l.sem <- struct{}{}:
		return true
	default:
	}
	if l.wait <= 0 {
		return false
	}
	if l.waiting.Add(1) > l.maxWaiting {
		l.waiting.Add(-1)
		return false
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (l *limiter) release() {
	if l.sem != nil {
		<-l.sem
	}
}

// limited reports whether a request counts against the in-flight bound: the image API, but not
// the hosted-image GETs (cheap file reads), health, readiness, metrics, models or admin.
func limited(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/v1/images/") && !strings.HasPrefix(p, "/v1/images/files/")
}

// enter bounds the API requests in flight (a step of front): beyond the bound (after a short
// wait) it answers a fast 503 "overloaded" in the OpenAI envelope with Retry-After, which the
// SDKs retry, and returns false. A request it let in leaves with leave.
func (s *Server) enter(w http.ResponseWriter, r *http.Request) bool {
	if !s.lim.acquire(r.Context()) {
		s.o.Metrics.APIShed.Inc()
		s.nameRoute(r)
		frontdoor.InfoFrom(r.Context()).Update(func(i *frontdoor.Info) { i.ErrorKind = string(providers.KindUnavailable) })
		writeOverloaded(w)
		return false
	}
	s.o.Metrics.APIInFlight.Inc()
	return true
}

func (s *Server) leave() {
	s.o.Metrics.APIInFlight.Dec()
	s.lim.release()
}

// nameRoute fills in the route pattern of a request answered before routing, so its access log
// line and metrics carry the route it was for rather than "unmatched".
func (s *Server) nameRoute(r *http.Request) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || s.router == nil {
		return
	}
	if pattern := s.router.Find(chi.NewRouteContext(), r.Method, r.URL.Path); pattern != "" {
		rctx.RoutePatterns = []string{pattern}
	}
}

// writeOverloaded writes the 503 a shed request gets: Retry-After (whole seconds, rounded up) and
// retry-after-ms (which the OpenAI SDKs prefer) give the same jittered wait, and x-should-retry
// says an automatic retry is safe (nothing was done).
func writeOverloaded(w http.ResponseWriter) {
	ra := overloadRetryAfter/2 + rand.N(overloadRetryAfter)
	w.Header().Set("x-should-retry", "true") // Retry-After and retry-after-ms: WriteError
	frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnavailable, Code: "overloaded", RetryAfter: ra,
		Message: "The gateway is overloaded: too many requests in flight. Retry after a short wait."})
}
