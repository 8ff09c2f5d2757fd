package ratelimit

import (
	"math"
	"time"
)

// gcra is the generic cell rate algorithm for one Rate, in microseconds. A subject's state per
// dimension is its theoretical arrival time (TAT): the instant its bucket would be full again. A
// cost c fits if max(TAT, now) + c·T − now ≤ burst·T, where T = Period/Count is the time one unit
// takes to refill.
//
// The Lua script in scripts.go is a line-by-line copy of this arithmetic on Redis's clock; both
// use IEEE doubles, so the Redis and Local limiters agree to the microsecond.
type gcra struct {
	t    float64 // emission interval: µs per unit
	boff float64 // burst offset: burst·T
	tol  float64 // rounding tolerance, well under one unit
}

func newGCRA(r Rate) gcra {
	t := float64(r.Period/time.Microsecond) / float64(r.Count)
	return gcra{t: t, boff: t * float64(r.burst()), tol: math.Min(1, t/4)}
}

// check reports whether cost fits at now given the stored tat, the TAT to store if it is charged,
// and the dimension's Quota (Limit is left to the caller).
func (g gcra) check(tat, now float64, cost int64) (newTAT float64, ok bool, q Quota) {
	if tat < now {
		tat = now
	}
	nt := tat + g.t*float64(cost)
	if nt-now <= g.boff+g.tol {
		q.Remaining = int64(math.Floor((g.boff - (nt - now) + g.tol) / g.t))
		q.Reset = micros(math.Ceil(nt - now))
		return nt, true, q
	}
	q = g.uncharged(tat, now)
	q.Refused = true
	q.RetryAfter = micros(math.Ceil(nt - now - g.boff))
	return tat, false, q
}

// uncharged is the Quota of a dimension nothing was charged to.
func (g gcra) uncharged(tat, now float64) Quota {
	if tat < now {
		tat = now
	}
	return Quota{
		Remaining: max(int64(math.Floor((g.boff-(tat-now)+g.tol)/g.t)), 0),
		Reset:     micros(math.Ceil(tat - now)),
	}
}

// giveBack returns the TAT after refunding cost units, never earlier than now.
func (g gcra) giveBack(tat, now float64, cost int64) float64 {
	return math.Max(tat-g.t*float64(cost), now)
}

func micros(us float64) time.Duration { return time.Duration(us) * time.Microsecond }
