package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

func slice(id, keyID string) store.Slice {
	return store.Slice{ID: id, KeyID: keyID, Period: store.PeriodTotal}
}

// claim claims need/want on a slice for an hour and checks the grant.
func claim(t *testing.T, s store.Store, sl store.Slice, need, want, granted string) store.Claim {
	t.Helper()
	c, err := s.ClaimSlice(t.Context(), sl, money.MustParse(need), money.MustParse(want), time.Hour)
	if err != nil {
		t.Fatalf("ClaimSlice(%s, need %s, want %s): %v", sl.ID, need, want, err)
	}
	if c.Granted != money.MustParse(granted) {
		t.Fatalf("ClaimSlice(%s, need %s, want %s) granted %s; want %s", sl.ID, need, want, c.Granted, granted)
	}
	return c
}

func refuseClaim(t *testing.T, s store.Store, sl store.Slice, need string) {
	t.Helper()
	c, err := s.ClaimSlice(t.Context(), sl, money.MustParse(need), money.MustParse(need), time.Hour)
	if !errors.Is(err, store.ErrInsufficientBudget) || c.Granted != 0 {
		t.Fatalf("ClaimSlice(%s, need %s) = granted %s, %v; want ErrInsufficientBudget", sl.ID, need, c.Granted, err)
	}
}

func balance(t *testing.T, s store.Store, keyID, period string, start time.Time, budget, spent, held string) {
	t.Helper()
	b, err := s.Balance(t.Context(), keyID, period, start)
	if err != nil {
		t.Fatalf("Balance: %v", err)
	}
	gotBudget := "unlimited"
	if b.Budget != nil {
		gotBudget = b.Budget.String()
	}
	if gotBudget != budget || b.Spent != money.MustParse(spent) || b.Held != money.MustParse(held) {
		t.Errorf("Balance(%s %s) = budget %s spent %s held %s; want budget %s spent %s held %s",
			period, start.Format(time.DateOnly), gotBudget, b.Spent, b.Held, budget, spent, held)
	}
}

// charge is a delivered event of the key charged cost against slice at time at.
func charge(id, keyID, sliceID, cost string, at time.Time) store.UsageEvent {
	return store.UsageEvent{RequestID: id, Time: at, KeyID: keyID, Model: "m", Provider: "p", Channel: "c",
		Operation: "generate", NRequested: 1, NDelivered: 1, Cost: money.MustParse(cost), Currency: "USD",
		Status: store.StatusOK, Slice: sliceID}
}

func testSliceLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := withBudget(t, s, 1, "10")
	a, b, c := slice("r1/a", k.ID), slice("r2/a", k.ID), slice("r3/a", k.ID)
	// A claim gets what it wants up to half of what remains, never less than it needs.
	claim(t, s, a, "4", "4", "4")
	claim(t, s, b, "4", "100", "4") // half of the 6 left is 3 < need
	refuseClaim(t, s, c, "2.000001")
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "0", "8")

	// A charge in the ledger moves its cost from the slice to the spend: 3 of a's 4 are spent.
	insert(t, s, []store.UsageEvent{charge("req_1", k.ID, a.ID, "3", base)})
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "3", "5")
	// Writing the same event again (a replay) changes nothing.
	insert(t, s, []store.UsageEvent{charge("req_1", k.ID, a.ID, "3", base)})
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "3", "5")
	// a gives back its unspent 1; returning more than a slice holds stops at zero.
	if err := s.ReturnSlice(ctx, a.ID, money.MustParse("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.ReturnSlice(ctx, a.ID, money.MustParse("5")); err != nil {
		t.Fatal(err)
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "3", "4")
	claim(t, s, c, "3", "3", "3")
	refuseClaim(t, s, c, "0.000001")
	// A slice claims again on top of what it holds.
	insert(t, s, []store.UsageEvent{charge("req_2", k.ID, b.ID, "4", base), charge("req_3", k.ID, c.ID, "1", base)})
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "8", "2")
	refuseClaim(t, s, a, "0.000001") // 10 − 8 spent − 2 in c
	if err := s.ReturnSlice(ctx, c.ID, money.MustParse("2")); err != nil {
		t.Fatal(err)
	}
	claim(t, s, a, "1", "5", "1") // half of the 2 left
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "8", "1")
}

func testSliceUnlimitedKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := withBudget(t, s, 1, "")
	sl := slice("r1/a", k.ID)
	claim(t, s, sl, "1000000", "1000000", "1000000")
	insert(t, s, []store.UsageEvent{charge("req_1", k.ID, "", "1.5", base)})
	balance(t, s, k.ID, store.PeriodTotal, total, "unlimited", "1.5", "1000000")
	// A budget set later counts what the key spent while it had none.
	if _, err := s.UpdateKey(ctx, k.ID, store.KeyUpdate{Budget: ptr(money.MustParse("2"))}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReturnSlice(ctx, sl.ID, money.MustParse("1000000")); err != nil {
		t.Fatal(err)
	}
	refuseClaim(t, s, slice("r2/a", k.ID), "0.500001")
	claim(t, s, slice("r2/a", k.ID), "0.5", "0.5", "0.5")
}

// testSpendPeriods checks a charge counts in its UTC day, its month and the total, whatever
// period the key's budget has, and that periods and keys are apart.
func testSpendPeriods(t *testing.T, s store.Store) {
	k := withBudget(t, s, 1, "5")
	other := withBudget(t, s, 2, "5")
	day1 := time.Date(2026, 11, 30, 23, 59, 59, 999999000, time.UTC)
	day2 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	insert(t, s, []store.UsageEvent{
		charge("req_1", k.ID, "", "1", day1),
		charge("req_2", k.ID, "", "2", day2),
		charge("req_3", k.ID, "", "0.25", day2.Add(5*time.Hour)),
		charge("req_4", other.ID, "", "4", day2),
	})
	d1, d2 := store.PeriodStart(store.PeriodDaily, day1), store.PeriodStart(store.PeriodDaily, day2)
	m1, m2 := store.PeriodStart(store.PeriodMonthly, day1), store.PeriodStart(store.PeriodMonthly, day2)
	if !d2.Equal(m2) {
		t.Fatalf("test setup: %s is meant to start a day and a month", day2)
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "5", "3.25", "0")
	balance(t, s, k.ID, store.PeriodDaily, d1, "5", "1", "0")
	balance(t, s, k.ID, store.PeriodDaily, d2, "5", "2.25", "0")
	balance(t, s, k.ID, store.PeriodMonthly, m1, "5", "1", "0")
	balance(t, s, k.ID, store.PeriodMonthly, m2, "5", "2.25", "0")
	balance(t, s, other.ID, store.PeriodDaily, d2, "5", "4", "0")
	// A daily slice claims against the day's spend only.
	sl := store.Slice{ID: "r1/d", KeyID: k.ID, Period: store.PeriodDaily, PeriodStart: d2}
	claim(t, s, sl, "2.75", "2.75", "2.75")
	refuseClaim(t, s, sl, "0.000001")
	balance(t, s, k.ID, store.PeriodDaily, d2, "5", "2.25", "2.75")
	balance(t, s, k.ID, store.PeriodMonthly, m2, "5", "2.25", "0")
}

func testSliceExpiryRenewSweep(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := withBudget(t, s, 1, "10")
	dead, live := slice("r1/a", k.ID), slice("r2/a", k.ID)
	if _, err := s.ClaimSlice(ctx, dead, money.MustParse("6"), money.MustParse("6"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	claim(t, s, live, "2", "2", "2")
	refuseClaim(t, s, slice("r3/a", k.ID), "3")
	time.Sleep(200 * time.Millisecond)
	// The dead replica's slice no longer counts: its budget is free again.
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "0", "2")
	lost, err := s.RenewSlices(ctx, []string{live.ID, dead.ID, "r9/unknown"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lost) != fmt.Sprint([]string{dead.ID, "r9/unknown"}) {
		t.Errorf("RenewSlices lost %v; want [%s r9/unknown]", lost, dead.ID)
	}
	// Reclaiming an expired slice starts it from zero.
	claim(t, s, dead, "1", "1", "1")
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "0", "3")
	if _, err := s.ClaimSlice(ctx, slice("r4/a", k.ID), money.MustParse("1"), money.MustParse("1"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	n, err := s.SweepSlices(ctx)
	if err != nil || n != 1 {
		t.Errorf("SweepSlices = %d, %v; want 1", n, err)
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "10", "0", "3")
}

func testSliceErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.ClaimSlice(ctx, slice("r1/x", "key_missing"), 1, 1, time.Hour); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimSlice(unknown key) = %v; want ErrNotFound", err)
	}
	if _, err := s.Balance(ctx, "key_missing", store.PeriodTotal, total); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Balance(unknown key) = %v; want ErrNotFound", err)
	}
	k := withBudget(t, s, 1, "1")
	if _, err := s.ClaimSlice(ctx, slice("r1/a", k.ID), -1, 1, time.Hour); err == nil {
		t.Error("ClaimSlice with a negative need succeeded")
	}
	if _, err := s.ClaimSlice(ctx, slice("r1/a", k.ID), 1, 1, 0); err == nil {
		t.Error("ClaimSlice without a TTL succeeded")
	}
	if err := s.ReturnSlice(ctx, "r9/unknown", 5); err != nil {
		t.Errorf("ReturnSlice(unknown) = %v; want nil", err)
	}
	if lost, err := s.RenewSlices(ctx, nil, time.Hour); err != nil || len(lost) != 0 {
		t.Errorf("RenewSlices(none) = %v, %v", lost, err)
	}
}

// testSliceConcurrent: 200 replicas each claim 1 of a budget of 50 at once; exactly 50 get it.
func testSliceConcurrent(t *testing.T, s store.Store) {
	k := withBudget(t, s, 1, "50")
	var ok, refused atomic.Int64
	errs := make(chan error, 200)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			c, err := s.ClaimSlice(t.Context(), slice(fmt.Sprintf("r%03d/a", i), k.ID), money.MustParse("1"), money.MustParse("1"), time.Hour)
			switch {
			case err == nil && c.Granted == money.MustParse("1"):
				ok.Add(1)
			case errors.Is(err, store.ErrInsufficientBudget):
				refused.Add(1)
			default:
				errs <- fmt.Errorf("granted %s: %v", c.Granted, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ClaimSlice: %v", err)
	}
	if ok.Load() != 50 || refused.Load() != 150 {
		t.Errorf("%d claims granted and %d refused; want 50 and 150", ok.Load(), refused.Load())
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "50", "0", "50")
}

// testSliceConcurrentClaimSpend: claims race with ledger writes moving spend out of slices; a
// cost is counted exactly once (in a slice or in the spend), never zero times.
func testSliceConcurrentClaimSpend(t *testing.T, s store.Store) {
	k := withBudget(t, s, 1, "20")
	var ok atomic.Int64
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			sl := slice(fmt.Sprintf("r%03d/a", i), k.ID)
			_, err := s.ClaimSlice(t.Context(), sl, money.MustParse("1"), money.MustParse("1"), time.Hour)
			if errors.Is(err, store.ErrInsufficientBudget) {
				return
			}
			if err == nil {
				ok.Add(1)
				err = s.InsertUsage(t.Context(), []store.UsageEvent{charge(fmt.Sprintf("req_%03d", i), k.ID, sl.ID, "1", base)})
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ok.Load() != 20 {
		t.Errorf("%d claims granted and spent; want exactly 20", ok.Load())
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "20", "20", "0")
}

func testReconcileSpend(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := withBudget(t, s, 1, "")
	withBudget(t, s, 2, "")
	insert(t, s, ledger())
	for _, fix := range []bool{false, true} {
		diffs, err := s.ReconcileSpend(ctx, "", fix)
		if err != nil || len(diffs) != 0 {
			t.Fatalf("ReconcileSpend(fix=%v) = %v, %v; want no differences", fix, diffs, err)
		}
	}
	var want money.Amount
	for _, e := range ledger() {
		if e.KeyID == k.ID {
			want += e.Cost
		}
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "unlimited", want.String(), "0")
}

// testBatchChargesOnce: one large batch (SQLite sends it as statements of 32, 8 and 1 rows)
// with request ids repeated inside it and across its statements, then the same batch again:
// each request id is one row, its first copy wins, and the key's spend counts each once.
func testBatchChargesOnce(t *testing.T, s store.Store) {
	k := withBudget(t, s, 1, "")
	var batch []store.UsageEvent
	for i := range 41 {
		batch = append(batch, charge(fmt.Sprintf("req_%03d", i), k.ID, "", "1", base))
	}
	for _, i := range []int{3, 30, 31, 35, 40} { // inside the first 32, then across statements
		batch = append(batch[:i+1:i+1], append([]store.UsageEvent{charge(fmt.Sprintf("req_%03d", i/2), k.ID, "", "99", base)}, batch[i+1:]...)...)
	}
	insert(t, s, batch)
	insert(t, s, batch)
	evs := list(t, s, store.UsageFilter{KeyID: k.ID}, 0)
	if len(evs) != 41 {
		t.Fatalf("%d ledger rows, want 41", len(evs))
	}
	for _, e := range evs {
		if e.Cost != money.MustParse("1") {
			t.Errorf("row %s costs %s; the first copy (1) wins", e.RequestID, e.Cost)
		}
	}
	balance(t, s, k.ID, store.PeriodTotal, total, "unlimited", "41", "0")
}
