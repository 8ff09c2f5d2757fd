package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
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
	// With a Clock set, leases are not renewed in the background (nothing would move the clock
	// between ticks); tests drive the renewal themselves.
	Clock func() time.Time
	// LeaseTTL is the lease TTL of requests that set none; 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
}

// Local is the in-process Limiter: the embedded default for one gateway, and the fallback of the
// Redis limiter under fail-open. It has the same semantics as Redis, on the process's monotonic
// clock, and its limits hold per process only.
//
// Memory is proportional to the subjects with a partly drained bucket or a lease in flight; idle
// subjects are swept as admissions go on.
//
// Leases are renewed by one background goroutine (started with the first lease) while their
// grants are live; Close stops it.
type Local struct {
	clock    func() time.Time
	base     time.Time
	metrics  *Metrics
	leaseTTL time.Duration
	keeper   *keeper
	seed     maphash.Seed
	nextID   atomic.Uint64
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
	l := &Local{clock: opts.Clock, metrics: opts.Metrics, leaseTTL: opts.LeaseTTL, seed: maphash.MakeSeed(),
		sweepEvery: sweepEvery}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.leaseTTL <= 0 {
		l.leaseTTL = DefaultLeaseTTL
	}
	l.base = l.clock()
	l.keeper = newKeeper(l.clock, l.base, l.metrics, l, opts.Clock != nil)
	for i := range l.shards {
		l.shards[i].subjects = make(map[Subject]*localState)
	}
	return l
}

var _ Limiter = (*Local)(nil)

// Close stops renewing leases. The leases still held then expire within their TTL, as if the
// process had died. Close is idempotent; the limiter still admits afterwards, without renewal.
func (l *Local) Close() error {
	l.keeper.close()
	return nil
}

// Admit implements Limiter.
func (l *Local) Admit(ctx context.Context, req Request) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, err
	}
	req.defaultLeaseTTL(l.leaseTTL)
	d := l.decide(&req)
	l.metrics.decision(req.Subject.Class(), &d, backendLocal)
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
	if g == nil || g.lease == nil {
		return nil
	}
	return l.renew(g)
}

// Release implements Limiter.
func (l *Local) Release(ctx context.Context, g *Grant) error {
	if g == nil || g.lease == nil || !l.keeper.unregister(g.lease, leaseReleased) {
		return nil
	}
	l.releaseLeases([]*lease{g.lease})
	return nil
}

// elapsedUS is t in µs since l.base, the unit of the Local's state.
func (l *Local) elapsedUS(t time.Time) float64 {
	return float64(t.Sub(l.base)) / float64(time.Microsecond)
}

func (l *Local) now() float64 { return l.elapsedUS(l.clock()) }

func (l *Local) shardIndex(s Subject) uint64 { return maphash.String(l.seed, string(s)) % localShards }

func (l *Local) shard(s Subject) *localShard { return &l.shards[l.shardIndex(s)] }

// decide is Admit without validation and metrics; the Redis limiter's fallback calls it too.
// req.LeaseTTL must be set.
func (l *Local) decide(req *Request) Decision {
	t := l.clock()
	now := l.elapsedUS(t)
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
			d.Concurrency.RetryAfter = micros(math.Ceil(st.earliest() - now))
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
		g.lease = &lease{subject: req.Subject, localID: l.nextID.Add(1), ttl: g.leaseTTL}
		exp := now + float64(g.leaseTTL/time.Microsecond)
		st.leases[g.lease.localID] = exp
		if len(st.leases) == 1 || exp < st.minExp {
			st.minExp = exp
		}
		at := l.keeper.at(t)
		l.keeper.register(g, g.lease, at, at)
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
	le := g.lease
	if le.state.Load() != leaseLive {
		return ErrLeaseLost
	}
	status, sent, recv := l.renewLeases([]*lease{le})
	if status[0] != 1 {
		l.keeper.lost(le)
		return ErrLeaseLost
	}
	le.renewed(sent, recv)
	return nil
}

// renewLeases implements leaseBackend: one lock per shard for the whole batch.
func (l *Local) renewLeases(ls []*lease) ([]int8, int64, int64) {
	t := l.clock()
	now, at := l.elapsedUS(t), l.keeper.at(t)
	status := make([]int8, len(ls))
	var byShard [localShards][]int
	for i, le := range ls {
		s := l.shardIndex(le.subject)
		byShard[s] = append(byShard[s], i)
	}
	for s, idx := range byShard {
		if len(idx) == 0 {
			continue
		}
		sh := &l.shards[s]
		sh.mu.Lock()
		for _, i := range idx {
			le := ls[i]
			st := sh.subjects[le.subject]
			if st == nil {
				continue // status 0: lost
			}
			exp, ok := st.leases[le.localID]
			if !ok || exp <= now {
				delete(st.leases, le.localID)
				continue
			}
			st.leases[le.localID] = now + float64(le.ttl/time.Microsecond)
			status[i] = 1
		}
		sh.mu.Unlock()
	}
	return status, at, at
}

// releaseLeases implements leaseBackend; an in-process release cannot fail.
func (l *Local) releaseLeases(ls []*lease) []bool {
	ok := make([]bool, len(ls))
	for i, le := range ls {
		sh := l.shard(le.subject)
		sh.mu.Lock()
		if st := sh.subjects[le.subject]; st != nil {
			delete(st.leases, le.localID)
		}
		sh.mu.Unlock()
		ok[i] = true
	}
	return ok
}

// earliest returns the earliest lease expiry (µs since Local.base), or 0 without leases.
func (st *localState) earliest() float64 {
	first, e := true, 0.0
	for _, exp := range st.leases {
		if first || exp < e {
			first, e = false, exp
		}
	}
	return e
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
