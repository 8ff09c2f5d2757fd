package usage

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

// metricValue is the sum of a metric's series in reg (0 when absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
						continue metric
					}
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func TestBatching(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st}
	reg := prometheus.NewRegistry()
	r := open(t, f, t.TempDir(), Options{BatchSize: 10, FlushInterval: time.Hour, Registerer: reg})
	for i := range 25 {
		r.Record(event(i))
	}
	// Two full batches are written without waiting for the interval.
	waitFor(t, "two full batches", func() bool { b, _ := f.snapshot(); return len(b) == 2 })
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	batches, order := f.snapshot()
	if !slices.Equal(batches, []int{10, 10, 5}) {
		t.Errorf("batches %v, want [10 10 5]", batches)
	}
	for i, id := range order {
		if id != event(i).RequestID {
			t.Fatalf("event %d written as %s, out of order", i, id)
		}
	}
	wantExactly(t, st, 25)
	if got := metricValue(t, reg, "imagegw_usage_events_written_total"); got != 25 {
		t.Errorf("events written metric %v, want 25", got)
	}
	if got := metricValue(t, reg, "imagegw_usage_batch_duration_seconds", "result", "ok"); got != 3 {
		t.Errorf("batch latency samples %v, want 3", got)
	}
}

func TestFlushInterval(t *testing.T) {
	st := openSQLite(t)
	r := open(t, st, t.TempDir(), Options{BatchSize: 1000, FlushInterval: 20 * time.Millisecond})
	for i := range 3 {
		r.Record(event(i))
	}
	waitFor(t, "the interval flush", func() bool { return len(ledgerIDs(t, st)) == 3 })
	ev := event(99)
	ev.Time = time.Time{}
	r.Record(ev)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs, _ := st.ListUsage(t.Context(), store.UsageFilter{KeyID: ev.KeyID, Since: time.Now().Add(-time.Minute), Until: time.Now().Add(time.Minute)}, 0)
	if len(evs) != 1 || evs[0].RequestID != ev.RequestID {
		t.Errorf("an event without a time was not stamped now: %+v", evs)
	}
}

// TestOutboxReplayInOrder: while the store is down every batch goes to the outbox; once it is
// back the outbox is replayed oldest first, then emptied.
func TestOutboxReplayInOrder(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, down: true}
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	r := open(t, f, dir, Options{BatchSize: 7, Registerer: reg})
	const n = 50
	for i := range n {
		r.Record(event(i))
		if i%10 == 9 {
			if err := r.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := outboxLines(t, dir)
	if len(lines) != n {
		t.Fatalf("outbox has %d events, want %d", len(lines), n)
	}
	for i, id := range lines {
		if id != event(i).RequestID {
			t.Fatalf("outbox line %d is %s, want %s", i, id, event(i).RequestID)
		}
	}
	if s := r.Stats(); s.Outbox != n || !s.StoreDown {
		t.Errorf("stats %+v, want %d in the outbox and the store down", s, n)
	}
	if got := metricValue(t, reg, "imagegw_usage_outbox_events"); got != n {
		t.Errorf("outbox depth metric %v, want %d", got, n)
	}
	if got := metricValue(t, reg, "imagegw_usage_store_down"); got != 1 {
		t.Errorf("store down metric %v, want 1", got)
	}

	f.setDown(false)
	waitFor(t, "the replay", func() bool { return r.Stats().Outbox == 0 })
	_, order := f.snapshot()
	if len(order) != n {
		t.Fatalf("%d events replayed, want %d", len(order), n)
	}
	for i, id := range order {
		if id != event(i).RequestID {
			t.Fatalf("replayed event %d is %s, want %s: not in order", i, id, event(i).RequestID)
		}
	}
	wantExactly(t, st, n)
	if fi, err := os.Stat(filepath.Join(dir, OutboxFile)); err != nil || fi.Size() != 0 {
		t.Errorf("outbox not emptied after replay: %v, %v", fi, err)
	}
	if got := metricValue(t, reg, "imagegw_usage_store_down"); got != 0 {
		t.Errorf("store down metric %v after recovery, want 0", got)
	}
	// Events recorded after the recovery go straight to the store.
	r.Record(event(n))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, n+1)
	if lines := outboxLines(t, dir); len(lines) != 0 {
		t.Errorf("outbox has %d events after recovery", len(lines))
	}
}

// TestAmbiguousFailures: inserts that commit and then report failure (a connection dropped
// after COMMIT) send their batch to the outbox, whose replay the ledger skips: every event
// arrives exactly once.
func TestAmbiguousFailures(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, commitThenErr: true}
	r := open(t, f, t.TempDir(), Options{BatchSize: 5})
	for i := range 40 {
		r.Record(event(i))
		if i == 20 {
			f.mu.Lock()
			f.commitThenErr = false
			f.mu.Unlock()
		}
	}
	waitFor(t, "the replay", func() bool { _ = r.Flush(t.Context()); return r.Stats().Outbox == 0 && !r.Stats().StoreDown })
	wantExactly(t, st, 40)
}

// TestQueueFullSpills: with the writer stuck and the queue full, Record appends to the outbox
// instead of blocking or dropping.
func TestQueueFullSpills(t *testing.T) {
	st := openSQLite(t)
	gate := make(chan struct{})
	f := &flaky{w: st, gate: gate}
	reg := prometheus.NewRegistry()
	r := open(t, f, t.TempDir(), Options{QueueSize: 2, BatchSize: 1, Registerer: reg})
	const n = 50
	done := make(chan struct{})
	go func() {
		for i := range n {
			r.Record(event(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Record blocked while the writer was stuck")
	}
	if got := metricValue(t, reg, "imagegw_usage_outbox_appends_total", "reason", "queue_full"); got < n-4 {
		t.Errorf("%v events spilled to the outbox, want at least %d", got, n-4)
	}
	close(gate)
	waitFor(t, "everything in the store", func() bool { _ = r.Flush(t.Context()); return len(ledgerIDs(t, st)) == n })
	wantExactly(t, st, n)
}

// TestCloseFlushesToStore: Close writes every queued event before returning.
func TestCloseFlushesToStore(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, st, dir, Options{BatchSize: 1000, FlushInterval: time.Hour})
	for i := range 300 {
		r.Record(event(i))
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, 300)
	if lines := outboxLines(t, dir); len(lines) != 0 {
		t.Errorf("outbox has %d events", len(lines))
	}
	if err := r.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r.Record(event(1000)) // after Close: dropped and counted, no panic
	if err := r.Flush(t.Context()); err == nil {
		t.Error("Flush after Close did not fail")
	}
}

// TestCloseStoreDown: with the store down, Close leaves every event in the outbox, and the next
// Recorder (the next process) replays them.
func TestCloseStoreDown(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, down: true}
	dir := t.TempDir()
	r := open(t, f, dir, Options{BatchSize: 1000, FlushInterval: time.Hour})
	for i := range 200 {
		r.Record(event(i))
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if lines := outboxLines(t, dir); len(lines) != 200 {
		t.Fatalf("outbox has %d events after Close, want 200", len(lines))
	}
	wantExactly(t, st, 0)

	reg := prometheus.NewRegistry()
	r2 := open(t, st, dir, Options{Registerer: reg})
	if got := metricValue(t, reg, "imagegw_usage_outbox_events"); got != 200 && got != 0 {
		t.Errorf("outbox depth at start %v", got)
	}
	waitFor(t, "the startup replay", func() bool { return r2.Stats().Outbox == 0 })
	wantExactly(t, st, 200)
}

// TestCloseHungStore: an insert that never returns does not hold shutdown up past Close's
// context: the batch goes to the outbox.
func TestCloseHungStore(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, gate: make(chan struct{})} // never opens
	dir := t.TempDir()
	r := open(t, f, dir, Options{BatchSize: 10, WriteTimeout: time.Hour})
	for i := range 25 {
		r.Record(event(i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
	if lines := outboxLines(t, dir); len(lines) != 25 {
		t.Fatalf("outbox has %d events, want 25", len(lines))
	}
	r2 := open(t, st, dir, Options{})
	waitFor(t, "the replay", func() bool { return r2.Stats().Outbox == 0 })
	wantExactly(t, st, 25)
}

// TestTornOutbox: a crash mid-append leaves a partial last line; it and any other line that does
// not decode are skipped and reported, never fatal, and later appends are unharmed.
func TestTornOutbox(t *testing.T) {
	dir := t.TempDir()
	var buf strings.Builder
	for i := range 3 {
		b, _ := json.Marshal(toLine(event(i)))
		buf.Write(b)
		buf.WriteByte('\n')
		if i == 1 {
			buf.WriteString("{not json\n")
			buf.WriteString("{\"time\":\"2026-11-22T00:00:00Z\"}\n") // no request id
		}
	}
	b, _ := json.Marshal(toLine(event(3)))
	buf.Write(b[:len(b)/2]) // torn: no newline
	if err := os.WriteFile(filepath.Join(dir, OutboxFile), []byte(buf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	st := openSQLite(t)
	f := &flaky{w: st, down: true}
	reg := prometheus.NewRegistry()
	r := open(t, f, dir, Options{Registerer: reg})
	// While the store is down, two more events are appended after the torn line.
	r.Record(event(4))
	r.Record(event(5))
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	reg2 := prometheus.NewRegistry()
	r2 := open(t, st, dir, Options{Registerer: reg2})
	waitFor(t, "the replay", func() bool { return r2.Stats().Outbox == 0 })
	ids := ledgerIDs(t, st)
	for _, i := range []int{0, 1, 2, 4, 5} {
		if !ids[event(i).RequestID] {
			t.Errorf("event %d missing after replay", i)
		}
	}
	if len(ids) != 5 {
		t.Errorf("ledger has %d events, want 5", len(ids))
	}
	if got := metricValue(t, reg2, "imagegw_usage_outbox_corrupt_lines_total"); got != 3 {
		t.Errorf("corrupt lines %v, want 3 (bad JSON, no request id, torn line)", got)
	}
}

func TestOutboxLocked(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, st, dir, Options{})
	if _, err := Open(t.Context(), st, Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second recorder on one outbox: %v", err)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(t.Context(), st, Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopening after Close: %v", err)
	}
	_ = r2.Close(t.Context())
	if _, err := Open(t.Context(), st, Options{}); err == nil {
		t.Error("no outbox directory: no error")
	}
	if _, err := Open(t.Context(), nil, Options{Dir: dir}); err == nil {
		t.Error("no store: no error")
	}
}

// TestPostgresOutage runs a real outage: a Postgres store behind a TCP proxy that is cut in the
// middle of a concurrent load and restored later. Every event arrives exactly once. Then the
// proxy is cut again before shutdown: Close leaves the queue in the outbox, and a new Recorder
// replays it once Postgres is reachable.
func TestPostgresOutage(t *testing.T) {
	pgURL := storetest.PostgresURL(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, u.Host)
	u.Host = px.Addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st, err := postgres.Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	r := open(t, st, dir, Options{BatchSize: 50, FlushInterval: 5 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
		WriteTimeout: 3 * time.Second, Registerer: reg})
	const workers, perWorker = 4, 500
	const n = workers * perWorker
	var recorded sync.WaitGroup
	var mu sync.Mutex
	count := 0
	progress := func() int { mu.Lock(); defer mu.Unlock(); return count }
	for w := range workers {
		recorded.Add(1)
		go func() {
			defer recorded.Done()
			for i := range perWorker {
				r.Record(event(w*perWorker + i))
				mu.Lock()
				count++
				mu.Unlock()
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	waitFor(t, "a third of the load", func() bool { return progress() >= n/3 })
	px.Cut()
	waitFor(t, "the recorder to notice the outage", func() bool { return r.Stats().StoreDown })
	waitFor(t, "two thirds of the load", func() bool { return progress() >= 2*n/3 })
	if r.Stats().Outbox == 0 {
		t.Error("no events went to the outbox during the outage")
	}
	px.Restore()
	recorded.Wait()
	waitFor(t, "recovery", func() bool { _ = r.Flush(t.Context()); s := r.Stats(); return !s.StoreDown && s.Outbox == 0 })
	wantExactly(t, st, n)
	if got := metricValue(t, reg, "imagegw_usage_write_failures_total"); got == 0 {
		t.Error("no write failures counted during the outage")
	}

	// Shutdown during an outage.
	px.Cut()
	for i := n; i < n+300; i++ {
		r.Record(event(i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if lines := outboxLines(t, dir); len(lines) != 300 {
		t.Fatalf("outbox has %d events after Close during the outage, want 300", len(lines))
	}
	px.Restore()
	r2 := open(t, st, dir, Options{})
	waitFor(t, "the next process's replay", func() bool { return r2.Stats().Outbox == 0 && !r2.Stats().StoreDown })
	wantExactly(t, st, n+300)
}

// BenchmarkRecord measures Record's cost on the request path, one caller at a time (the writer
// drains into a store that accepts instantly).
func BenchmarkRecord(b *testing.B) {
	r, err := Open(context.Background(), nopWriter{}, Options{Dir: b.TempDir(), QueueSize: 1 << 16, BatchSize: 512})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	ev := event(1)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(ev)
	}
}

// BenchmarkRecordParallel records from every CPU at once, as fast as possible: an overload in
// which the queue sometimes fills and Record spills to the outbox (reported as spills/op).
func BenchmarkRecordParallel(b *testing.B) {
	reg := prometheus.NewRegistry()
	r, err := Open(context.Background(), nopWriter{}, Options{Dir: b.TempDir(), QueueSize: 1 << 16, BatchSize: 512, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	ev := event(1)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(ev)
		}
	})
	b.StopTimer()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "imagegw_usage_outbox_appends_total" {
			for _, m := range mf.GetMetric() {
				b.ReportMetric(m.GetCounter().GetValue()/float64(b.N), "spills/op")
			}
		}
	}
}

type nopWriter struct{}

func (nopWriter) InsertUsage(context.Context, []store.UsageEvent) error { return nil }
