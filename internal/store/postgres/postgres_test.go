package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, storetest.PostgresURL(t))
	})
}

func TestMigrateRecordsVersions(t *testing.T) {
	s := open(t, storetest.PostgresURL(t))
	for range 3 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var n, max int
	if err := s.Pool().QueryRow(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != max {
		t.Errorf("schema_migrations holds %d rows up to version %d; want each version once", n, max)
	}
}

func TestOpenBadURL(t *testing.T) {
	if s, err := postgres.Open(t.Context(), "postgres://postgres:secret@127.0.0.1:1/nope?connect_timeout=2"); err == nil {
		_ = s.Close()
		t.Fatal("Open on a closed port succeeded")
	} else if want := "secret"; strings.Contains(err.Error(), want) {
		t.Errorf("error leaks the password: %v", err)
	}
}

// TestSeveralProcesses opens separate pools on one database, as separate gateway processes
// would, migrates from all at once (the advisory lock serialises them) and claims budget slices
// from all at once: exactly the budget is granted, never more.
func TestSeveralProcesses(t *testing.T) {
	url := storetest.PostgresURL(t)
	stores := make([]*postgres.Store, 4)
	for i := range stores {
		stores[i] = open(t, url)
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

	budget := money.MustParse("50")
	if err := stores[0].CreateKey(t.Context(), &store.Key{ID: "key_1", Hash: "h1", Budget: &budget}); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	for i := range 200 {
		wg.Go(func() {
			id := fmt.Sprintf("req_%d", i)
			s := stores[i%len(stores)]
			sl := store.Slice{ID: fmt.Sprintf("r%d/key_1", i), KeyID: "key_1", Period: store.PeriodTotal}
			_, err := s.ClaimSlice(t.Context(), sl, money.MustParse("1"), money.MustParse("1"), time.Hour)
			switch {
			case err == nil:
				ok.Add(1)
				// Half the claims are spent right away, written to the ledger by another process:
				// spent plus reserved never exceeds the budget.
				if i%2 == 0 {
					err = stores[(i+1)%len(stores)].InsertUsage(t.Context(), []store.UsageEvent{{RequestID: id, Time: time.Now(),
						KeyID: "key_1", Cost: money.MustParse("1"), Currency: "USD", Status: store.StatusOK, Slice: sl.ID}})
				}
				if err != nil {
					t.Errorf("InsertUsage: %v", err)
				}
			case !errors.Is(err, store.ErrInsufficientBudget):
				t.Errorf("ClaimSlice: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Errorf("%d claims granted across 4 pools; want 50", ok.Load())
	}
	b, err := stores[3].Balance(t.Context(), "key_1", store.PeriodTotal, time.Time{})
	if err != nil || b.Held+b.Spent != budget {
		t.Errorf("Balance = %+v, %v; want held + spent = %s", b, err, budget)
	}
}

// BenchmarkClaimSpend measures what a replica pays per budget slice: one claim and one ledger
// write charging it (per slice, not per request).
func BenchmarkClaimSpend(b *testing.B) {
	s, err := postgres.Open(b.Context(), storetest.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchClaimSpend(b, s)
}
