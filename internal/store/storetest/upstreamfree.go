package storetest

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imagegw/imagegw/internal/store"
)

// testUpstreamFree: a channel's free pool for an upstream model hands out exactly its quota
// under concurrency, whoever asks; pools of other channels and models are separate, and
// channels need no key.
func testUpstreamFree(t *testing.T, s store.Store) {
	const quota = 10
	var took atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			n, err := s.ConsumeUpstreamFree(t.Context(), "mv", "black-forest-labs/FLUX.1-dev", 1+i%4, quota)
			if err != nil {
				t.Errorf("ConsumeUpstreamFree: %v", err)
			}
			if n < 0 || n > 1+i%4 {
				t.Errorf("ConsumeUpstreamFree(n=%d) took %d", 1+i%4, n)
			}
			took.Add(int64(n))
		})
	}
	wg.Wait()
	if took.Load() != quota {
		t.Errorf("took %d free images in all; want the quota, %d", took.Load(), quota)
	}
	for _, c := range []struct {
		channel, model string
		n, want        int
	}{
		{"mv", "black-forest-labs/FLUX.1-dev", 3, 0},
		{"mv-2", "black-forest-labs/FLUX.1-dev", 3, 3},
		{"mv", "stepfun-ai/Step1X-Edit", 7, 5},
		{"mv", "none", 0, 0},
	} {
		quota := 5
		if c.model == "black-forest-labs/FLUX.1-dev" {
			quota = 10
		}
		if n, err := s.ConsumeUpstreamFree(t.Context(), c.channel, c.model, c.n, quota); err != nil || n != c.want {
			t.Errorf("ConsumeUpstreamFree(%s, %s, %d) = %d, %v; want %d", c.channel, c.model, c.n, n, err, c.want)
		}
	}
}
