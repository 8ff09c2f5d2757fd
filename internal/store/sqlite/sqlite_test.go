package sqlite_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/benchcpu"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/sqlite"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

func openMemory(t *testing.T) store.Store {
	s, err := sqlite.Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openFile(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, openMemory)
}

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openFile(t, filepath.Join(t.TempDir(), "imagegw.db"))
	})
}

func TestOpenCreatesDirectoryAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "imagegw.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(t.Context(), &store.Key{ID: "key_1", Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}

	s = openFile(t, path)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate on reopen: %v", err)
	}
	if n, err := s.CountKeys(t.Context()); err != nil || n != 1 {
		t.Errorf("CountKeys after reopen = %d, %v; want 1", n, err)
	}
}

func TestOpenRejectsBadPaths(t *testing.T) {
	for _, p := range []string{"", "data/x.db?mode=ro"} {
		if s, err := sqlite.Open(t.Context(), p); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded; want an error", p)
		}
	}
}

// TestSeveralProcesses opens one database file several times, as separate gateway processes
// would, migrates from all at once and claims budget slices from all at once: the budget holds.
func TestSeveralProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := make([]*sqlite.Store, 4)
	for i := range stores {
		stores[i] = openFile(t, path)
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			if err := s.Migrate(t.Context()); err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	budget := money.MustParse("30")
	if err := stores[0].CreateKey(t.Context(), &store.Key{ID: "key_1", Hash: "h1", Budget: &budget}); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	for i := range 120 {
		wg.Go(func() {
			sl := store.Slice{ID: fmt.Sprintf("r%d/key_1", i), KeyID: "key_1", Period: store.PeriodTotal}
			_, err := stores[i%len(stores)].ClaimSlice(t.Context(), sl, money.MustParse("1"), money.MustParse("1"), time.Hour)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, store.ErrInsufficientBudget):
				t.Errorf("ClaimSlice: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 30 {
		t.Errorf("%d claims granted across 4 stores; want 30", ok.Load())
	}
	b, err := stores[3].Balance(t.Context(), "key_1", store.PeriodTotal, time.Time{})
	if err != nil || b.Held != budget {
		t.Errorf("Balance = %+v, %v; want held %s", b, err, budget)
	}
}

// BenchmarkClaimSpend measures what a replica pays per budget slice: one claim and one ledger
// write charging it (per slice, not per request).
func BenchmarkClaimSpend(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchClaimSpend(b, s)
}

// BenchmarkInsertUsage is the usage writer's cost per ledger row: batches of charged events
// (one key, as under load) into a file database, by batch size. ns/row includes each commit's
// fsync, a wait; cpu-ns/row is the process's CPU time per row.
//
//	go test -run '^$' -bench InsertUsage -benchmem -count 6 ./internal/store/sqlite/
func BenchmarkInsertUsage(b *testing.B) {
	for _, batch := range []int{128, 512} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			events := make([]store.UsageEvent, batch)
			t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
			n := 0
			b.ReportAllocs()
			cpu0 := benchcpu.Now()
			for b.Loop() {
				for i := range events {
					n++
					events[i] = store.UsageEvent{RequestID: fmt.Sprintf("req_%09d", n), Time: t0.Add(time.Duration(n) * time.Millisecond),
						KeyID: "key_bench", Model: "gpt-image-1", Provider: "openai", Channel: "openai", Operation: "generate",
						NRequested: 1, NDelivered: 1, Width: 1024, Height: 1024, Cost: money.Amount(1000), Currency: "USD", Status: "ok",
						LatencyMS: 3, UpstreamMS: 2}
				}
				if err := s.InsertUsage(b.Context(), events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/row")
			if _, cpu := benchcpu.Since(cpu0); cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/row")
			}
		})
	}
}
