package frontdoor

import (
	"math"
	"testing"
)

func TestFanSeedWrapsIntoTheModelsRange(t *testing.T) {
	for _, tc := range []struct {
		seed   int64
		offset int
		lo, hi int64
		want   int64
	}{
		{42, 4, 0, 4294967295, 46},
		{4294967294, 4, 0, 4294967295, 2}, // wraps past the top: 4294967294+4 = 4294967298 → 2
		{math.MaxInt64 - 1, 4, 0, math.MaxInt64, 2},
		{math.MaxInt64, 1, 0, 0, 0}, // no range: 0..MaxInt64, never negative
		{-1, 4, 0, 0, -1},           // "random" (seed 004) is never offset
		{7, 3, 5, 9, 5},             // 7+3 = 10 → wraps to the bottom of 5..9
		{math.MinInt64, 2, math.MinInt64, math.MaxInt64, math.MinInt64 + 2},
		{math.MaxInt64, 1, math.MinInt64, math.MaxInt64, math.MinInt64},
	} {
		if got := fanSeed(tc.seed, tc.offset, tc.lo, tc.hi); got != tc.want {
			t.Errorf("fanSeed(%d, +%d, [%d, %d]) = %d, want %d", tc.seed, tc.offset, tc.lo, tc.hi, got, tc.want)
		}
		if got := fanSeed(tc.seed, tc.offset, tc.lo, tc.hi); (tc.lo != 0 || tc.hi != 0) && (got < tc.lo || got > tc.hi) {
			t.Errorf("fanSeed(%d, +%d) = %d, outside [%d, %d]", tc.seed, tc.offset, got, tc.lo, tc.hi)
		}
	}
}
