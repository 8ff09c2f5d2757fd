package billing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/sqlite"
	"github.com/imagegw/imagegw/providers"
)

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

func createKey(t *testing.T, st store.Store, id, budget, period string) *store.Key {
	t.Helper()
	k := &store.Key{ID: id, Name: id, Prefix: "igw_" + id, Hash: fmt.Sprintf("%064x", len(id)*7919+int(id[len(id)-1])),
		CreatedAt: time.Now().UTC(), BudgetPeriod: period}
	if budget != "" {
		b := money.MustParse(budget)
		k.Budget = &b
	}
	if err := st.CreateKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	return k
}

// admit and finish are the Meter's sequence around one request: quote → free images → hold in
// the escrow, then settle (or release) → the ledger event, which moves the charge to the spend.
type admitted struct {
	quote  billing.Quote
	free   int
	period time.Time
	hold   *billing.Hold
	at     time.Time
}

func admit(ctx context.Context, e *billing.Engine, es *billing.Escrow, st store.Store, k *store.Key, public string, m *providers.Model, req *providers.Request, now time.Time) (*admitted, error) {
	q, err := e.Quote(m, req)
	if err != nil {
		return nil, err
	}
	a := &admitted{quote: q, period: billing.PeriodStart(k.BudgetPeriod, now), at: now}
	if q.FreeImages > 0 {
		if a.free, err = st.ConsumeFreeImages(ctx, k.ID, public, q.Images, q.FreeImages); err != nil {
			return nil, err
		}
	}
	a.hold, err = es.Hold(ctx, k.ID, k.BudgetPeriod, a.period, q.ForCharged(q.Images, a.free))
	if err != nil {
		if a.free > 0 {
			_ = st.ReturnFreeImages(ctx, k.ID, public, a.free)
		}
		return nil, err
	}
	return a, nil
}

func (a *admitted) finish(ctx context.Context, st store.Store, k *store.Key, public, reqID string, delivered int) (billing.Settlement, error) {
	s := a.quote.Settle(delivered, a.free)
	if s.FreeReturned > 0 {
		if err := st.ReturnFreeImages(ctx, k.ID, public, s.FreeReturned); err != nil {
			return s, err
		}
	}
	ev := store.UsageEvent{RequestID: reqID, Time: a.at, KeyID: k.ID, Model: public, NRequested: a.quote.Images,
		NDelivered: delivered, Cost: s.Cost, Currency: "USD", Status: store.StatusOK}
	if delivered == 0 {
		a.hold.Release()
		ev.Status = store.StatusFailed
	} else {
		ev.Slice = a.hold.Settle(s.Cost)
	}
	return s, st.InsertUsage(ctx, []store.UsageEvent{ev})
}

// TestMeterFlow runs the quote → free images → hold → settle/release sequence against SQLite
// with seed 004's quota (10 free images) and a per-image price in CNY converted to USD.
func TestMeterFlow(t *testing.T) {
	ctx := t.Context()
	st := openSQLite(t)
	e, err := billing.New("USD", map[string]string{"CNY": "0.14"})
	if err != nil {
		t.Fatal(err)
	}
	k := createKey(t, st, "key_flow", "1.00", store.PeriodMonthly)
	m := &providers.Model{ID: "black-forest-labs/FLUX.1-dev", Price: providers.Price{Unit: providers.PerImage, Currency: "CNY",
		Amount: money.MustParse("0.18"), FreeImages: 10}}
	const public = "modelverse/black-forest-labs/FLUX.1-dev"
	// Slices expire by the wall clock, so the flow runs now.
	now := time.Now().UTC()
	es := billing.NewEscrow(billing.EscrowOptions{Store: st})

	// 1: four images, all free (quota 10 → 6 left).
	a, err := admit(ctx, e, es, st, k, public, m, &providers.Request{N: 4}, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.free != 4 || a.quote.ForCharged(4, a.free) != 0 {
		t.Fatalf("request 1: free %d hold %s", a.free, a.quote.ForCharged(4, a.free))
	}
	if s, err := a.finish(ctx, st, k, public, "req_1", 4); err != nil || s.Cost != 0 || s.FreeUsed != 4 {
		t.Fatalf("request 1: %+v, %v", s, err)
	}
	// 2: eight images, six free, two paid (0.18 × 0.14 = 0.0252 USD each); only five delivered:
	// five free used, one free returned, nothing paid.
	a, err = admit(ctx, e, es, st, k, public, m, &providers.Request{N: 8}, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.free != 6 {
		t.Fatalf("request 2: free %d, want 6", a.free)
	}
	if held := es.Stats().Held; held != money.MustParse("0.0504") {
		t.Fatalf("request 2: held %s, want 0.0504", held)
	}
	s, err := a.finish(ctx, st, k, public, "req_2", 5)
	if err != nil || s.Cost != 0 || s.FreeUsed != 5 || s.FreeReturned != 1 {
		t.Fatalf("request 2: %+v, %v", s, err)
	}
	// 3: four images: one free left, three paid; all delivered.
	a, err = admit(ctx, e, es, st, k, public, m, &providers.Request{N: 4}, now)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := a.finish(ctx, st, k, public, "req_3", 4); err != nil || s.Cost != money.MustParse("0.0756") {
		t.Fatalf("request 3: %+v, %v", s, err)
	}
	// 4: the upstream failed: the hold is released, nothing spent.
	a, err = admit(ctx, e, es, st, k, public, m, &providers.Request{N: 2}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.finish(ctx, st, k, public, "req_4", 0); err != nil {
		t.Fatal(err)
	}
	bal, err := st.Balance(ctx, k.ID, k.BudgetPeriod, billing.PeriodStart(k.BudgetPeriod, now))
	if err != nil {
		t.Fatal(err)
	}
	if bal.Spent != money.MustParse("0.0756") || es.Stats().Held != 0 {
		t.Fatalf("balance %+v, held %s; want spent 0.0756 and nothing held", bal, es.Stats().Held)
	}
	// This replica's slice still reserves what it claimed; the key's remaining budget counts it.
	if r, ok := billing.Remaining(bal); !ok || r+bal.Held != money.MustParse("0.9244") {
		t.Fatalf("remaining %s + reserved %s, want 0.9244", r, bal.Held)
	}
	// 5: the budget cannot hold 37 paid images (0.9324 > 0.9244), but 36 (0.9072) fit.
	if _, err := admit(ctx, e, es, st, k, public, m, &providers.Request{N: 37}, now); !errors.Is(err, store.ErrInsufficientBudget) {
		t.Fatalf("request 5: %v, want ErrInsufficientBudget", err)
	}
	if _, err := admit(ctx, e, es, st, k, public, m, &providers.Request{N: 36}, now); err != nil {
		t.Fatalf("request 6: %v", err)
	}
	// Next month is a fresh monthly period with the whole budget.
	next := billing.PeriodStart(store.PeriodMonthly, now).AddDate(0, 1, 0)
	if _, err := admit(ctx, e, es, st, k, public, m, &providers.Request{N: 37}, next); err != nil {
		t.Fatalf("request 7 in the next period: %v", err)
	}
}

func TestPeriodStart(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	at := time.Date(2026, 3, 1, 5, 30, 0, 0, shanghai) // 2026-02-28 21:30 UTC
	cases := []struct {
		period string
		want   time.Time
	}{
		{store.PeriodTotal, time.Time{}},
		{"", time.Time{}},
		{"weekly", time.Time{}},
		{store.PeriodDaily, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)},
		{store.PeriodMonthly, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		if got := billing.PeriodStart(c.period, at); !got.Equal(c.want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("PeriodStart(%q) = %v, want %v", c.period, got, c.want)
		}
	}
	if got := billing.PeriodStart(store.PeriodDaily, time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC)); !got.Equal(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("last nanosecond of the year: %v", got)
	}
}

func TestRemaining(t *testing.T) {
	b := money.MustParse("1")
	if _, ok := billing.Remaining(store.Balance{}); ok {
		t.Error("unlimited budget has a remaining amount")
	}
	if r, _ := billing.Remaining(store.Balance{Budget: &b, Spent: money.MustParse("0.9"), Held: money.MustParse("0.2")}); r != 0 {
		t.Errorf("overspent: remaining %s, want 0", r)
	}
}
