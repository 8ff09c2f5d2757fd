package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// BenchClaimSpend migrates s, creates a key with a large budget and measures one claim of a
// slice and one ledger write charging it per iteration, from parallel goroutines: what a
// replica does per slice (every few seconds of a key's spend), not per request.
func BenchClaimSpend(b *testing.B, s store.Store) {
	ctx := b.Context()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	budget := money.MustParse("1000000000")
	if err := s.CreateKey(ctx, &store.Key{ID: "key_bench", Hash: "bench", Budget: &budget}); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := n.Add(1)
			sl := store.Slice{ID: fmt.Sprintf("r%d", n), KeyID: "key_bench", Period: store.PeriodTotal}
			amount := money.MustParse("0.04")
			if _, err := s.ClaimSlice(ctx, sl, amount, amount, time.Minute); err != nil {
				b.Error(err)
				return
			}
			ev := store.UsageEvent{RequestID: fmt.Sprintf("req_%d", n), Time: time.Now(), KeyID: "key_bench",
				Cost: amount, Currency: "USD", Status: store.StatusOK, Slice: sl.ID}
			if err := s.InsertUsage(ctx, []store.UsageEvent{ev}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
