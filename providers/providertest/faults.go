package providertest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Fault is one scripted misbehaviour of a fake upstream.
type Fault struct {
	// Status answers with this status and Body instead of calling the fake (0: call the fake).
	Status      int
	Body        string
	ContentType string
	Header      http.Header
	// Delay waits before answering; a client that goes away ends the wait.
	Delay time.Duration
	// HTML answers Status (502 when zero) with an HTML error page, like a load balancer.
	HTML bool
	// Malformed answers 200 with a JSON content type and a body that is not JSON.
	Malformed bool
	// Truncate lets the fake answer, then sends only half of its body and drops the connection.
	Truncate bool
	// Reset drops the connection without answering.
	Reset bool
	// Drip lets the fake answer, sending the body one byte per Drip.
	Drip time.Duration
	// Huge answers 200 with a JSON-looking body of this many bytes.
	Huge int64
	// Times is how many requests suffer this fault (0 means 1).
	Times int
}

// Script is a queue of faults that a fake's requests suffer in order.
type Script struct {
	mu     sync.Mutex
	queue  []Fault
	served int
}

// Push appends faults to the queue.
func (s *Script) Push(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, f...)
}

// Clear drops every queued fault.
func (s *Script) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = nil
}

// Requests reports how many requests passed through the script.
func (s *Script) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

func (s *Script) next() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served++
	if len(s.queue) == 0 {
		return Fault{}, false
	}
	f := s.queue[0]
	if f.Times > 1 {
		s.queue[0].Times--
	} else {
		s.queue = s.queue[1:]
	}
	return f, true
}

// Wrap returns next with the script's faults applied in front of it. A nil Script wraps nothing.
func (s *Script) Wrap(next http.Handler) http.Handler {
	if s == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.next()
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if f.Delay > 0 {
			// Read the body first: only then does the server watch the connection and cancel the
			// request's context when the client goes away, ending the wait early.
			if body, err := io.ReadAll(r.Body); err == nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		for k, vs := range f.Header {
			w.Header()[k] = vs
		}
		switch {
		case f.Reset:
			resetConn(w)
		case f.HTML:
			st := f.Status
			if st == 0 {
				st = http.StatusBadGateway
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(st)
			_, _ = w.Write([]byte("<html><head><title>" + strconv.Itoa(st) + " Bad Gateway</title></head><body><center><h1>" +
				strconv.Itoa(st) + " Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"))
		case f.Malformed:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"images":[{"url":"https://x/y.png"`))
		case f.Huge > 0:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.FormatInt(f.Huge, 10))
			chunk := bytes.Repeat([]byte("a"), 32<<10)
			_, _ = w.Write([]byte(`{"x":"`))
			for n := int64(6); n < f.Huge; n += int64(len(chunk)) {
				if _, err := w.Write(chunk[:min(int64(len(chunk)), f.Huge-n)]); err != nil {
					return
				}
			}
		case f.Status != 0:
			ct := f.ContentType
			if ct == "" {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(f.Body))
		case f.Truncate || f.Drip > 0:
			rec := &recorder{header: http.Header{}, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			for k, vs := range rec.header {
				w.Header()[k] = vs
			}
			body := rec.body.Bytes()
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.status)
			if f.Truncate {
				_, _ = w.Write(body[:len(body)/2])
				if fl, ok := w.(http.Flusher); ok {
					fl.Flush()
				}
				resetConn(w)
				return
			}
			for i := range body {
				if _, err := w.Write(body[i : i+1]); err != nil {
					return
				}
				if fl, ok := w.(http.Flusher); ok {
					fl.Flush()
				}
				select {
				case <-time.After(f.Drip):
				case <-r.Context().Done():
					return
				}
			}
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// resetConn closes the client's connection abruptly (RST where the platform allows).
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *recorder) Write(b []byte) (int, error) { r.wrote = true; return r.body.Write(b) }
