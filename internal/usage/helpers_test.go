package usage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/sqlite"
)

var base = time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)

// event returns a distinct, fully populated event.
func event(i int) store.UsageEvent {
	return store.UsageEvent{
		RequestID: fmt.Sprintf("req_%06d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
		KeyID: fmt.Sprintf("key_%d", i%3), Model: fmt.Sprintf("model-%d", i%2), Provider: "sandbox", Channel: "sandbox",
		Operation: "generate", NRequested: 2, NDelivered: 1 + i%2, Width: 1024, Height: 512, Steps: 4,
		Cost: money.Amount(6400 * (1 + i%2)), Currency: "CNY", Status: store.StatusOK, LatencyMS: int64(i), UpstreamMS: int64(i / 2),
	}
}

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// ledgerIDs returns the request ids in the ledger and fails on a duplicate.
func ledgerIDs(t *testing.T, st store.Store) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evs, err := st.ListUsage(ctx, store.UsageFilter{}, 0)
	if err != nil {
		t.Fatalf("ListUsage: %v", err)
	}
	ids := make(map[string]bool, len(evs))
	for _, e := range evs {
		if ids[e.RequestID] {
			t.Fatalf("request %s is in the ledger twice", e.RequestID)
		}
		ids[e.RequestID] = true
	}
	return ids
}

// wantExactly checks that the ledger holds events 0..n-1, each once, and nothing else.
func wantExactly(t *testing.T, st store.Store, n int) {
	t.Helper()
	ids := ledgerIDs(t, st)
	missing := 0
	for i := range n {
		if !ids[event(i).RequestID] {
			missing++
		}
	}
	if missing > 0 || len(ids) != n {
		t.Fatalf("ledger has %d events, %d of the %d recorded missing", len(ids), missing, n)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errDown = errors.New("fake: store unreachable")

// flaky wraps a Writer: it can be switched down, record what reached the store, block until a
// gate opens, or commit and then report failure (the ambiguous outcome of a dropped connection).
type flaky struct {
	w Writer

	mu            sync.Mutex
	down          bool
	commitThenErr bool
	batches       []int
	order         []string
	gate          chan struct{} // when set, inserts wait for it to close (or for ctx)
}

func (f *flaky) InsertUsage(ctx context.Context, events []store.UsageEvent) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	down, cte := f.down, f.commitThenErr
	f.mu.Unlock()
	if down {
		return errDown
	}
	if err := f.w.InsertUsage(ctx, events); err != nil {
		return err
	}
	f.mu.Lock()
	f.batches = append(f.batches, len(events))
	for _, e := range events {
		f.order = append(f.order, e.RequestID)
	}
	f.mu.Unlock()
	if cte {
		return errors.New("fake: connection reset after commit")
	}
	return nil
}

func (f *flaky) setDown(v bool) { f.mu.Lock(); f.down = v; f.mu.Unlock() }

func (f *flaky) snapshot() (batches []int, order []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches...), append([]string(nil), f.order...)
}

// open starts a Recorder on dir with fast timings for tests.
func open(t *testing.T, w Writer, dir string, opts Options) *Recorder {
	t.Helper()
	opts.Dir = dir
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 10 * time.Millisecond
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 20 * time.Millisecond
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	r, err := Open(t.Context(), w, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// journalLines returns the lines in the journal's files, oldest file first.
func journalLines(t *testing.T, dir string) []line {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "journal-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, legacyOutbox)); err == nil {
		names = append([]string{filepath.Join(dir, legacyOutbox)}, names...)
	}
	var out []line
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		ls, _, bad, err := readLines(&segment{f: f, path: name}, 0, fi.Size(), 1<<30)
		_ = f.Close()
		if err != nil || len(bad) > 0 {
			t.Fatalf("journal %s: %v, %d bad lines", name, err, len(bad))
		}
		out = append(out, ls...)
	}
	return out
}

// crash stops r the way SIGKILL would: no flush, no final insert; what was written stays.
func crash(r *Recorder) {
	r.j.stopAppends()
	r.cancelBase()
	<-r.done
	_ = r.j.close()
	r.closeOnce.Do(func() {})
}

// proxy is a TCP proxy in front of a real server that can be cut (every connection closed and
// new ones refused) and restored: a network outage between the gateway and its database.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// Cut closes every proxied connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}
