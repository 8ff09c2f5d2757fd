package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/metrics"
)

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if pb.Gauge != nil {
		return pb.Gauge.GetValue()
	}
	return pb.Counter.GetValue()
}

// blockingAPI mounts image routes whose handler blocks until release is closed, a models route
// and a hosted-image route that answer at once.
type blockingAPI struct {
	entered chan struct{}
	release chan struct{}
}

func newBlockingAPI() *blockingAPI {
	return &blockingAPI{entered: make(chan struct{}, 1000), release: make(chan struct{})}
}

func (b *blockingAPI) mount(r chi.Router) {
	r.Post("/v1/images/generations", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.entered <- struct{}{}
		<-b.release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"created":1,"data":[]}`))
	})
	r.Post("/v1/images/edits", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.Get("/v1/images/files/{name}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("png")) })
	r.Get("/v1/models", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"data":[]}`)) })
}

func post(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Post(url+"/v1/images/generations", "application/json", strings.NewReader(`{"model":"m","prompt":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// postCode is post for goroutines other than the test's: 0 when the request failed.
func postCode(url string) int {
	resp, err := http.Post(url+"/v1/images/generations", "application/json", strings.NewReader(`{}`))
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func status(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// hold starts n requests that block in the handler and waits until all are in it. The returned
// function releases them and checks they succeeded.
func hold(t *testing.T, api *blockingAPI, url string, n int) (finish func()) {
	t.Helper()
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(url+"/v1/images/generations", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range n {
		<-api.entered
	}
	return func() {
		close(api.release)
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != http.StatusOK {
				t.Errorf("held request: status %d", c)
			}
		}
	}
}

func TestOverloadShedsBeyondMaxInFlight(t *testing.T) {
	const limit = 4
	m := metrics.New()
	api := newBlockingAPI()
	srv := httptest.NewServer(New(Options{Metrics: m, MaxInFlight: limit, Mount: api.mount}).Handler())
	defer srv.Close()

	finish := hold(t, api, srv.URL, limit)
	if got := value(m.APIInFlight); got != limit {
		t.Fatalf("in-flight gauge = %v, want %d", got, limit)
	}

	// One more: a fast 503 in the OpenAI envelope, which the SDKs retry.
	resp := post(t, srv.URL)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
	}
	// About a second, jittered: the wait is in [500 ms, 1500 ms) and retry-after-ms is it rounded
	// up to the millisecond, so 1500 is possible (1499.6 ms). Retry-After is retry-after-ms
	// rounded up to whole seconds (httpx.SetRetryAfter): no clock is read, both come from one value.
	ms, err := strconv.Atoi(resp.Header.Get("retry-after-ms"))
	if err != nil || ms < 500 || ms > 1500 {
		t.Errorf("retry-after-ms = %q, want 500..1500", resp.Header.Get("retry-after-ms"))
	}
	if ra := resp.Header.Get("Retry-After"); ra != strconv.Itoa((ms+999)/1000) {
		t.Errorf("Retry-After = %q with retry-after-ms %d", ra, ms)
	}
	if v := resp.Header.Get("x-should-retry"); v != "true" {
		t.Errorf("x-should-retry = %q, want true", v)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	var env struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if env.Error.Type != "server_error" || env.Error.Code == nil || *env.Error.Code != "overloaded" || env.Error.Param != nil || env.Error.Message == "" {
		t.Errorf("envelope = %s", body)
	}

	// Probes, metrics, hosted images and the models list still answer while saturated.
	for _, c := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/v1/images/files/0123.png"}, {"GET", "/v1/models"},
	} {
		if code := status(t, c.method, srv.URL+c.path); code != http.StatusOK {
			t.Errorf("%s %s while saturated: %d", c.method, c.path, code)
		}
	}
	// Any image route counts, not only the one that is busy.
	if code := status(t, "POST", srv.URL+"/v1/images/edits"); code != http.StatusServiceUnavailable {
		t.Errorf("POST /v1/images/edits while saturated: %d, want 503", code)
	}

	if got := value(m.APIShed); got != 2 {
		t.Errorf("shed counter = %v, want 2", got)
	}
	if got := value(m.APIInFlightLimit); got != limit {
		t.Errorf("limit gauge = %v, want %d", got, limit)
	}
	// The shed request is counted under its route, not as unmatched.
	if got := value(m.Requests.WithLabelValues("/v1/images/generations", "POST", "503")); got != 1 {
		t.Errorf(`imagegw_http_requests_total{route="/v1/images/generations",status="503"} = %v, want 1`, got)
	}

	finish()
	if got := value(m.APIInFlight); got != 0 {
		t.Fatalf("in-flight gauge after the drain = %v, want 0", got)
	}
	// Slots are free again.
	resp = post(t, srv.URL)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the drain: status %d", resp.StatusCode)
	}
}

func TestOverloadPanicFreesSlot(t *testing.T) {
	api := newBlockingAPI()
	srv := httptest.NewServer(New(Options{MaxInFlight: 1, QueueWait: -1, Mount: api.mount}).Handler())
	defer srv.Close()
	for range 3 {
		if code := status(t, "POST", srv.URL+"/v1/images/edits"); code != http.StatusInternalServerError {
			t.Fatalf("panicking handler: %d, want 500 (a leaked slot would give 503)", code)
		}
	}
}

func TestOverloadQueueWait(t *testing.T) {
	api := newBlockingAPI()
	// A wait far longer than the test: the waiter must get the slot when it frees, not time out.
	s := New(Options{MaxInFlight: 1, QueueWait: 1 << 40, Mount: api.mount})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	first, second := make(chan int, 1), make(chan int, 1)
	go func() { first <- postCode(srv.URL) }()
	<-api.entered
	go func() { second <- postCode(srv.URL) }()
	for s.lim.waiting.Load() != 1 {
		select {
		case c := <-second:
			t.Fatalf("second request answered %d instead of waiting", c)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	// The queue is bounded too (one waiter for a bound of 1): a third is shed at once.
	resp := post(t, srv.URL)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third request with the queue full: %d, want 503", resp.StatusCode)
	}
	close(api.release)
	if c := <-first; c != http.StatusOK {
		t.Fatalf("first: %d", c)
	}
	if c := <-second; c != http.StatusOK {
		t.Fatalf("second (queued): %d", c)
	}
}

func TestOverloadUnlimitedAndDefault(t *testing.T) {
	if got := New(Options{}).lim.limit(); got != DefaultMaxInFlight {
		t.Fatalf("default limit = %d, want %d", got, DefaultMaxInFlight)
	}
	m := metrics.New()
	api := newBlockingAPI()
	s := New(Options{Metrics: m, MaxInFlight: -1, Mount: api.mount})
	if s.lim.limit() != 0 || value(m.APIInFlightLimit) != 0 {
		t.Fatalf("negative MaxInFlight: limit %d, gauge %v; want unlimited (0)", s.lim.limit(), value(m.APIInFlightLimit))
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	finish := hold(t, api, srv.URL, 50)
	if got := value(m.APIInFlight); got != 50 {
		t.Errorf("in-flight gauge = %v, want 50 (counted even when unlimited)", got)
	}
	finish()
}

// BenchmarkShed is the cost of refusing one request when the replica is saturated.
func BenchmarkShed(b *testing.B) {
	s := New(Options{MaxInFlight: 1, QueueWait: -1, Mount: newBlockingAPI().mount})
	s.lim.sem <- struct{}{} // the one slot is taken
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/images/generations", nil))
		if rec.Code != http.StatusServiceUnavailable {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// TestRequestIDsAreUniqueAndSortByTime: ids made a millisecond apart sort in that order, and
// many made at once never repeat.
func TestRequestIDsAreUniqueAndSortByTime(t *testing.T) {
	first := newRequestID()
	time.Sleep(2 * time.Millisecond)
	if second := newRequestID(); second <= first {
		t.Errorf("an id made later, %s, does not sort after %s", second, first)
	}
	seen := map[string]bool{}
	for range 100_000 {
		id := newRequestID()
		if seen[id] {
			t.Fatalf("id %s made twice", id)
		}
		seen[id] = true
	}
	if len(first) != len("req_")+36 {
		t.Errorf("id %s: want req_ and 36 hex digits", first)
	}
}

// TestEveryResponseCarriesItsRequestID: the ids are set when a response starts, whichever way
// it starts (a body, a bare status, nothing at all, a route chi answers itself), and the id is
// the one the handler saw in its Info, under a routing context chi did not have to add.
func TestEveryResponseCarriesItsRequestID(t *testing.T) {
	seen := make(chan string, 1)
	mount := func(r chi.Router) {
		r.Post("/body", func(w http.ResponseWriter, r *http.Request) {
			seen <- frontdoor.InfoFrom(r.Context()).RequestID
			_, _ = w.Write([]byte("hello"))
		})
		r.Post("/status", func(w http.ResponseWriter, r *http.Request) {
			seen <- frontdoor.InfoFrom(r.Context()).RequestID
			w.WriteHeader(http.StatusNoContent)
		})
		r.Post("/nothing", func(w http.ResponseWriter, r *http.Request) {
			seen <- frontdoor.InfoFrom(r.Context()).RequestID
		})
		r.Get("/param/{name}", func(w http.ResponseWriter, r *http.Request) {
			seen <- frontdoor.InfoFrom(r.Context()).RequestID
			_, _ = w.Write([]byte(chi.URLParam(r, "name") + " " + chi.RouteContext(r.Context()).RoutePattern()))
		})
	}
	srv := httptest.NewServer(New(Options{Mount: mount}).Handler())
	defer srv.Close()
	for _, c := range []struct {
		method, path, body string
		status             int
		handled            bool
	}{
		{"POST", "/body", "hello", http.StatusOK, true},
		{"POST", "/status", "", http.StatusNoContent, true},
		{"POST", "/nothing", "", http.StatusOK, true},
		{"GET", "/param/fox", "fox /param/{name}", http.StatusOK, true},
		{"GET", "/healthz", `{"status":"ok"}` + "\n", http.StatusOK, false},
		{"GET", "/nowhere", "", http.StatusNotFound, false},
		{"GET", "/body", "", http.StatusMethodNotAllowed, false},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		req.Header.Set("X-Client-Request-Id", "client-7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != c.status || (c.body != "" && string(body) != c.body) {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, resp.StatusCode, body, c.status, c.body)
		}
		if !strings.HasPrefix(id, "req_") || resp.Header.Get("X-Client-Request-Id") != "client-7" {
			t.Errorf("%s %s: X-Request-Id %q, X-Client-Request-Id %q", c.method, c.path, id, resp.Header.Get("X-Client-Request-Id"))
		}
		if c.handled {
			if got := <-seen; got != id {
				t.Errorf("%s %s: the handler saw id %q, the response says %q", c.method, c.path, got, id)
			}
		}
	}
}
