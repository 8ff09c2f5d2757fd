package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// BenchPlaceSettle migrates s, creates a key with a large budget and measures placing and
// settling one hold per iteration, from parallel goroutines (b.RunParallel), as request
// handlers do.
func BenchPlaceSettle(b *testing.B, s store.Store) {
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
			id := fmt.Sprintf("req_%d", n.Add(1))
			now := time.Now()
			if err := s.PlaceHold(ctx, store.Hold{ID: id, KeyID: "key_bench", Amount: money.MustParse("0.04"),
				CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
				b.Error(err)
				return
			}
			if err := s.SettleHold(ctx, id, "key_bench", time.Time{}, money.MustParse("0.04")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
