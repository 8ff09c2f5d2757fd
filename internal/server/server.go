// Package server assembles the HTTP surface: the chi router, the middleware every request goes
// through (request id, panic recovery, access log, metrics, request-body timeouts, overload
// shedding, body cap), health and metrics endpoints, the cap on open connections (with eviction
// of idle and trickling ones, so probes get through a flood), and graceful shutdown that drains
// in-flight requests.
package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/providers"
)

// Options wires the server.
type Options struct {
	Addr         string
	Logger       *zap.Logger
	Metrics      *metrics.Metrics
	MaxBodyBytes int64
	// Ready reports whether the gateway can serve (the store is reachable).
	Ready func(ctx context.Context) error
	// Mount adds the API routes (front door, admin).
	Mount func(r chi.Router)
	// ShutdownTimeout bounds how long in-flight requests may take to drain. Past it, their
	// contexts are cancelled and Serve waits up to FinishGrace more for them to return (they
	// still record their outcome: an upstream call cut short is an indeterminate ledger row).
	ShutdownTimeout time.Duration
	// FinishGrace is how long cancelled handlers get to finish their accounting; default 10s.
	FinishGrace time.Duration
	// MaxInFlight bounds the image API requests (/v1/images/…, not the hosted-image GETs) served
	// at once; beyond it they get a fast 503 "overloaded" with Retry-After. 0 means
	// DefaultMaxInFlight, negative means unlimited.
	MaxInFlight int
	// QueueWait is how long a request may wait for a slot before it is shed: 0 means
	// DefaultQueueWait, negative means no wait.
	QueueWait time.Duration
	// MaxConns caps the open client connections (Serve): at the cap a new connection replaces
	// the oldest slow one (idle, silent or still sending its headers, or trickling its body; see
	// connTracker), waiting briefly for one to turn slow, or is closed at once when every
	// connection is serving a request. 0 means DefaultMaxConns() (80 % of RLIMIT_NOFILE),
	// negative means unlimited.
	MaxConns int
	// BodyMinRate is the slowest a request body may arrive, in bytes/s, once BodyReadGrace has
	// passed since the handler started reading it; slower, its read fails, the client gets a 408
	// and the connection is closed. 0 means DefaultBodyMinRate, negative means no minimum rate.
	BodyMinRate int64
	// BodyReadGrace is how long a body may take before BodyMinRate applies: 0 means
	// DefaultBodyReadGrace.
	BodyReadGrace time.Duration
	// BodyReadTimeout bounds a whole request body from the request's start: 0 means
	// DefaultBodyReadTimeout, negative means no bound.
	BodyReadTimeout time.Duration
}

// Server is the gateway's HTTP server.
type Server struct {
	o       Options
	handler http.Handler
	router  *chi.Mux
	lim     *limiter
	body    *bodyPolicy
	conns   *connTracker
	// access writes the access log (one line per request, AccessLoggerName).
	access *zap.Logger
	// series caches the request metrics' children by route, method and status (requestSeries).
	series sync.Map
	// routes caches route patterns by chi's pattern parts (routePattern).
	routes sync.Map
	// routing recycles chi's routing contexts (see request).
	routing sync.Pool
	// handlers counts every request being served, so shutdown can wait for them.
	handlers sync.WaitGroup
}

// New builds the router.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.FinishGrace <= 0 {
		o.FinishGrace = 10 * time.Second
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns()
	}
	s := &Server{o: o, lim: newLimiter(o.MaxInFlight, o.QueueWait),
		body: newBodyPolicy(o.BodyMinRate, o.BodyReadGrace, o.BodyReadTimeout), conns: newConnTracker(o.MaxConns, o.Metrics)}
	// Without the caller: it is always observed's line, and finding it walks the stack on
	// every request (runtime.Callers, about 1 µs).
	s.access = o.Logger.Named(AccessLoggerName).WithOptions(zap.WithCaller(false))
	o.Metrics.APIInFlightLimit.Set(float64(s.lim.limit()))
	s.routing.New = func() any { return chi.NewRouteContext() }
	r := chi.NewRouter()
	s.router = r
	r.Use(s.front)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindModelNotFound,
			Message: fmt.Sprintf("Invalid URL (%s %s).", r.Method, r.URL.Path), Code: "not_found"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"message": fmt.Sprintf("Method %s is not allowed on %s.", r.Method, r.URL.Path),
			"type":    "invalid_request_error", "param": nil, "code": "method_not_allowed"}})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write(append(body, '\n'))
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				s.o.Logger.Warn("not ready", zap.Error(err))
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"status":"unavailable","reason":"store unreachable"}` + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	r.Handle("/metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{}))
	if o.Mount != nil {
		o.Mount(r)
	}
	s.handler = s.observe(r) // observe counts the handlers running (s.handlers)
	return s
}

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops accepting and lets
// in-flight requests finish within ShutdownTimeout. Requests still running then are cancelled,
// and Serve waits up to FinishGrace for their handlers to return, so what they record (the
// usage ledger) is recorded before the caller closes the recorder and the store. It returns an
// error when cancelled handlers did not return within FinishGrace.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(s.o.Logger.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return hctx },
		ConnState:         s.conns.connState,
		ConnContext:       connContext,
	}
	ln = &limitListener{Listener: ln, t: s.conns}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.o.Logger.Info("shutting down: draining in-flight requests", zap.Duration("timeout", s.o.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// The drain overran: cancel what is still running and let it account for itself.
		cancelHandlers()
		_ = srv.Close()
		finished := make(chan struct{})
		go func() { s.handlers.Wait(); close(finished) }()
		select {
		case <-finished:
			s.o.Logger.Warn("drain overran shutdown_timeout: the requests still running were cancelled and recorded")
			return nil
		case <-time.After(s.o.FinishGrace):
			s.o.Logger.Error("drain overran shutdown_timeout and cancelled requests did not finish in time; "+
				"their ledger rows come from the journal at the next start", zap.Duration("grace", s.o.FinishGrace))
			return fmt.Errorf("server: shutdown: cancelled requests still running after %s: %w", s.o.FinishGrace, err)
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// clientRequestIDRE is what a client's request id may look like: printable, no spaces, bounded.
var clientRequestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:/+=@-]{1,128}$`)

// newRequestID returns the gateway's id for a request: the time in milliseconds, then 96
// random bits, so ids never collide and a client cannot choose one. Ids made later sort after
// (a millisecond apart or more), so the ledger's primary-key index grows at its end instead of
// taking every insert on a random page (measured on SQLite: 40 % less time per row).
func newRequestID() string {
	var b [18]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16) // 48 bits: until year 10889
	_, _ = rand.Read(b[6:])
	var id [len("req_") + 2*len(b)]byte
	copy(id[:], "req_")
	hex.Encode(id[len("req_"):], b[:])
	return string(id[:])
}

// clientRequestID is the id the client sent (OpenAI's X-Client-Request-Id, else X-Request-Id),
// or "" when it sent none or one that is not a plain token.
func clientRequestID(r *http.Request) string {
	id := r.Header.Get("X-Client-Request-Id")
	if id == "" {
		id = r.Header.Get("X-Request-Id")
	}
	if id == "" || !clientRequestIDRE.MatchString(id) {
		return ""
	}
	return id
}

// statusWriter records the status and size of a response. When the request's body timed out
// before the handler answered, the handler's answer is replaced by a 408 (see limitBody).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	// body is the request body when it is read under a deadline.
	body *deadlineBody
	// replaced: the 408 was written, the handler's own answer is dropped.
	replaced bool
	// info holds the ids stamp sets on the response.
	info *frontdoor.Info
}

// stamp sets the request's ids on the response, before its first byte: set earlier, they would
// make the header map hold them (0.4 KB) through the whole wait on the upstream.
func (w *statusWriter) stamp() {
	if w.info == nil {
		return
	}
	h := w.ResponseWriter.Header()
	h["X-Request-Id"] = []string{w.info.RequestID}
	if w.info.ClientRequestID != "" {
		h["X-Client-Request-Id"] = []string{w.info.ClientRequestID}
	}
}

// starting is called before the response's first byte: it reports false when the 408 took
// the handler's place.
func (w *statusWriter) starting() bool {
	if w.body == nil {
		return true
	}
	if w.body.timedOut.Load() {
		w.writeBodyTimeout()
		return false
	}
	w.body.responding()
	return true
}

func (w *statusWriter) WriteHeader(s int) {
	if w.replaced {
		return
	}
	if w.status == 0 {
		w.stamp()
		if !w.starting() {
			return
		}
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.stamp()
		if !w.starting() {
			return len(b), nil
		}
		w.status = http.StatusOK
	}
	if w.replaced {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// request is what the gateway keeps of one request while it is served, in one allocation: its
// Info, its writer, and its context, which is the connection's request context answering also
// for the Info (frontdoor.InfoKey) and chi's routing context. chi and the front door then add no
// context layer of their own, nor a copy of the request each (0.7 KB a request in flight).
type request struct {
	context.Context
	info  frontdoor.Info
	sw    statusWriter
	route *chi.Context
	start time.Time
}

func (q *request) Value(k any) any {
	switch k {
	case chi.RouteCtxKey:
		return q.route
	case frontdoor.InfoKey:
		return &q.info
	}
	return q.Context.Value(k)
}

// observe assigns the request id, routes the request through chi, and writes the access log
// line and request metrics. Its frame stays small (begin and observed run out of line): it is on
// the stack of every request waiting on its upstream.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, r := s.begin(w, r)
		s.handlers.Add(1)
		defer s.handlers.Done()
		s.o.Metrics.InFlight.Inc()
		defer s.o.Metrics.InFlight.Dec()
		next.ServeHTTP(&q.sw, r)
		s.observed(r, q)
	})
}

// begin makes a request's state and its copy of r that carries it.
//
//go:noinline
func (s *Server) begin(w http.ResponseWriter, r *http.Request) (*request, *http.Request) {
	// The request id is always the gateway's own: it keys the ledger, so a client must not be
	// able to choose it (and merge or drop events). The client's id is a label, echoed back and
	// logged. Both are set on the response when it starts (statusWriter.stamp).
	q := &request{Context: r.Context(), start: time.Now(), sw: statusWriter{ResponseWriter: w},
		info:  frontdoor.Info{RequestID: newRequestID(), ClientRequestID: clientRequestID(r)},
		route: s.routing.Get().(*chi.Context)}
	q.sw.info = &q.info
	q.route.Reset()
	q.route.Routes = s.router
	return q, r.WithContext(q)
}

// observed counts and logs a finished request and recycles its routing context. It is observe's
// second half, out of line: a request's goroutine waits on its upstream with observe's frame on
// its stack, and the access log's fields would make that frame 1.2 KB of the 8 KB a goroutine's
// stack starts with (past it, the stack doubles to 16 KB for every request in flight).
//
//go:noinline
func (s *Server) observed(r *http.Request, q *request) {
	if q.sw.status == 0 {
		q.sw.WriteHeader(http.StatusOK) // what net/http would send, with the request id
	}
	d := time.Since(q.start)
	defer s.routing.Put(q.route)
	sw, info := &q.sw, &q.info
	route := s.routePattern(q.route)
	if route == "" {
		route = "unmatched"
	}
	series := s.requestSeries(route, methodLabel(r.Method), sw.status)
	series.requests.Inc()
	series.duration.Observe(d.Seconds())
	if route == "/healthz" || route == "/readyz" || route == "/metrics" {
		return
	}
	in := info.Snapshot()
	fp := accessFields.Get().(*[]zap.Field)
	fields := (*fp)[:0]
	fields = append(fields,
		zap.String("request_id", in.RequestID), zap.String("method", logMethod(r.Method)), zap.String("route", route),
		zap.Int("status", sw.status), zap.Float64("latency_ms", float64(d.Microseconds())/1000),
		zap.Int64("bytes", sw.bytes), zap.String("remote", remoteIP(r)),
	)
	if in.ClientRequestID != "" {
		fields = append(fields, zap.String("client_request_id", in.ClientRequestID))
	}
	for _, f := range []struct{ k, v string }{{"model", in.Model}, {"provider", in.Provider}, {"channel", in.Channel}, {"key_id", in.KeyID}, {"error_kind", in.ErrorKind}} {
		if f.v != "" {
			fields = append(fields, zap.String(f.k, f.v))
		}
	}
	if in.Images > 0 {
		fields = append(fields, zap.Int("images", in.Images))
	}
	s.access.Info("request", fields...)
	clear(fields) // let the strings go
	*fp = fields
	accessFields.Put(fp)
}

// accessFields recycles the access log's field slices (0.9 KB each): zap encodes the fields
// before Info returns and keeps none of them.
var accessFields = sync.Pool{New: func() any { s := make([]zap.Field, 0, 14); return &s }}

// routeParts is chi's pattern parts of a matched route (Context.RoutePatterns: one per
// router it went through), as a map key.
type routeParts [4]string

// routePattern is rctx.RoutePattern(), which joins the parts and rewrites the joined string on
// every call, cached by the parts (patterns the router was built with: a bounded set).
func (s *Server) routePattern(rctx *chi.Context) string {
	if rctx == nil || len(rctx.RoutePatterns) > len(routeParts{}) {
		return rctx.RoutePattern()
	}
	var k routeParts
	copy(k[:], rctx.RoutePatterns)
	if v, ok := s.routes.Load(k); ok {
		return v.(string)
	}
	p := rctx.RoutePattern()
	s.routes.Store(k, p)
	return p
}

// seriesKey names one child of the request metrics.
type seriesKey struct {
	route, method string
	status        int
}

// seriesOf is the request metrics' children of one route, method and status.
type seriesOf struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// requestSeries returns the request metrics' children for a route, method and status, looked
// up in the vectors once and cached: every label is from a closed set (route patterns, methods
// by methodLabel, status codes), so the cache stays as small as the series themselves.
func (s *Server) requestSeries(route, method string, status int) *seriesOf {
	k := seriesKey{route, method, status}
	if v, ok := s.series.Load(k); ok {
		return v.(*seriesOf)
	}
	v, _ := s.series.LoadOrStore(k, &seriesOf{
		requests: s.o.Metrics.Requests.WithLabelValues(route, method, strconv.Itoa(status)),
		duration: s.o.Metrics.RequestDuration.WithLabelValues(route),
	})
	return v.(*seriesOf)
}

// methodLabel is the method label of the request metrics: a closed set, so that free-form
// methods cannot create series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// logMethod is the method as logged: a client's free-form method is cut to a sane length.
func logMethod(m string) string {
	if len(m) > 32 {
		return m[:32] + "…"
	}
	return m
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// front is every request's way in after observe: a panic becomes a 500 (recoverPanic), HEAD is
// answered by GET routes (headAsGet), the body is read under deadlines (limitBody), the image
// API's requests in flight are bounded (enter) and bodies are capped (capBody). Steps of one
// middleware rather than five: each middleware is a frame and a HandlerFunc hop on the stack of
// every request in flight, 0.7 KB in all of the 8 KB a goroutine's stack starts with (see
// TestRequestFitsInAGoroutinesFirstStack in internal/app).
func (s *Server) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer s.recoverPanic(w, r)
		if r.Method == http.MethodHead {
			headAsGet(r)
		}
		b := s.limitBody(w, r)
		if limited(r) {
			if !s.enter(w, r) {
				s.endBody(w, r, b)
				return
			}
			defer s.leave()
		}
		if s.capBody(w, r) {
			next.ServeHTTP(w, r)
		}
		s.endBody(w, r, b)
	})
}

// headAsGet routes a HEAD request to the GET handler of its path when no route takes HEAD, as
// chi's middleware.GetHead does: net/http then sends the headers and Content-Length without the
// body (hosted images, health, …).
func headAsGet(r *http.Request) {
	rctx := chi.RouteContext(r.Context())
	routePath := rctx.RoutePath
	if routePath == "" {
		routePath = r.URL.Path
		if r.URL.RawPath != "" {
			routePath = r.URL.RawPath
		}
	}
	if !rctx.Routes.Match(chi.NewRouteContext(), http.MethodHead, routePath) {
		rctx.RouteMethod, rctx.RoutePath = http.MethodGet, routePath
	}
}

// recoverPanic, deferred, turns a panic into a 500 in the OpenAI envelope and logs it with its
// stack.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.o.Logger.Error("panic serving request", zap.Any("panic", v), zap.Stack("stack"),
		zap.String("request_id", frontdoor.InfoFrom(r.Context()).RequestID))
	frontdoor.WriteError(w, &providers.Error{Kind: providers.KindInternal, Message: "The server had an error while processing your request."})
}

// capBody bounds the request body; reading past the cap fails with a 413 from the decoder. A
// body whose declared length is over the cap is refused at once (false).
func (s *Server) capBody(w http.ResponseWriter, r *http.Request) bool {
	if s.o.MaxBodyBytes <= 0 {
		return true
	}
	if r.ContentLength > s.o.MaxBodyBytes {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindTooLarge,
			Message: fmt.Sprintf("The request body exceeds the limit of %d bytes.", s.o.MaxBodyBytes)})
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
	return true
}
