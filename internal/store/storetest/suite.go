package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// Run is the conformance suite. open must return a fresh, empty store for each call (Run calls
// it once per subtest) and arrange for it to be closed when that test ends; it need not migrate
// the store: Run calls Migrate itself, twice, which also checks that migrating is idempotent.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	fresh := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		for i := range 2 {
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate (call %d): %v", i+1, err)
			}
		}
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"MigrateKeepsData", testMigrateKeepsData},
		{"KeyRoundTrip", testKeyRoundTrip},
		{"KeyMinimal", testKeyMinimal},
		{"KeyNotFound", testKeyNotFound},
		{"KeyConflict", testKeyConflict},
		{"ListAndCountKeys", testListAndCountKeys},
		{"UpdateKey", testUpdateKey},
		{"UpdateKeyClear", testUpdateKeyClear},
		{"RevokeKey", testRevokeKey},
		{"SliceLifecycle", testSliceLifecycle},
		{"SliceUnlimitedKey", testSliceUnlimitedKey},
		{"SpendPeriods", testSpendPeriods},
		{"SliceExpiryRenewSweep", testSliceExpiryRenewSweep},
		{"SliceErrors", testSliceErrors},
		{"SliceConcurrent", testSliceConcurrent},
		{"SliceConcurrentClaimSpend", testSliceConcurrentClaimSpend},
		{"ReconcileSpend", testReconcileSpend},
		{"BatchChargesOnce", testBatchChargesOnce},
		{"FreeImages", testFreeImages},
		{"FreeImagesConcurrent", testFreeImagesConcurrent},
		{"UpstreamFree", testUpstreamFree},
		{"UsageRoundTrip", testUsageRoundTrip},
		{"UsageIdempotent", testUsageIdempotent},
		{"ListUsage", testListUsage},
		{"SumUsage", testSumUsage},
		{"SumUsageCostAndPrice", testSumUsageCostAndPrice},
		{"ChannelSwitches", testChannelSwitches},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
}

// base is a fixed instant with microsecond precision (what both stores keep).
var base = time.Date(2026, 11, 22, 9, 30, 0, 123456000, time.UTC)

func ptr[T any](v T) *T { return &v }

func newKey(i int) *store.Key {
	return &store.Key{
		ID:        fmt.Sprintf("key_%04d", i),
		Name:      fmt.Sprintf("key %d", i),
		Prefix:    fmt.Sprintf("igw_%04d", i),
		Hash:      fmt.Sprintf("%064x", i+1),
		CreatedAt: base.Add(time.Duration(i) * time.Second),
	}
}

func mustCreate(t *testing.T, s store.Store, k *store.Key) *store.Key {
	t.Helper()
	if err := s.CreateKey(t.Context(), k); err != nil {
		t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
	return k
}

// describe prints every field of a key, so two keys compare as strings with a readable diff.
func describe(k *store.Key) string {
	if k == nil {
		return "<nil>"
	}
	tm := func(t *time.Time) string {
		if t == nil {
			return "nil"
		}
		return t.Format(time.RFC3339Nano) + "@" + t.Location().String()
	}
	in := func(p *int) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	amt := "nil"
	if k.Budget != nil {
		amt = k.Budget.String()
	}
	mn := "nil"
	if k.MapNearest != nil {
		mn = fmt.Sprint(*k.MapNearest)
	}
	mu := "nil"
	if k.Markup != nil {
		mu = k.Markup.String()
	}
	return fmt.Sprintf("id=%s name=%q prefix=%q hash=%s models=%q created=%s expires=%s revoked=%s "+
		"budget=%s period=%q rpm=%s ipm=%s mppm=%s conc=%s mapnearest=%s markup=%s",
		k.ID, k.Name, k.Prefix, k.Hash, k.Models, tm(&k.CreatedAt), tm(k.ExpiresAt), tm(k.RevokedAt),
		amt, k.BudgetPeriod, in(k.RPM), in(k.IPM), in(k.MPPM), in(k.Concurrency), mn, mu)
}

func sameKey(t *testing.T, what string, got, want *store.Key) {
	t.Helper()
	if g, w := describe(got), describe(want); g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testMigrateKeepsData(t *testing.T, s store.Store) {
	k := mustCreate(t, s, newKey(1))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	got, err := s.Key(t.Context(), k.ID)
	if err != nil {
		t.Fatalf("Key after Migrate: %v", err)
	}
	sameKey(t, "key after Migrate", got, k)
}

func fullKey() *store.Key {
	k := newKey(7)
	k.Models = []string{"flux-schnell", "gpt-image-1"}
	k.ExpiresAt = ptr(base.Add(30 * 24 * time.Hour))
	k.Budget = ptr(money.MustParse("12.345678"))
	k.BudgetPeriod = store.PeriodMonthly
	k.RPM, k.IPM, k.MPPM, k.Concurrency = ptr(60), ptr(0), ptr(250), ptr(4)
	k.MapNearest = ptr(false)
	k.Markup = ptr(money.MustParse("1.2"))
	return k
}

func testKeyRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := mustCreate(t, s, fullKey())
	got, err := s.Key(ctx, want.ID)
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	sameKey(t, "Key", got, want)
	got, err = s.KeyByHash(ctx, want.Hash)
	if err != nil {
		t.Fatalf("KeyByHash: %v", err)
	}
	sameKey(t, "KeyByHash", got, want)

	// A key may be stored already revoked, with local times (which come back in UTC).
	paris := time.FixedZone("CET", 3600)
	k2 := newKey(8)
	k2.CreatedAt = base.In(paris)
	k2.RevokedAt = ptr(base.Add(time.Hour).In(paris))
	k2.MapNearest = ptr(true)
	mustCreate(t, s, k2)
	got, err = s.Key(ctx, k2.ID)
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	want2 := *k2
	want2.CreatedAt = base
	want2.RevokedAt = ptr(base.Add(time.Hour))
	sameKey(t, "key with local times", got, &want2)
}

func testKeyMinimal(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	k := &store.Key{ID: "key_min", Hash: "abc123"}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if k.CreatedAt.Before(before) || k.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreateKey set CreatedAt = %v, want about now", k.CreatedAt)
	}
	got, err := s.Key(ctx, "key_min")
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	sameKey(t, "minimal key", got, k)
	if got.Models != nil || got.Budget != nil || got.RPM != nil || got.MapNearest != nil || got.ExpiresAt != nil || got.RevokedAt != nil {
		t.Errorf("minimal key has values set: %s", describe(got))
	}
}

func testKeyNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, newKey(1))
	if _, err := s.Key(ctx, "key_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Key(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.KeyByHash(ctx, "deadbeef"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyByHash(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateKey(ctx, "key_nope", store.KeyUpdate{Name: ptr("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateKey(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.RevokeKey(ctx, "key_nope", base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeKey(unknown) error = %v, want ErrNotFound", err)
	}
}

func testKeyConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := mustCreate(t, s, newKey(1))
	sameID := newKey(2)
	sameID.ID = k.ID
	if err := s.CreateKey(ctx, sameID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateKey(same id) error = %v, want ErrConflict", err)
	}
	sameHash := newKey(3)
	sameHash.Hash = k.Hash
	if err := s.CreateKey(ctx, sameHash); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateKey(same hash) error = %v, want ErrConflict", err)
	}
	if n, err := s.CountKeys(ctx); err != nil || n != 1 {
		t.Errorf("CountKeys = %d, %v; want 1", n, err)
	}
}

func testListAndCountKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n, err := s.CountKeys(ctx); err != nil || n != 0 {
		t.Fatalf("CountKeys on an empty store = %d, %v", n, err)
	}
	if keys, err := s.ListKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("ListKeys on an empty store = %d keys, %v", len(keys), err)
	}
	// Created out of order: ListKeys is oldest first.
	var want []*store.Key
	for _, i := range []int{3, 1, 2} {
		want = append(want, mustCreate(t, s, newKey(i)))
	}
	if err := s.RevokeKey(ctx, want[0].ID, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	want[0].RevokedAt = ptr(base.Add(time.Hour))
	slices.SortFunc(want, func(a, b *store.Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	got, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListKeys returned %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		sameKey(t, fmt.Sprintf("ListKeys[%d]", i), got[i], want[i])
	}
	if n, err := s.CountKeys(ctx); err != nil || n != 3 {
		t.Errorf("CountKeys = %d, %v; want 3 (revoked keys count)", n, err)
	}
}

func testUpdateKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := mustCreate(t, s, newKey(1))
	other := mustCreate(t, s, fullKey())

	exp := base.Add(48 * time.Hour)
	u := store.KeyUpdate{
		Name:         ptr("renamed"),
		Models:       &[]string{"m1"},
		ExpiresAt:    &exp,
		Budget:       ptr(money.MustParse("50")),
		BudgetPeriod: ptr(store.PeriodDaily),
		RPM:          ptr(10),
		IPM:          ptr(20),
		MPPM:         ptr(30),
		Concurrency:  ptr(2),
		MapNearest:   ptr(true),
		Markup:       ptr(money.MustParse("1.25")),
	}
	want := *k
	u.Apply(&want)
	got, err := s.UpdateKey(ctx, k.ID, u)
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	sameKey(t, "UpdateKey result", got, &want)
	reread, err := s.Key(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, "key after UpdateKey", reread, &want)

	// Nil fields are left alone; zero values are values.
	got, err = s.UpdateKey(ctx, k.ID, store.KeyUpdate{RPM: ptr(0), MapNearest: ptr(false)})
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	want.RPM, want.MapNearest = ptr(0), ptr(false)
	sameKey(t, "partial UpdateKey", got, &want)

	// A markup is cleared with ClearMarkup.
	got, err = s.UpdateKey(ctx, k.ID, store.KeyUpdate{ClearMarkup: true})
	if err != nil {
		t.Fatalf("UpdateKey(ClearMarkup): %v", err)
	}
	want.Markup = nil
	sameKey(t, "UpdateKey clearing the markup", got, &want)

	// An empty update changes nothing; other keys are untouched.
	got, err = s.UpdateKey(ctx, k.ID, store.KeyUpdate{})
	if err != nil {
		t.Fatalf("UpdateKey(empty): %v", err)
	}
	sameKey(t, "empty UpdateKey", got, &want)
	o, err := s.Key(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, "other key", o, other)
}

func testUpdateKeyClear(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := mustCreate(t, s, fullKey())
	got, err := s.UpdateKey(ctx, k.ID, store.KeyUpdate{ClearExpiry: true, ClearBudget: true, Models: &[]string{}})
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	if got.ExpiresAt != nil || got.Budget != nil || len(got.Models) != 0 {
		t.Errorf("after clearing: expires=%v budget=%v models=%q, want all unset", got.ExpiresAt, got.Budget, got.Models)
	}
	reread, err := s.Key(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if reread.ExpiresAt != nil || reread.Budget != nil || len(reread.Models) != 0 {
		t.Errorf("stored after clearing: %s", describe(reread))
	}
	if reread.RPM == nil || *reread.RPM != 60 || reread.BudgetPeriod != store.PeriodMonthly {
		t.Errorf("clearing changed other fields: %s", describe(reread))
	}
	// A budget set after clearing counts again.
	got, err = s.UpdateKey(ctx, k.ID, store.KeyUpdate{Budget: ptr(money.MustParse("1"))})
	if err != nil || got.Budget == nil || *got.Budget != money.MustParse("1") {
		t.Errorf("UpdateKey(budget 1) = %s, %v", describe(got), err)
	}
}

func testRevokeKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := mustCreate(t, s, newKey(1))
	first := base.Add(time.Hour)
	if err := s.RevokeKey(ctx, k.ID, first); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if err := s.RevokeKey(ctx, k.ID, first.Add(time.Hour)); err != nil {
		t.Fatalf("RevokeKey again: %v", err)
	}
	got, err := s.KeyByHash(ctx, k.Hash)
	if err != nil {
		t.Fatalf("KeyByHash(revoked key): %v", err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(first) {
		t.Errorf("RevokedAt = %v, want the first revocation time %v", got.RevokedAt, first)
	}
	// Updating a revoked key does not un-revoke it.
	got, err = s.UpdateKey(ctx, k.ID, store.KeyUpdate{Name: ptr("still revoked")})
	if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(first) {
		t.Errorf("UpdateKey(revoked) = %s, %v", describe(got), err)
	}
}

// Budget helpers.

var total = time.Time{} // the period start of PeriodTotal budgets

func withBudget(t *testing.T, s store.Store, i int, budget string) *store.Key {
	t.Helper()
	k := newKey(i)
	if budget != "" {
		k.Budget = ptr(money.MustParse(budget))
	}
	return mustCreate(t, s, k)
}

func takeFree(t *testing.T, s store.Store, keyID, model string, n, quota, want int) {
	t.Helper()
	got, err := s.ConsumeFreeImages(t.Context(), keyID, model, n, quota)
	if err != nil || got != want {
		t.Errorf("ConsumeFreeImages(%s, %s, n=%d, quota=%d) = %d, %v; want %d", keyID, model, n, quota, got, err, want)
	}
}

func testFreeImages(t *testing.T, s store.Store) {
	ctx := t.Context()
	k1 := withBudget(t, s, 1, "")
	k2 := withBudget(t, s, 2, "")

	takeFree(t, s, k1.ID, "m1", 3, 5, 3)
	takeFree(t, s, k1.ID, "m1", 3, 5, 2)
	takeFree(t, s, k1.ID, "m1", 1, 5, 0)
	// Quotas are per key and per model.
	takeFree(t, s, k1.ID, "m2", 4, 5, 4)
	takeFree(t, s, k2.ID, "m1", 9, 5, 5)
	takeFree(t, s, k1.ID, "m3", 2, 0, 0)

	if err := s.ReturnFreeImages(ctx, k1.ID, "m1", 2); err != nil {
		t.Fatalf("ReturnFreeImages: %v", err)
	}
	takeFree(t, s, k1.ID, "m1", 5, 5, 2)
	// A raised quota gives more.
	takeFree(t, s, k1.ID, "m1", 5, 7, 2)
	// Returning more than was taken never goes below zero.
	if err := s.ReturnFreeImages(ctx, k1.ID, "m2", 100); err != nil {
		t.Fatal(err)
	}
	takeFree(t, s, k1.ID, "m2", 9, 5, 5)
	// Returning to a quota never touched is harmless.
	if err := s.ReturnFreeImages(ctx, k1.ID, "m9", 1); err != nil {
		t.Errorf("ReturnFreeImages(untouched model) = %v", err)
	}
	takeFree(t, s, k1.ID, "m9", 1, 1, 1)
	takeFree(t, s, k1.ID, "m1", 0, 5, 0)
}

func testFreeImagesConcurrent(t *testing.T, s store.Store) {
	k := withBudget(t, s, 1, "")
	const quota = 30
	var took atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			n, err := s.ConsumeFreeImages(t.Context(), k.ID, "m1", 1+i%3, quota)
			if err != nil {
				t.Errorf("ConsumeFreeImages: %v", err)
			}
			if n < 0 || n > 1+i%3 {
				t.Errorf("ConsumeFreeImages(n=%d) took %d", 1+i%3, n)
			}
			took.Add(int64(n))
		})
	}
	wg.Wait()
	if took.Load() != quota {
		t.Errorf("took %d free images in all; want the quota, %d", took.Load(), quota)
	}

	// Concurrent returns and takes balance out.
	for range 10 {
		wg.Go(func() {
			if err := s.ReturnFreeImages(t.Context(), k.ID, "m1", 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	took.Store(0)
	for range 20 {
		wg.Go(func() {
			n, err := s.ConsumeFreeImages(t.Context(), k.ID, "m1", 1, quota)
			if err != nil {
				t.Error(err)
			}
			took.Add(int64(n))
		})
	}
	wg.Wait()
	if took.Load() != 10 {
		t.Errorf("took %d after 10 were returned; want 10", took.Load())
	}
}

// Usage.

func event(i int, at time.Time, keyID, model, status string, delivered int, cost string) store.UsageEvent {
	return store.UsageEvent{
		RequestID: fmt.Sprintf("req_%04d", i),
		// Client ids are labels: several events may share one.
		ClientRequestID: fmt.Sprintf("client-%d", i%3),
		Time:            at,
		KeyID:           keyID,
		Model:           model,
		Provider:        "siliconflow",
		Channel:         "sf-main",
		Operation:       "generate",
		NRequested:      delivered + 1,
		NDelivered:      delivered,
		Width:           1024,
		Height:          768,
		Steps:           4,
		Cost:            money.MustParse(cost),
		Currency:        "USD",
		// The provider's cost is its own amount (here 75% of the price), in USD and in its
		// list currency.
		UpstreamCost:     money.MustParse(cost) * 3 / 4,
		UpstreamListCost: money.MustParse(cost) * 3 / 4 * 50 / 7,
		UpstreamCurrency: "CNY",
		Status:           status,
		ErrorKind:        map[string]string{store.StatusFailed: "upstream_error", store.StatusIndeterminate: "timeout"}[status],
		LatencyMS:        int64(1000 + i),
		UpstreamMS:       int64(900 + i),
	}
}

// ledger is a varied set of events over three UTC days, two keys, three models, three channels
// and two currencies, with times on the day boundaries; some are free upstream (no cost, a
// price) and some cost more than their price.
func ledger() []store.UsageEvent {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var evs []store.UsageEvent
	keys := []string{"key_0001", "key_0002"}
	models := []string{"flux-dev", "flux-schnell", "gpt-image-1"}
	channels := []string{"sf-main", "sf-backup", "ark"}
	statuses := []string{store.StatusOK, store.StatusOK, store.StatusFailed, store.StatusOK, store.StatusIndeterminate}
	offsets := []time.Duration{0, time.Hour, 12*time.Hour + 30*time.Minute, 24*time.Hour - time.Microsecond}
	i := 0
	for d := range 3 {
		for _, off := range offsets {
			for j := range 3 {
				i++
				st := statuses[i%len(statuses)]
				delivered, cost := 1+i%4, fmt.Sprintf("0.%06d", 3200*(1+i%4))
				if st == store.StatusFailed {
					delivered, cost = 0, "0"
				}
				e := event(i, day.AddDate(0, 0, d).Add(off).Add(time.Duration(j)*time.Millisecond),
					keys[i%2], models[i%3], st, delivered, cost)
				if i%11 == 0 {
					e.Currency = "CNY"
				}
				e.Channel = channels[(i/2)%len(channels)]
				switch i % 7 {
				case 1: // the upstream account's free quota paid
					e.UpstreamCost, e.UpstreamListCost = 0, 0
				case 4: // sold at a loss
					e.UpstreamCost = e.Cost + money.MustParse("0.0011")
				}
				evs = append(evs, e)
			}
		}
	}
	return evs
}

func insert(t *testing.T, s store.Store, evs []store.UsageEvent) {
	t.Helper()
	if err := s.InsertUsage(t.Context(), evs); err != nil {
		t.Fatalf("InsertUsage(%d events): %v", len(evs), err)
	}
}

func list(t *testing.T, s store.Store, f store.UsageFilter, limit int) []store.UsageEvent {
	t.Helper()
	evs, err := s.ListUsage(t.Context(), f, limit)
	if err != nil {
		t.Fatalf("ListUsage(%+v, %d): %v", f, limit, err)
	}
	return evs
}

func ids(evs []store.UsageEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.RequestID)
		b.WriteByte(' ')
	}
	return b.String()
}

// newestFirst is the order ListUsage returns: time descending, then request id descending.
func newestFirst(evs []store.UsageEvent) []store.UsageEvent {
	out := slices.Clone(evs)
	slices.SortFunc(out, func(a, b store.UsageEvent) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.RequestID, a.RequestID)
	})
	return out
}

func testUsageRoundTrip(t *testing.T, s store.Store) {
	want := event(1, base.In(time.FixedZone("X", -5*3600)), "key_0001", "flux-dev", store.StatusIndeterminate, 2, "0.0064")
	insert(t, s, []store.UsageEvent{want})
	got := list(t, s, store.UsageFilter{}, 0)
	if len(got) != 1 {
		t.Fatalf("ListUsage returned %d events, want 1", len(got))
	}
	want.Time = base
	if want.UpstreamCost != money.MustParse("0.0048") || want.UpstreamListCost != money.MustParse("0.034285") || want.UpstreamCurrency != "CNY" {
		t.Fatalf("the round-trip event's upstream cost is %s (%s %s); the test means to set it", want.UpstreamCost, want.UpstreamListCost, want.UpstreamCurrency)
	}
	if g, w := fmt.Sprintf("%+v", got[0]), fmt.Sprintf("%+v", want); g != w || got[0].Time.Location() != time.UTC {
		t.Errorf("event round trip:\n got %s (time in %v)\nwant %s", g, got[0].Time.Location(), w)
	}
	if err := s.InsertUsage(t.Context(), nil); err != nil {
		t.Errorf("InsertUsage(nil) = %v", err)
	}
}

func testUsageIdempotent(t *testing.T, s store.Store) {
	evs := ledger()
	insert(t, s, evs)
	insert(t, s, evs)
	// A replayed batch overlapping the ledger, with a duplicate inside the batch itself; the
	// first copy of a request id wins.
	changed := evs[0]
	changed.Cost = money.MustParse("99")
	extra := event(999, base, "key_0001", "flux-dev", store.StatusOK, 1, "1")
	insert(t, s, []store.UsageEvent{changed, extra, evs[5], extra})

	got := list(t, s, store.UsageFilter{}, 0)
	want := newestFirst(append(slices.Clone(evs), extra))
	if ids(got) != ids(want) {
		t.Fatalf("ledger after replays:\n got %s\nwant %s", ids(got), ids(want))
	}
	for _, e := range got {
		if e.RequestID == evs[0].RequestID && e.Cost != evs[0].Cost {
			t.Errorf("replay overwrote %s: cost %s, want %s", e.RequestID, e.Cost, evs[0].Cost)
		}
	}
}

func filter(evs []store.UsageEvent, f store.UsageFilter) []store.UsageEvent {
	var out []store.UsageEvent
	for _, e := range evs {
		if (f.KeyID == "" || e.KeyID == f.KeyID) && (f.Model == "" || e.Model == f.Model) &&
			(f.Since.IsZero() || !e.Time.Before(f.Since)) && (f.Until.IsZero() || e.Time.Before(f.Until)) {
			out = append(out, e)
		}
	}
	return out
}

func usageFilters() map[string]store.UsageFilter {
	day2 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	return map[string]store.UsageFilter{
		"all":           {},
		"key":           {KeyID: "key_0002"},
		"model":         {Model: "flux-schnell"},
		"key and model": {KeyID: "key_0001", Model: "gpt-image-1"},
		"since":         {Since: day2},
		"until":         {Until: day2},
		"one day":       {Since: day2, Until: day2.AddDate(0, 0, 1)},
		"everything":    {KeyID: "key_0001", Model: "flux-dev", Since: day2.Add(time.Hour), Until: day2.AddDate(0, 0, 1)},
		"no match":      {KeyID: "key_nope"},
		"empty window":  {Since: day2, Until: day2},
	}
}

func testListUsage(t *testing.T, s store.Store) {
	evs := ledger()
	insert(t, s, evs)
	for name, f := range usageFilters() {
		want := newestFirst(filter(evs, f))
		if got := list(t, s, f, 0); ids(got) != ids(want) {
			t.Errorf("%s: ListUsage(%+v):\n got %s\nwant %s", name, f, ids(got), ids(want))
		}
		if len(want) > 3 {
			if got := list(t, s, f, 3); ids(got) != ids(want[:3]) {
				t.Errorf("%s: ListUsage(limit 3):\n got %s\nwant %s", name, ids(got), ids(want[:3]))
			}
		}
	}
	all := list(t, s, store.UsageFilter{}, 0)
	byID := make(map[string]store.UsageEvent)
	for _, e := range evs {
		byID[e.RequestID] = e
	}
	for _, e := range all {
		if g, w := fmt.Sprintf("%+v", e), fmt.Sprintf("%+v", byID[e.RequestID]); g != w {
			t.Errorf("stored event differs:\n got %s\nwant %s", g, w)
		}
	}
}

func sums(evs []store.UsageEvent, groupBy string) []store.UsageGroup {
	idx := make(map[[2]string]*store.UsageGroup)
	var out []*store.UsageGroup
	for _, e := range evs {
		var g string
		switch groupBy {
		case store.GroupByDay:
			g = e.Time.UTC().Format(time.DateOnly)
		case store.GroupByModel:
			g = e.Model
		case store.GroupByKey:
			g = e.KeyID
		case store.GroupByChannel:
			g = e.Channel
		}
		u := idx[[2]string{g, e.Currency}]
		if u == nil {
			u = &store.UsageGroup{Group: g, Currency: e.Currency}
			idx[[2]string{g, e.Currency}] = u
			out = append(out, u)
		}
		u.Requests++
		u.Images += int64(e.NDelivered)
		u.Cost += e.Cost
		u.UpstreamCost += e.UpstreamCost
		switch e.Status {
		case store.StatusFailed:
			u.Failed++
		case store.StatusIndeterminate:
			u.Indeterminate++
		}
	}
	slices.SortFunc(out, func(a, b *store.UsageGroup) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.Currency, b.Currency)
	})
	res := make([]store.UsageGroup, len(out))
	for i, u := range out {
		res[i] = *u
	}
	return res
}

func testSumUsage(t *testing.T, s store.Store) {
	ctx := t.Context()
	evs := ledger()
	insert(t, s, evs)
	for name, f := range usageFilters() {
		for _, by := range []string{store.GroupByDay, store.GroupByModel, store.GroupByKey, store.GroupByChannel} {
			got, err := s.SumUsage(ctx, f, by)
			if err != nil {
				t.Fatalf("SumUsage(%s, %s): %v", name, by, err)
			}
			want := sums(filter(evs, f), by)
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
				t.Errorf("SumUsage(%s, by %s):\n got %s\nwant %s", name, by, g, w)
			}
		}
	}
	if _, err := s.SumUsage(ctx, store.UsageFilter{}, "week"); err == nil {
		t.Error("SumUsage(by week) succeeded; want an error")
	}
	// The ledger really spans three days with boundary times.
	if got, _ := s.SumUsage(ctx, store.UsageFilter{}, store.GroupByDay); len(got) < 3 || got[0].Group != "2026-11-20" {
		t.Errorf("SumUsage by day = %+v, want groups from 2026-11-20", got)
	}
}

// testSumUsageCostAndPrice: sums keep the keys' charges (Cost) and the providers' (UpstreamCost)
// apart, per channel; amounts computed by hand.
func testSumUsageCostAndPrice(t *testing.T, s store.Store) {
	withBudget(t, s, 1, "1")
	at := base.Add(-time.Hour)
	ev := func(id, channel, price, cost string) store.UsageEvent {
		return store.UsageEvent{RequestID: id, Time: at, KeyID: "key_0001", Model: "flux-dev", Provider: "siliconflow",
			Channel: channel, Operation: "generate", NRequested: 1, NDelivered: 1, Cost: money.MustParse(price), Currency: "USD",
			UpstreamCost: money.MustParse(cost), UpstreamListCost: money.MustParse(cost) * 7, UpstreamCurrency: "CNY", Status: store.StatusOK}
	}
	// Three events priced 0.01, 0.01 and 0.02 whose providers charge 0.008, 0 (free quota) and 0.015.
	insert(t, s, []store.UsageEvent{ev("r1", "sf-main", "0.01", "0.008"), ev("r2", "sf-main", "0.01", "0"), ev("r3", "ark", "0.02", "0.015")})
	got, err := s.SumUsage(t.Context(), store.UsageFilter{}, store.GroupByChannel)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.UsageGroup{
		{Group: "ark", Requests: 1, Images: 1, Cost: money.MustParse("0.02"), UpstreamCost: money.MustParse("0.015"), Currency: "USD"},
		{Group: "sf-main", Requests: 2, Images: 2, Cost: money.MustParse("0.02"), UpstreamCost: money.MustParse("0.008"), Currency: "USD"},
	}
	if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
		t.Errorf("SumUsage by channel:\n got %s\nwant %s", g, w)
	}
	got, err = s.SumUsage(t.Context(), store.UsageFilter{}, store.GroupByKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Cost != money.MustParse("0.04") || got[0].UpstreamCost != money.MustParse("0.023") {
		t.Errorf("SumUsage by key = %+v; want price 0.04, upstream cost 0.023", got)
	}
	// The key's spend is its price, never the provider's cost.
	b, err := s.Balance(t.Context(), "key_0001", store.PeriodTotal, total)
	if err != nil || b.Spent != money.MustParse("0.04") {
		t.Errorf("Balance = %+v, %v; want spent 0.04", b, err)
	}
}
