package billing_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/metrics/metricstest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/sqlite"
)

// sharedSQLite opens one database file twice: two gateway processes on one store.
func sharedSQLite(t *testing.T) (store.Store, store.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "escrow.db")
	var out [2]store.Store
	for i := range out {
		st, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		out[i] = st
	}
	return out[0], out[1]
}

// spend holds amount, charges it in full and writes the ledger event, as a delivered request
// does; it reports whether the hold was granted.
func spend(t *testing.T, es *billing.Escrow, st store.Store, k *store.Key, id string, amount money.Amount) bool {
	t.Helper()
	h, err := es.Hold(t.Context(), k.ID, k.BudgetPeriod, time.Time{}, amount)
	if errors.Is(err, billing.ErrInsufficientBudget) {
		return false
	}
	if err != nil {
		t.Errorf("Hold: %v", err)
		return false
	}
	ev := store.UsageEvent{RequestID: id, Time: time.Now(), KeyID: k.ID, Model: "m", NRequested: 1, NDelivered: 1,
		Cost: amount, Currency: "USD", Status: store.StatusOK, Slice: h.Settle(amount)}
	if err := st.InsertUsage(t.Context(), []store.UsageEvent{ev}); err != nil {
		t.Errorf("InsertUsage: %v", err)
	}
	return true
}

// exactnessTimeout bounds the store calls of the tests that fire hundreds of concurrent holds at
// one SQLite file: they queue for its write lock, and under -race on a loaded CI run a claim
// waited past the default 2 s; the escrow then refused every hold for a second as if the store
// were down. Those tests are about exact spending, not speed.
const exactnessTimeout = time.Minute

func spent(t *testing.T, st store.Store, k *store.Key) store.Balance {
	t.Helper()
	b, err := st.Balance(t.Context(), k.ID, k.BudgetPeriod, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEscrowExactOneReplica: a budget that pays for 50 admits exactly 50 of 200 concurrent
// requests, with one claim per few requests rather than one store write per request.
func TestEscrowExactOneReplica(t *testing.T) {
	st := openSQLite(t)
	k := createKey(t, st, "key_exact", "50", store.PeriodTotal)
	reg := prometheus.NewRegistry()
	m, err := billing.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	es := billing.NewEscrow(billing.EscrowOptions{Store: st, Metrics: m, Timeout: exactnessTimeout})
	if err := m.ObserveEscrow(es); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if spend(t, es, st, k, fmt.Sprintf("req_%d", i), money.MustParse("1")) {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 50 {
		t.Errorf("%d of 200 admitted; want exactly 50", ok.Load())
	}
	if b := spent(t, st, k); b.Spent != money.MustParse("50") || b.Held != 0 {
		t.Errorf("balance %+v; want spent 50, nothing reserved", b)
	}
	if granted := metricstest.Sum(t, reg, "imagegw_billing_slice_claims_total", "result", "granted"); granted >= 50 {
		t.Errorf("%v claims for 50 requests; slices should serve several requests each", granted)
	}
	if open := metricstest.Sum(t, reg, "imagegw_billing_holds_open"); open != 0 {
		t.Errorf("holds_open = %v after every request finished", open)
	}
}

// TestEscrowReplicas: two replicas share a budget; together they never admit more than it pays
// for, and once idle slices are given back, the last of the budget is spent to the micro-unit.
func TestEscrowReplicas(t *testing.T) {
	st1, st2 := sharedSQLite(t)
	k := createKey(t, st1, "key_replicas", "30", store.PeriodTotal)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var ess [2]*billing.Escrow
	for i, st := range []store.Store{st1, st2} {
		ess[i] = billing.NewEscrow(billing.EscrowOptions{Store: st, Idle: 50 * time.Millisecond, Timeout: exactnessTimeout})
		go ess[i].Run(ctx)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 120 {
		wg.Go(func() {
			if spend(t, ess[i%2], []store.Store{st1, st2}[i%2], k, fmt.Sprintf("req_%d", i), money.MustParse("0.25")) {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() > 120 || ok.Load()*25 > 3000 {
		t.Fatalf("%d admitted: more than the budget pays for (120)", ok.Load())
	}
	// Slices out at the other replica may refuse a few; they come back once idle.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ok.Load() < 120; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 120 admitted after the slices went idle", ok.Load())
		}
		if spend(t, ess[i%2], []store.Store{st1, st2}[i%2], k, fmt.Sprintf("late_%d", i), money.MustParse("0.25")) {
			ok.Add(1)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range 4 {
		if spend(t, ess[i%2], st1, k, fmt.Sprintf("over_%d", i), money.MustParse("0.000001")) {
			t.Fatal("a spent budget admitted another micro-unit")
		}
	}
	if b := spent(t, st1, k); b.Spent != money.MustParse("30") {
		t.Errorf("spent %s; want 30", b.Spent)
	}
}

// flakyStore wraps a store and fails every call while down.
type flakyStore struct {
	billing.SliceStore
	down atomic.Bool
}

var errDown = errors.New("connection refused")

func (f *flakyStore) ClaimSlice(ctx context.Context, s store.Slice, need, want money.Amount, ttl time.Duration) (store.Claim, error) {
	if f.down.Load() {
		return store.Claim{}, errDown
	}
	return f.SliceStore.ClaimSlice(ctx, s, need, want, ttl)
}

func (f *flakyStore) RenewSlices(ctx context.Context, ids []string, ttl time.Duration) ([]string, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.SliceStore.RenewSlices(ctx, ids, ttl)
}

// TestEscrowStoreOutage: with the store down, holds are served from the slice this replica
// already has until its lease would lapse, then refused as unavailable (never overspent); once
// the store is back, claims work again.
func TestEscrowStoreOutage(t *testing.T) {
	st := openSQLite(t)
	k := createKey(t, st, "key_outage", "100", store.PeriodTotal)
	fs := &flakyStore{SliceStore: st}
	now := time.Now()
	var clock atomic.Int64
	es := billing.NewEscrow(billing.EscrowOptions{Store: fs, TTL: time.Minute,
		Now: func() time.Time { return now.Add(time.Duration(clock.Load())) }})
	h, err := es.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("1"))
	if err != nil {
		t.Fatal(err)
	}
	h.Settle(money.MustParse("1"))
	reserved := es.Stats().Reserved // 2: twice the first request
	fs.down.Store(true)
	for range int(reserved/money.MustParse("1")) - 1 {
		if _, err := es.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("1")); err != nil {
			t.Fatalf("hold within the slice during the outage: %v", err)
		}
	}
	if _, err := es.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("1")); !errors.Is(err, billing.ErrUnavailable) {
		t.Fatalf("hold beyond the slice during the outage: %v; want ErrUnavailable", err)
	}
	fs.down.Store(false)
	// For a second after a failed claim, holds that need one fail fast without asking.
	if _, err := es.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("1")); !errors.Is(err, billing.ErrUnavailable) {
		t.Fatalf("hold right after a failed claim: %v; want ErrUnavailable at once", err)
	}
	clock.Store(int64(time.Second))
	h, err = es.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("1"))
	if err != nil {
		t.Fatalf("hold after the outage: %v", err)
	}
	h.Release()
	// A lease that could not be renewed lapses: past it, even room in the slice is not used.
	fs.down.Store(true)
	clock.Store(int64(time.Minute))
	if _, err := es.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("0.000001")); !errors.Is(err, billing.ErrUnavailable) {
		t.Fatalf("hold after the lease lapsed: %v; want ErrUnavailable", err)
	}
}

// hangingStore never answers a claim before its context ends: a partitioned Postgres.
type hangingStore struct{ billing.SliceStore }

func (hangingStore) ClaimSlice(ctx context.Context, _ store.Slice, _, _ money.Amount, _ time.Duration) (store.Claim, error) {
	<-ctx.Done()
	return store.Claim{}, ctx.Err()
}

// TestEscrowWaitsAreBounded: with the store partitioned, concurrent holds that need a claim
// share one and all return within the timeout (not one timeout each), and a request's store
// deadline bounds the wait further.
func TestEscrowWaitsAreBounded(t *testing.T) {
	const timeout = 300 * time.Millisecond
	es := billing.NewEscrow(billing.EscrowOptions{Store: hangingStore{}, Timeout: timeout})
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := es.Hold(t.Context(), "key_p", "", time.Time{}, money.MustParse("1")); !errors.Is(err, billing.ErrUnavailable) {
				t.Errorf("hold with the store partitioned: %v; want ErrUnavailable", err)
			}
		})
	}
	wg.Wait()
	// A deadline guarantee, not a performance claim: 8 waits in a row would take 2.4 s.
	if d := time.Since(start); d > timeout+700*time.Millisecond {
		t.Errorf("8 concurrent holds took %v with a %v timeout; each should wait at most one", d, timeout)
	}
	es2 := billing.NewEscrow(billing.EscrowOptions{Store: hangingStore{}, Timeout: 10 * time.Second})
	ctx := store.WithDeadline(t.Context(), time.Now().Add(100*time.Millisecond))
	start = time.Now()
	if _, err := es2.Hold(ctx, "key_p", "", time.Time{}, money.MustParse("1")); !errors.Is(err, billing.ErrUnavailable) {
		t.Errorf("hold past the request's store deadline: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the request's store deadline (100ms) did not bound the wait: %v", d)
	}
}

// TestEscrowCrashedReplica: a replica that dies without giving its slice back blocks nobody for
// longer than the slice TTL.
func TestEscrowCrashedReplica(t *testing.T) {
	st := openSQLite(t)
	k := createKey(t, st, "key_crash", "10", store.PeriodTotal)
	dead := billing.NewEscrow(billing.EscrowOptions{Store: st, TTL: 300 * time.Millisecond})
	if _, err := dead.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("5")); err != nil {
		t.Fatal(err)
	} // never settled, never renewed: the process is gone
	live := billing.NewEscrow(billing.EscrowOptions{Store: st})
	if _, err := live.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("10")); !errors.Is(err, billing.ErrInsufficientBudget) {
		t.Fatalf("hold of the whole budget while the dead slice lives: %v", err)
	}
	var ierr *billing.InsufficientError
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := live.Hold(t.Context(), k.ID, "", time.Time{}, money.MustParse("10"))
		if err == nil {
			h.Release()
			break
		}
		if !errors.As(err, &ierr) || time.Now().After(deadline) {
			t.Fatalf("hold of the whole budget after the dead slice's TTL: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEscrowRenewal: Run keeps a busy replica's slice alive well past its TTL.
func TestEscrowRenewal(t *testing.T) {
	st := openSQLite(t)
	k := createKey(t, st, "key_renew", "10", store.PeriodTotal)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	es := billing.NewEscrow(billing.EscrowOptions{Store: st, TTL: 300 * time.Millisecond, Idle: time.Hour})
	go es.Run(ctx)
	h, err := es.Hold(ctx, k.ID, "", time.Time{}, money.MustParse("4"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if b := spent(t, st, k); b.Held != money.MustParse("5") { // half the remaining 10 > twice the hold
		t.Errorf("after 3 TTLs the slice reserves %s in the store; want 5", b.Held)
	}
	other := billing.NewEscrow(billing.EscrowOptions{Store: st})
	if _, err := other.Hold(ctx, k.ID, "", time.Time{}, money.MustParse("5.000001")); !errors.Is(err, billing.ErrInsufficientBudget) {
		t.Errorf("another replica got into a renewed slice: %v", err)
	}
	h.Release()
	es.Close(ctx)
	if b := spent(t, st, k); b.Held != 0 {
		t.Errorf("after Close the slice still reserves %s", b.Held)
	}
}

// TestEscrowGiveBackRacesHolds: slices given back while holds keep arriving never let the
// replica spend what it gave back: with two replicas hammering a small budget and giving back
// constantly, the ledger never passes the budget.
func TestEscrowGiveBackRacesHolds(t *testing.T) {
	st1, st2 := sharedSQLite(t)
	k := createKey(t, st1, "key_race", "2", store.PeriodTotal)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var ess [2]*billing.Escrow
	for i, st := range []store.Store{st1, st2} {
		ess[i] = billing.NewEscrow(billing.EscrowOptions{Store: st, Idle: time.Millisecond, Window: time.Millisecond,
			Timeout: exactnessTimeout})
		go ess[i].Run(ctx)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Go(func() {
			if i%7 == 0 {
				time.Sleep(time.Duration(i%5) * time.Millisecond)
			}
			if spend(t, ess[i%2], []store.Store{st1, st2}[i%2], k, fmt.Sprintf("req_%d", i), money.MustParse("0.01")) {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if b := spent(t, st1, k); b.Spent > money.MustParse("2") || money.Amount(ok.Load())*money.MustParse("0.01") != b.Spent {
		t.Fatalf("%d admitted, spent %s of a budget of 2", ok.Load(), b.Spent)
	}
	// A hold of nothing (all images free) needs no slice, even on a spent budget.
	h, err := ess[0].Hold(t.Context(), k.ID, "", time.Time{}, 0)
	if err != nil {
		t.Fatalf("hold of nothing: %v", err)
	}
	if h.Settle(0) != "" {
		t.Error("a hold of nothing names a slice")
	}
}

// countingStore counts the claims that reached the store.
type countingStore struct {
	billing.SliceStore
	claims atomic.Int64
}

func (c *countingStore) ClaimSlice(ctx context.Context, s store.Slice, need, want money.Amount, ttl time.Duration) (store.Claim, error) {
	defer c.claims.Add(1)
	return c.SliceStore.ClaimSlice(ctx, s, need, want, ttl)
}

// TestEscrowSteadySpendNeverWaits: a key spending at a steady rate has its slice refilled in the
// background before it runs out, so after the first claim no hold waits for the store, while a
// key's first hold does wait (there is no slice yet).
func TestEscrowSteadySpendNeverWaits(t *testing.T) {
	st := openSQLite(t)
	k := createKey(t, st, "key_steady", "1000000", store.PeriodTotal)
	cs := &countingStore{SliceStore: st}
	reg := prometheus.NewRegistry()
	m, err := billing.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var clock atomic.Int64
	es := billing.NewEscrow(billing.EscrowOptions{Store: cs, Metrics: m,
		Now: func() time.Time { return start.Add(time.Duration(clock.Load())) }})
	waits := func() float64 { return metricstest.Sum(t, reg, "imagegw_billing_hold_waits_total") }
	// 100 holds a second of 0.01 each for 20 s of the escrow's clock: 2,000 holds, 1 a second
	// spent, slices of about 5 (5 s of spend) refilled when 2.5 s of spend is left.
	one := money.MustParse("0.01")
	var warm float64
	for i := range 2000 {
		clock.Store(int64(i) * int64(10*time.Millisecond))
		h, err := es.Hold(t.Context(), k.ID, "", time.Time{}, one)
		if err != nil {
			t.Fatalf("hold %d: %v", i, err)
		}
		h.Settle(one)
		if i == 0 && waits() != 1 {
			t.Fatalf("the key's first hold waited %v times for a claim; want 1 (there is no slice yet)", waits())
		}
		if i == 99 {
			warm = waits()
		}
		// A claim this hold started in the background is answered before the next hold comes
		// (a store that answers within 10 ms): wait until it is recorded, not racing it.
		for deadline := time.Now().Add(5 * time.Second); billing.ClaimsInFlight(es) > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("hold %d: a claim did not finish in 5 s", i)
			}
		}
	}
	// While the key's rate is still rising from nothing it is a quiet key, whose holds claim when
	// they do not fit; once it is busy, none waits.
	if warm > 3 {
		t.Errorf("%v of the first 100 holds waited for a claim; want at most 3 while the rate rises", warm)
	}
	if w := waits(); w != warm {
		t.Errorf("%v holds waited for a claim after the first second of steady spend; want none", w-warm)
	}
	if n := cs.claims.Load(); n < 4 || n > 40 {
		t.Errorf("%d claims for 20 s of steady spend; want a few (slices of seconds of spend)", n)
	}
}
