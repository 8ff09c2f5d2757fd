package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const (
	localShards = 64
	// sweepEvery is how many admissions a shard takes between sweeps of its idle subjects.
	sweepEvery = 4096
)

// LocalOptions configure a Local limiter.
type LocalOptions struct {
	// Metrics records decisions and leases; nil records nothing.
	Metrics *Metrics
	// Clock returns the current time; nil means time.Now. Tests step it to test refill and expiry.
	Clock func() time.Time
}

// Local is the in-process Limiter: the embedded default for one gateway, and the fallback of the
// Redis limiter under fail-open. It has the same semantics as Redis, on the process's monotonic
// clock, and its limits hold per process only.
//
// Memory is proportional to the subjects with a partly drained bucket or a lease in flight; idle
// subjects are swept as admissions go on.
type Local struct {
	clock   func() time.Time
	base    time.Time
	metrics *Metrics
	seed    maphash.Seed
	nextID  atomic.Uint64
	// sweepEvery is how many admissions a shard takes between sweeps (tests lower it).
	sweepEvery int
	shards     [localShards]localShard
}

type localShard struct {
	mu       sync.Mutex
	subjects map[Subject]*localState
	ops      int
}

type localState struct {
	tat    [len(rateDims)]float64 // µs since Local.base
	leases map[uint64]float64     // lease id → expiry, µs since Local.base
	// minExp is at most the earliest lease expiry, so purge scans only when one may be due.
	minExp float64
}

// NewLocal returns an in-process limiter.
func NewLocal(opts LocalOptions) *Local {
	l := &Local{clock: opts.Clock, metrics: opts.Metrics, seed: maphash.MakeSeed(), sweepEvery: sweepEvery}
	if l.clock == nil {
		l.clock = time.Now
	}
	l.base = l.clock()
	for i := range l.shards {
		l.shards[i].subjects = make(map[Subject]*localState)
	}
	return l
}

var _ Limiter = (*Local)(nil)

// Admit implements Limiter.
func (l *Local) Admit(ctx context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, err
	}
	d := l.decide(&req)
	class := req.Subject.Class()
	l.metrics.decision(class, &d, backendLocal)
	if d.Grant != nil && d.Grant.hasLease {
		l.metrics.leaseHeld(class, 1)
	}
	return d, nil
}

// GiveBack implements Limiter.
func (l *Local) GiveBack(ctx context.Context, g *Grant, cost Cost) error {
	if g == nil {
		return nil
	}
	l.giveBack(g, g.takeBack(cost))
	return nil
}

// Renew implements Limiter.
func (l *Local) Renew(ctx context.Context, g *Grant) error {
	if g == nil || !g.hasLease {
		return nil
	}
	return l.renew(g)
}

// Release implements Limiter.
func (l *Local) Release(ctx context.Context, g *Grant) error {
	if g == nil || !g.hasLease || g.released.Swap(true) {
		return nil
	}
	l.metrics.leaseHeld(g.subject.Class(), -1)
	l.release(g)
	return nil
}

func (l *Local) now() float64 { return float64(l.clock().Sub(l.base)) / float64(time.Microsecond) }

func (l *Local) shard(s Subject) *localShard {
	return &l.shards[maphash.String(l.seed, string(s))%localShards]
}

// decide is Admit without validation and metrics; the Redis limiter's fallback calls it too.
func (l *Local) decide(req *Request) Decision {
	now := l.now()
	sh := l.shard(req.Subject)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.ops++
	if sh.ops >= l.sweepEvery {
		sh.sweep(now)
	}

	st := sh.subjects[req.Subject]
	var d Decision
	var newTAT [len(rateDims)]float64
	ok, store := true, false
	for i, dim := range rateDims {
		r := req.Limits.rate(dim)
		if !r.Limited() {
			continue
		}
		var tat float64
		if st != nil {
			tat = st.tat[i]
		}
		nt, fits, q := newGCRA(r).check(tat, now, req.Cost.of(dim))
		q.Limit = r.Count
		*d.quota(dim) = q
		newTAT[i] = nt
		ok = ok && fits
		store = store || req.Cost.of(dim) > 0
	}
	if c := req.Limits.Concurrency; c > 0 {
		var used int64
		if st != nil {
			st.purge(now)
			used = int64(len(st.leases))
		}
		d.Concurrency.Limit = c
		if used < c {
			d.Concurrency.Remaining = c - used - 1
		} else {
			d.Concurrency.Refused = true
			ok = false
		}
		store = true
	}
	d.Allowed = ok
	if !ok {
		// Nothing is charged, so the dimensions that fit report their uncharged state.
		for i, dim := range rateDims {
			if r := req.Limits.rate(dim); r.Limited() && !d.quota(dim).Refused {
				var tat float64
				if st != nil {
					tat = st.tat[i]
				}
				q := newGCRA(r).uncharged(tat, now)
				q.Limit = r.Count
				*d.quota(dim) = q
			}
		}
		d.finish(req)
		return d
	}

	g := &Grant{subject: req.Subject, limits: req.Limits, leaseTTL: req.leaseTTL(), charged: req.Cost}
	d.Grant = g
	if !store {
		return d
	}
	if st == nil {
		st = &localState{}
		sh.subjects[req.Subject] = st
	}
	for i, dim := range rateDims {
		if req.Limits.rate(dim).Limited() && req.Cost.of(dim) > 0 {
			st.tat[i] = newTAT[i]
		}
	}
	if req.Limits.Concurrency > 0 {
		if st.leases == nil {
			st.leases = make(map[uint64]float64)
		}
		g.hasLease = true
		g.localID = l.nextID.Add(1)
		exp := now + float64(g.leaseTTL/time.Microsecond)
		st.leases[g.localID] = exp
		if len(st.leases) == 1 || exp < st.minExp {
			st.minExp = exp
		}
	}
	return d
}

func (l *Local) giveBack(g *Grant, c Cost) {
	if c.isZero() {
		return
	}
	now := l.now()
	sh := l.shard(g.subject)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.subjects[g.subject]
	if st == nil {
		return // swept: the bucket is already full
	}
	for i, dim := range rateDims {
		if r := g.limits.rate(dim); r.Limited() && c.of(dim) > 0 && st.tat[i] > now {
			st.tat[i] = newGCRA(r).giveBack(st.tat[i], now, c.of(dim))
		}
	}
}

func (l *Local) renew(g *Grant) error {
	if g.released.Load() {
		return ErrLeaseLost
	}
	now := l.now()
	sh := l.shard(g.subject)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.subjects[g.subject]
	if st == nil {
		return ErrLeaseLost
	}
	exp, ok := st.leases[g.localID]
	if !ok || exp <= now {
		delete(st.leases, g.localID)
		return ErrLeaseLost
	}
	st.leases[g.localID] = now + float64(g.leaseTTL/time.Microsecond)
	return nil
}

func (l *Local) release(g *Grant) {
	sh := l.shard(g.subject)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st := sh.subjects[g.subject]; st != nil {
		delete(st.leases, g.localID)
	}
}

// purge drops expired leases.
func (st *localState) purge(now float64) {
	if len(st.leases) == 0 || st.minExp > now {
		return
	}
	first := true
	for id, exp := range st.leases {
		switch {
		case exp <= now:
			delete(st.leases, id)
		case first || exp < st.minExp:
			st.minExp, first = exp, false
		}
	}
}

// sweep forgets subjects whose buckets are full and that hold no lease.
func (sh *localShard) sweep(now float64) {
	sh.ops = 0
	for s, st := range sh.subjects {
		st.purge(now)
		if len(st.leases) > 0 {
			continue
		}
		idle := true
		for _, tat := range st.tat {
			if tat > now {
				idle = false
				break
			}
		}
		if idle {
			delete(sh.subjects, s)
		}
	}
}
