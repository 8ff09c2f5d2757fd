package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegw/imagegw/internal/benchcpu"
	"github.com/imagegw/imagegw/internal/money"
)

// The scenarios, in table order.
var scenarioOrder = []string{"max", "rate", "inflight", "large"}

// result is one scenario's measurement of one setup in one run.
type result struct {
	OK, Failed int           // counted responses (in the window for closed-loop scenarios)
	Offered    int           // open loop: requests sent
	Elapsed    time.Duration // the window, or for the open loop until the last answer
	P50, P99   time.Duration // latency of the OK responses
	FirstError string
	HeapBase   uint64 // inflight: heap in use before (after a GC)
	HeapPeak   uint64 // inflight: peak heap in use during
	RSSPeak    uint64 // inflight: peak RSS during, when /proc allows (0 otherwise)
	// CPU is the process's CPU time (user and system: load generator and fake upstream included)
	// over a closed-loop window, 0 where unknown. Per request it is a steadier measure than req/s
	// on shared cores: a neighbour's load takes our time slices, not our CPU time.
	CPU time.Duration
}

// CPUPerRequest is the process's CPU time per OK response in the window, 0 where unknown.
func (r result) CPUPerRequest() time.Duration {
	if r.OK == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.OK)
}

// RPS is OK responses per second.
func (r result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// costs adds up what the load generator saw of a target's X-Imagegw-Cost headers.
type costs struct {
	sum       atomic.Int64 // money.Amount
	withCost  atomic.Int64 // responses that carried the header
	responses atomic.Int64 // responses received (any status)
	lost      atomic.Int64 // requests without a response (transport error, client timeout)
}

// client sends the load. One per target, shared by its workers.
type client struct {
	hc     *http.Client
	tr     *http.Transport
	t      *target
	header http.Header // read-only, shared by all requests
	costs  *costs
}

func newClient(t *target, maxConns int, timeout time.Duration, c *costs) *client {
	tr := newTransport(maxConns)
	return &client{hc: &http.Client{Transport: tr, Timeout: timeout}, tr: tr, t: t, costs: c,
		header: http.Header{"Authorization": {"Bearer " + t.key}, "Content-Type": {"application/json"}}}
}

// do sends one request and reads the whole answer.
func (c *client) do(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.t.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = c.header
	resp, err := c.hc.Do(req)
	if err != nil {
		c.costs.lost.Add(1)
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.costs.responses.Add(1)
	if v := resp.Header.Get("X-Imagegw-Cost"); v != "" {
		if a, perr := money.Parse(v); perr == nil {
			c.costs.sum.Add(int64(a))
			c.costs.withCost.Add(1)
		}
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.StatusCode, err
}

// tally is one worker's counts, merged at the end (no shared counters on the hot path).
type tally struct {
	ok, failed int
	lat        []time.Duration
	firstErr   string
}

func (t *tally) add(d time.Duration, err error) {
	if err != nil {
		t.failed++
		if t.firstErr == "" {
			t.firstErr = err.Error()
		}
		return
	}
	t.ok++
	t.lat = append(t.lat, d)
}

func merge(ts []*tally) result {
	var r result
	var lat []time.Duration
	for _, t := range ts {
		r.OK += t.ok
		r.Failed += t.failed
		lat = append(lat, t.lat...)
		if r.FirstError == "" {
			r.FirstError = t.firstErr
		}
	}
	r.P50, r.P99 = percentile(lat, 50), percentile(lat, 99)
	return r
}

// percentile returns the p-th percentile (nearest rank); it sorts lat.
func percentile(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := (len(lat)*p + 99) / 100
	return lat[max(i-1, 0)]
}

// closedLoop runs workers that each send a request as soon as their last one was answered,
// for warmup then window, and counts what is answered inside the window. With stagger, the
// workers start spread over that time (so that requests with a long upstream delay do not
// finish in waves). A worker whose request failed waits failPause before its next one: a
// client that retries at once turns fast refusals (503) into a busy loop that eats the cores.
func closedLoop(ctx context.Context, c *client, body []byte, workers int, warmup, window, stagger, failPause time.Duration) result {
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+window)
	ts := make([]*tally, workers)
	var wg sync.WaitGroup
	var cpu time.Duration
	wg.Add(1)
	go func() { // the CPU used inside the window
		defer wg.Done()
		if !sleepCtx(ctx, time.Until(from)) {
			return
		}
		c0 := benchcpu.Now()
		if sleepCtx(ctx, time.Until(until)) {
			_, cpu = benchcpu.Since(c0)
		}
	}()
	for i := range ts {
		ts[i] = &tally{}
		wg.Add(1)
		go func(t *tally, delay time.Duration) {
			defer wg.Done()
			if delay > 0 {
				time.Sleep(delay)
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				_, err := c.do(ctx, body)
				t1 := time.Now()
				if t1.After(from) && !t1.After(until) {
					t.add(t1.Sub(t0), err)
				}
				if err != nil && failPause > 0 {
					time.Sleep(failPause)
				}
			}
		}(ts[i], time.Duration(int64(stagger)*int64(i)/int64(workers)))
	}
	wg.Wait()
	r := merge(ts)
	r.Elapsed, r.CPU = window, cpu
	return r
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// openLoop offers rate requests per second for d, whether or not earlier ones were answered,
// and measures each latency from the moment its request was due (so a stall is not hidden
// by the load generator waiting on it). Served req/s is OK answers over the time until the
// last answer (at least d).
func openLoop(ctx context.Context, c *client, body []byte, rate int, d time.Duration) result {
	n := int(int64(rate) * int64(d) / int64(time.Second))
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var last atomic.Int64
	start := time.Now().Add(10 * time.Millisecond)
	var wg sync.WaitGroup
	sent := 0
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sent++
		due := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.do(ctx, body)
			now := time.Now()
			lat[i], errs[i] = now.Sub(due), err
			for {
				old := last.Load()
				if now.UnixNano() <= old || last.CompareAndSwap(old, now.UnixNano()) {
					break
				}
			}
		}(i)
	}
	wg.Wait()
	t := &tally{lat: make([]time.Duration, 0, sent)}
	for i := range lat[:sent] {
		t.add(lat[i], errs[i])
	}
	r := merge([]*tally{t})
	r.Offered = sent
	r.Elapsed = max(d, time.Unix(0, last.Load()).Sub(start))
	return r
}

// memSampler records the peak heap in use (and RSS) while a scenario runs.
type memSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
	// goroutines and stacks are the peak goroutine count and stack memory in use of the process.
	goroutines int
	stacks     uint64
	// foreign is the most the process's RSS held beyond the memory the Go runtime has mapped and
	// not released: memory allocated outside Go (SQLite's page caches through modernc's libc,
	// io_uring's rings), where it was there at all.
	foreign, foreignBase uint64
}

// foreignRSS is the process's resident anonymous memory beyond what the Go runtime holds (all
// its memory classes but the released heap), or 0 when /proc cannot say. The executable's own
// pages are file-backed and not counted.
func foreignRSS() uint64 {
	rss := procStatus("RssAnon:")
	if rss == 0 {
		return 0
	}
	m := readMetrics("/memory/classes/total:bytes", "/memory/classes/heap/released:bytes")
	held := m[0].Value.Uint64() - m[1].Value.Uint64()
	if rss <= held {
		return 0
	}
	return rss - held
}

func startMemSampler() (*memSampler, uint64) {
	// A GC that also returns freed memory to the OS: otherwise pages an earlier setup left mapped
	// count in this one's peak RSS, and a setup measured later in a run looks bigger.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	resetPeakRSS()
	s := &memSampler{stop: make(chan struct{}), done: make(chan struct{}), peak: ms.HeapInuse}
	s.foreignBase = foreignRSS()
	go func() {
		defer close(s.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				s.peak = max(s.peak, ms.HeapInuse)
				s.stacks = max(s.stacks, ms.StackInuse)
				s.goroutines = max(s.goroutines, runtime.NumGoroutine())
				s.foreign = max(s.foreign, foreignRSS())
			}
		}
	}()
	return s, ms.HeapInuse
}

func (s *memSampler) Stop() (heapPeak, rssPeak uint64) {
	close(s.stop)
	<-s.done
	return s.peak, peakRSS()
}

// resetPeakRSS resets the kernel's peak RSS of this process (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM from /proc/self/status, or 0.
func peakRSS() uint64 { return procStatus("VmHWM:") }

// procStatus reads a size field (kB) of /proc/self/status in bytes, or 0.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heapProfileAt writes a heap profile, after a GC, to path once after has passed; the returned
// func cancels it if it has not run yet.
func heapProfileAt(after time.Duration, path string, progress func(string)) (stop func()) {
	t := time.AfterFunc(after, func() {
		runtime.GC()
		f, err := os.Create(path)
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			progress("heap profile: " + err.Error())
			return
		}
		progress("heap profile written to " + path)
	})
	return func() { t.Stop() }
}
