package usage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/benchcpu"
	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/metrics/metricstest"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

func record(t *testing.T, r *Recorder, ev store.UsageEvent) {
	t.Helper()
	if err := r.Record(ev); err != nil {
		t.Fatalf("Record(%s): %v", ev.RequestID, err)
	}
}

// TestRecordIsDurableThenLands: when Record returns, the event is in the journal file; the
// writer then puts every event in the store once, in order, and empties the journal.
func TestRecordIsDurableThenLands(t *testing.T) {
	st := openSQLite(t)
	gate := make(chan struct{})
	f := &flaky{w: st, gate: gate}
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	r := open(t, f, dir, Options{BatchSize: 10, Registerer: reg})
	for i := range 25 {
		record(t, r, event(i))
	}
	if got := len(journalLines(t, dir)); got != 25 {
		t.Fatalf("journal has %d lines after 25 Records; want 25", got)
	}
	if got := metricstest.Sum(t, reg, "imagegw_usage_journal_fsync_seconds"); got == 0 {
		t.Error("no fsync observed")
	}
	close(gate)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	batches, order := f.snapshot()
	for _, b := range batches {
		if b > 10 {
			t.Errorf("a batch of %d events; BatchSize is 10", b)
		}
	}
	for i, id := range order {
		if id != event(i).RequestID {
			t.Fatalf("event %d written as %s, out of order", i, id)
		}
	}
	wantExactly(t, st, 25)
	if got := metricstest.Sum(t, reg, "imagegw_usage_events_written_total"); got != 25 {
		t.Errorf("events written metric %v, want 25", got)
	}
	waitFor(t, "the journal to be emptied", func() bool { return r.Stats().JournalBytes == 0 })
	if s := r.Stats(); s.Pending != 0 || s.Open != 0 {
		t.Errorf("stats after landing: %+v", s)
	}
}

// TestStoreOutage: while the store is down events wait in the journal (and are counted); once it
// is back they land exactly once.
func TestStoreOutage(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, down: true}
	reg := prometheus.NewRegistry()
	r := open(t, f, t.TempDir(), Options{BatchSize: 7, Registerer: reg})
	const n = 50
	for i := range n {
		record(t, r, event(i))
	}
	waitFor(t, "the outage to be noticed", func() bool { return r.Stats().StoreDown })
	if s := r.Stats(); s.Pending != n || s.JournalBytes == 0 {
		t.Errorf("stats during the outage %+v; want %d pending in the journal", s, n)
	}
	if got := metricstest.Sum(t, reg, "imagegw_usage_pending_events"); got != n {
		t.Errorf("pending metric %v, want %d", got, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	if err := r.Flush(ctx); err == nil {
		t.Error("Flush succeeded with the store down")
	}
	cancel()
	f.setDown(false)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, n)
	if got := metricstest.Sum(t, reg, "imagegw_usage_store_down"); got != 0 {
		t.Errorf("store down metric %v after recovery", got)
	}
}

// TestAmbiguousFailures: inserts that commit and then report failure (a connection dropped after
// COMMIT) are retried; the ledger skips what it has: every event arrives exactly once.
func TestAmbiguousFailures(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, commitThenErr: true}
	r := open(t, f, t.TempDir(), Options{BatchSize: 5})
	for i := range 40 {
		record(t, r, event(i))
		if i == 20 {
			f.mu.Lock()
			f.commitThenErr = false
			f.mu.Unlock()
		}
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, 40)
}

// TestCrashReplay: a process killed with events in its journal (the store down) and requests in
// flight: the next process writes every committed event once and an indeterminate row for each
// request that began and never finished.
func TestCrashReplay(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st, down: true}
	dir := t.TempDir()
	r := open(t, f, dir, Options{SegmentBytes: 2 << 10})
	var entries []*Entry
	for i := range 30 {
		e, err := r.Begin(event(i))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	for i, e := range entries {
		if i%3 == 0 {
			continue // still calling upstream when the process dies
		}
		if err := e.Commit(ptr(event(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 30; i < 40; i++ {
		record(t, r, event(i))
	}
	crash(r)
	if files, _ := filepath.Glob(filepath.Join(dir, "journal-*")); len(files) < 2 {
		t.Fatalf("%d journal files; the test means to cross a rotation", len(files))
	}

	r2 := open(t, st, dir, Options{})
	if err := r2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ids := ledgerIDs(t, st); len(ids) != 40 {
		for i := range 40 {
			if !ids[event(i).RequestID] {
				t.Errorf("missing %d", i)
			}
		}
	}
	wantExactly(t, st, 40)
	evs, err := st.ListUsage(t.Context(), store.UsageFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		var i int
		fmt.Sscanf(ev.RequestID, "req_%d", &i)
		interrupted := i < 30 && i%3 == 0
		if want := event(i); interrupted {
			if ev.Status != store.StatusIndeterminate || ev.ErrorKind != InterruptedKind || ev.Cost != 0 || ev.NDelivered != 0 {
				t.Errorf("interrupted request %s: %+v", ev.RequestID, ev)
			}
		} else if ev.Status != want.Status || ev.Cost != want.Cost {
			t.Errorf("event %s: %+v; want %+v", ev.RequestID, ev, want)
		}
	}
	waitFor(t, "the old journal files to be removed", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "journal-*"))
		return len(files) == 1
	})
}

// TestOpenRequestKeepsItsFile: a file whose requests are still in flight is kept after rotation
// until they end.
func TestOpenRequestKeepsItsFile(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, st, dir, Options{SegmentBytes: 1 << 10})
	e, err := r.Begin(event(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 40; i++ {
		record(t, r, event(i))
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, "journal-000001.jsonl")
	if _, err := os.Stat(first); err != nil {
		t.Fatalf("the file with an open request was removed: %v", err)
	}
	if s := r.Stats(); s.Open != 1 {
		t.Errorf("open requests %d; want 1", s.Open)
	}
	if err := e.Commit(ptr(event(0))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first file to go", func() bool { _, err := os.Stat(first); return errors.Is(err, os.ErrNotExist) })
	wantExactly(t, st, 40)
}

// TestTornLineAndLegacyOutbox: a torn last line is skipped and counted; the outbox file of an
// earlier version is replayed.
func TestTornLineAndLegacyOutbox(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, &flaky{w: st, down: true}, dir, Options{})
	for i := range 3 {
		record(t, r, event(i))
	}
	crash(r)
	seg := filepath.Join(dir, "journal-000001.jsonl")
	fh, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	end, _, err := dataEnd(fh) // the file is preallocated: lines end where its zeros start
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fh.WriteAt([]byte(`{"request_id":"req_torn","ti`), end)
	_ = fh.Close()
	legacy := `{"request_id":"req_000003","time":"2026-11-22T09:30:00.003Z","key_id":"key_0","model":"model-1","n_requested":2,"n_delivered":2,"cost":"0.0128","currency":"CNY","status":"ok"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, legacyOutbox), []byte(legacy), 0o640); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r2 := open(t, st, dir, Options{Registerer: reg})
	if err := r2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, 4)
	if got := metricstest.Sum(t, reg, "imagegw_usage_outbox_corrupt_lines_total"); got != 1 {
		t.Errorf("corrupt lines %v; want 1", got)
	}
}

func TestJournalLocked(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	open(t, st, dir, Options{})
	if _, err := Open(t.Context(), st, Options{Dir: dir}); err == nil {
		t.Fatal("a second Recorder opened a locked journal")
	}
}

// TestCloseStoreDown: Close during an outage loses nothing: the events stay in the journal for
// the next process, and Close reports success. An event after Close is refused and makes the
// next Close of a Recorder report it.
func TestCloseStoreDown(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, &flaky{w: st, down: true}, dir, Options{})
	for i := range 20 {
		record(t, r, event(i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close during an outage: %v", err)
	}
	if err := r.Record(event(99)); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("Record after Close: %v; want ErrNotDurable", err)
	}
	if got := len(journalLines(t, dir)); got != 20 {
		t.Fatalf("journal has %d lines after Close; want 20", got)
	}
	r2 := open(t, st, dir, Options{})
	if err := r2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, 20)

	r3 := open(t, st, t.TempDir(), Options{})
	_ = os.RemoveAll(r3.opts.Dir) // the disk goes away under the journal
	r3.j.mu.Lock()
	_ = r3.j.segs[len(r3.j.segs)-1].f.Close()
	r3.j.mu.Unlock()
	if err := r3.Record(event(100)); !errors.Is(err, ErrNotDurable) {
		t.Fatalf("Record with a broken journal: %v; want ErrNotDurable", err)
	}
	if err := r3.Close(t.Context()); err == nil {
		t.Error("Close did not report an event that could not be made durable")
	}
}

// TestPostgresOutage: the real Postgres behind a TCP fault proxy, cut and restored under load,
// and a shutdown during a cut: every event lands exactly once.
func TestPostgresOutage(t *testing.T) {
	pgURL := storetest.PostgresURL(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	px, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
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
	cut := func() {
		if err := px.SetMode(faultproxy.Refuse); err != nil {
			t.Fatal(err)
		}
		px.CutExisting()
	}
	restore := func() {
		if err := px.SetMode(faultproxy.Pass); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	r := open(t, st, dir, Options{BatchSize: 50, RetryInterval: 50 * time.Millisecond, WriteTimeout: 3 * time.Second, Registerer: reg})
	const workers, perWorker = 4, 500
	const n = workers * perWorker
	var recorded sync.WaitGroup
	var mu sync.Mutex
	count := 0
	progress := func() int { mu.Lock(); defer mu.Unlock(); return count }
	for w := range workers {
		recorded.Go(func() {
			for i := range perWorker {
				if err := r.Record(event(w*perWorker + i)); err != nil {
					t.Error(err)
				}
				mu.Lock()
				count++
				mu.Unlock()
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	waitFor(t, "a third of the load", func() bool { return progress() >= n/3 })
	cut()
	waitFor(t, "the recorder to notice the outage", func() bool { return r.Stats().StoreDown })
	waitFor(t, "two thirds of the load", func() bool { return progress() >= 2*n/3 })
	if r.Stats().Pending == 0 {
		t.Error("no events waited in the journal during the outage")
	}
	restore()
	recorded.Wait()
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, n)
	if got := metricstest.Sum(t, reg, "imagegw_usage_write_failures_total"); got == 0 {
		t.Error("no write failures counted during the outage")
	}

	// Shutdown during an outage: nothing lost, the next process lands it.
	cut()
	for i := n; i < n+300; i++ {
		record(t, r, event(i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range journalLines(t, dir) {
		ids[l.RequestID] = true
	}
	for i := n; i < n+300; i++ {
		if !ids[event(i).RequestID] {
			t.Fatalf("event %d is not in the journal after Close during the outage", i)
		}
	}
	restore()
	r2 := open(t, st, dir, Options{})
	if err := r2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantExactly(t, st, n+300)
}

// BenchmarkRecord measures a charge's cost on the request path, one caller at a time: a journal
// append and its fsync.
func BenchmarkRecord(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("nosync=%v", noSync), func(b *testing.B) {
			r, err := Open(context.Background(), nopWriter{}, Options{Dir: b.TempDir(), NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			ev := event(1)
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Record(ev)
			}
		})
	}
}

// BenchmarkRecordParallel records from 64 goroutines at once: concurrent charges share fsyncs
// and writes (group commit), reported as events per fsync, and cpu-µs/op, the process's CPU time
// per charge (the kernel's included: most of a charge's cost is its write and its share of an
// fsync).
//
//	go test -run '^$' -bench RecordParallel -count 6 ./internal/usage/
func BenchmarkRecordParallel(b *testing.B) {
	reg := prometheus.NewRegistry()
	r, err := Open(context.Background(), nopWriter{}, Options{Dir: b.TempDir(), Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	ev := event(1)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	start := benchcpu.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = r.Record(ev)
		}
	})
	b.StopTimer()
	if _, total := benchcpu.Since(start); total > 0 {
		b.ReportMetric(float64(total.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	}
	b.ReportMetric(float64(b.N)/float64(max(r.j.fsyncs.Load(), 1)), "events/fsync")
}

type nopWriter struct{}

func (nopWriter) InsertUsage(context.Context, []store.UsageEvent) error { return nil }

// TestWriterTakesLinesFromMemoryAndTheFileWhenMemoryIsFull: the writer reads back none of what
// a keeping-up process appends; while the store is down, lines past the memory bound are only
// in the files (across rotations), and once it is back every event lands exactly once, in
// order, with begun-and-aborted requests leaving no row.
func TestWriterTakesLinesFromMemoryAndTheFileWhenMemoryIsFull(t *testing.T) {
	st := openSQLite(t)
	f := &flaky{w: st}
	dir := t.TempDir()
	r := open(t, f, dir, Options{SegmentBytes: 2 << 10, BatchSize: 16})
	r.j.mu.Lock()
	r.j.memCap = 8 // before any append; the writer never reads it
	r.j.mu.Unlock()
	next := 0
	commit := func() { // a begun request that commits, then one that never reached upstream
		t.Helper()
		e, err := r.Begin(event(next))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Commit(ptr(event(next))); err != nil {
			t.Fatal(err)
		}
		next++
		e, err = r.Begin(store.UsageEvent{RequestID: "aborted", KeyID: "key_0", Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		e.Abort()
	}
	for range 10 {
		commit()
		if err := r.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.j.fileReads.Load(); n != 0 {
		t.Fatalf("the writer read its own lines back from the file %d times while keeping up", n)
	}

	f.setDown(true)
	for range 40 {
		commit()
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "journal-*")); len(files) < 2 {
		t.Fatalf("%d journal files; the test means to cross a rotation", len(files))
	}
	f.setDown(false)
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.j.fileReads.Load() == 0 {
		t.Error("no line came from the file, though memory held only 8 of 160")
	}
	wantExactly(t, st, next)
	_, order := f.snapshot()
	for i, id := range order {
		if id != event(i).RequestID {
			t.Fatalf("event %d written as %s, out of order: %v", i, id, order)
		}
	}
	waitFor(t, "the journal to be emptied", func() bool { return r.Stats().JournalBytes == 0 && r.Stats().Open == 0 })
}

func ptr[T any](v T) *T { return &v }
