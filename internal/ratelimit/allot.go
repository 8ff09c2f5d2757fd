package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Allotments: admission without a Redis round trip per request, for subjects whose limits are
// roomy compared with one process's share of them.
//
// A Redis limiter with allotments on (RedisOptions.AllotWindow) charges a subject in Redis for a
// part of its limits ahead of use: units of each limited rate dimension (the GCRA's TAT moves as
// if those units were admitted) and concurrency leases (members of the subject's inflight set,
// renewed by the keeper like any lease). It then admits the subject's requests from that
// allotment in memory; a request's concurrency slot is one of the allotment's leases, and its
// Release puts the lease back; GiveBack puts units back. The allotment is refilled (one script
// call, in the background once it is half used by a busy subject) and sized to about one window
// of the subject's recent demand in this process, never more than 1/allotShare of any limit.
//
// Exactness: every unit and lease is charged in Redis before it is handed out, so all processes
// together never admit more than a limit. They may admit fewer: a process's unused allotment
// (at most 1/allotShare of each limit: released leases and given-back units beyond that go back
// to Redis at once) counts as spent for the others until it is given back,
// which happens once the subject has been idle for allotIdle, when a refill is refused, and on
// Close. A process that dies leaves its allotment to run out by itself: unused rate units are
// refilled by the GCRA at the limit's rate, its leases expire within the lease TTL.
//
// Near a limit the allotment path steps aside: a subject whose limits are too small for it
// (1/allotShare of a limit below allotMinUnits), a request whose cost exceeds 1/allotShare, or a
// refill that does not fit sends the subject's requests through the exact path (one script call
// per admission, coalesced) for allotIdle, with its allotment given back first. So a refusal,
// its Retry-After and its x-ratelimit-* numbers are always the exact path's. An admission from
// an allotment reports Remaining as Redis's remaining at the last refill plus what the allotment
// still holds, and Reset as of the last refill.
const (
	// DefaultAllotWindow is how much of a subject's recent demand an allotment is sized for.
	DefaultAllotWindow = 250 * time.Millisecond
	// allotShare: an allotment holds at most 1/allotShare of each of the subject's limits.
	allotShare = 16
	// allotMinUnits is the smallest allotment worth holding, per limited dimension.
	allotMinUnits = 4
	// allotIdle is how long an allotment is kept unused before it is given back, and how long a
	// subject whose refill did not fit stays on the exact path.
	allotIdle = time.Second
)

// allotter is a Redis limiter's allotments, one per subject.
type allotter struct {
	r      *Redis
	window time.Duration

	mu     sync.Mutex
	m      map[Subject]*allotment
	closed bool
}

// allotment is one subject's allotment in this process.
type allotment struct {
	al      *allotter
	subject Subject
	limits  Limits
	ttl     time.Duration
	// owner holds the allotment's leases for the keeper (which keeps a weak pointer to it); it is
	// never handed out.
	owner *Grant

	mu     sync.Mutex
	closed bool      // given back for good (replaced, idle, or the limiter closed)
	tight  time.Time // until then, the exact path decides
	units  [3]int64  // charged in Redis, not handed out, per rate dimension
	free   []*lease  // leases held in Redis, not in use
	used   int64     // leases in use by requests
	refill *refillCall
	// waiting is what admissions waiting for a refill need.
	waiting demand
	// cur and prev are what was taken in the current and the previous window (demand).
	cur, prev  demand
	curStart   time.Time
	lastRefill time.Time
	lastSize   int64 // requests the last refill was sized for
	lastUse    time.Time
	timer      *time.Timer
	// Redis's state after the last refill, for the admissions' quotas.
	remain  [3]int64
	reset   [3]time.Duration
	cremain int64
}

type demand struct {
	n     int64
	units [3]int64
}

func (d *demand) add(req *Request, sign int64) {
	d.n += sign
	for i, dim := range rateDims {
		d.units[i] += sign * req.Cost.of(dim)
	}
}

// refillCall is one refill in flight; waiters read err once done is closed.
type refillCall struct {
	done chan struct{}
	err  error
}

// poolSlot ties a request's grant to the allotment lease it holds. It is shared with the
// grant's cleanup, so a grant dropped without Release still gives its lease back.
type poolSlot struct {
	a    *allotment
	l    *lease
	done atomic.Bool
}

func newAllotter(r *Redis, window time.Duration) *allotter {
	return &allotter{r: r, window: window, m: map[Subject]*allotment{}}
}

// allottable reports whether req may be admitted from an allotment: every limit it has holds at
// least allotMinUnits in 1/allotShare, its cost fits in that, and its lease TTL is the limiter's.
func allottable(req *Request, ttl time.Duration) bool {
	lim := &req.Limits
	limited := false
	for _, dim := range rateDims {
		rt := lim.rate(dim)
		if !rt.Limited() {
			continue
		}
		limited = true
		share := rt.burst() / allotShare
		if share < allotMinUnits || req.Cost.of(dim) > share {
			return false
		}
	}
	if lim.Concurrency > 0 {
		limited = true
		if lim.Concurrency/allotShare < allotMinUnits || req.leaseTTL() != ttl {
			return false
		}
	}
	return limited
}

// admit decides req from its subject's allotment. ok false means the exact path decides; err is
// a refill's Redis failure (or the open circuit), for the failure policy.
func (al *allotter) admit(ctx context.Context, req *Request) (d Decision, ok bool, err error) {
	if al == nil || !allottable(req, al.r.leaseTTL) {
		return d, false, nil
	}
	a, old := al.get(req)
	if old != nil {
		old.giveBack()
	}
	if a == nil {
		return d, false, nil
	}
	return a.admit(ctx, req)
}

// get returns req's subject's allotment, making it if needed. If the subject's limits changed,
// the allotment made for the old ones is returned as old, closed, for the caller to give back.
func (al *allotter) get(req *Request) (a, old *allotment) {
	al.mu.Lock()
	defer al.mu.Unlock()
	if al.closed {
		return nil, nil
	}
	a = al.m[req.Subject]
	if a != nil && a.limits == req.Limits {
		return a, nil
	}
	if a != nil {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		old = a
	}
	a = &allotment{al: al, subject: req.Subject, limits: req.Limits, ttl: al.r.leaseTTL,
		owner: &Grant{subject: req.Subject, limits: req.Limits, leaseTTL: al.r.leaseTTL}}
	al.m[req.Subject] = a
	return a, old
}

// close gives every allotment back (Redis.Close calls it before flushing releases).
func (al *allotter) close() {
	if al == nil {
		return
	}
	al.mu.Lock()
	al.closed = true
	all := make([]*allotment, 0, len(al.m))
	var refills []*refillCall
	for s, a := range al.m {
		a.mu.Lock()
		a.closed = true
		if a.refill != nil {
			refills = append(refills, a.refill)
		}
		a.mu.Unlock()
		all = append(all, a)
		delete(al.m, s)
	}
	al.mu.Unlock()
	for _, call := range refills {
		<-call.done // within the limiter's timeout; such a refill gives back what it got
	}
	// One pipeline for every subject's units (the releaser batches the leases), so closing
	// takes one round trip, not one per subject, and at most the batch timeout if Redis hangs.
	var calls []scriptCall
	for _, a := range all {
		if c := a.takeAll(); !c.isZero() {
			calls = append(calls, a.giveBackCall(c))
		}
	}
	al.r.runBatch("give_back", giveBackScript, calls)
}

func (a *allotment) admit(ctx context.Context, req *Request) (Decision, bool, error) {
	a.mu.Lock()
	waiting := false
	defer func() {
		if waiting {
			a.mu.Lock()
			a.waiting.add(req, -1)
			a.mu.Unlock()
		}
	}()
	for {
		now := time.Now()
		if a.closed || now.Before(a.tight) {
			a.mu.Unlock()
			return Decision{}, false, nil
		}
		if a.fits(req) {
			d := a.take(req, now)
			a.refillEarly(now)
			a.mu.Unlock()
			return d, true, nil
		}
		if !waiting {
			waiting = true
			a.waiting.add(req, 1)
		}
		call := a.refill
		if call == nil {
			call = a.startRefill(now)
			a.mu.Unlock()
			a.runRefill(call)
		} else {
			a.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return Decision{}, false, fmt.Errorf("redis: %w", ctx.Err())
			}
		}
		if call.err != nil {
			return Decision{}, false, call.err
		}
		a.mu.Lock()
	}
}

// fits reports whether the allotment holds req's cost and, if it needs one, a live lease.
// a.mu is held.
func (a *allotment) fits(req *Request) bool {
	for i, dim := range rateDims {
		if a.limits.rate(dim).Limited() && a.units[i] < req.Cost.of(dim) {
			return false
		}
	}
	if a.limits.Concurrency > 0 {
		for len(a.free) > 0 && a.free[len(a.free)-1].state.Load() != leaseLive {
			a.free = a.free[:len(a.free)-1] // lost: the keeper dropped it
		}
		if len(a.free) == 0 {
			return false
		}
	}
	return true
}

// take admits req from the allotment. a.mu is held and fits(req) is true.
func (a *allotment) take(req *Request, now time.Time) Decision {
	a.roll(now)
	a.cur.add(req, 1)
	a.lastUse = now
	d := Decision{Allowed: true}
	for i, dim := range rateDims {
		rt := a.limits.rate(dim)
		if !rt.Limited() {
			continue
		}
		a.units[i] -= req.Cost.of(dim)
		*d.quota(dim) = Quota{Limit: rt.Count, Remaining: a.remain[i] + a.units[i], Reset: a.reset[i]}
	}
	g := &Grant{subject: a.subject, limits: a.limits, leaseTTL: a.ttl, charged: req.Cost, pool: a}
	if a.limits.Concurrency > 0 {
		l := a.free[len(a.free)-1]
		a.free[len(a.free)-1] = nil
		a.free = a.free[:len(a.free)-1]
		a.used++
		g.lease = l
		g.slot = &poolSlot{a: a, l: l}
		runtime.AddCleanup(g, (*poolSlot).abandoned, g.slot)
		d.Concurrency = Quota{Limit: a.limits.Concurrency, Remaining: a.cremain + int64(len(a.free))}
	}
	d.Grant = g
	a.armIdle()
	return d
}

// roll moves the demand windows forward to now. a.mu is held.
func (a *allotment) roll(now time.Time) {
	w := a.al.window
	switch since := now.Sub(a.curStart); {
	case since < w:
	case since < 2*w:
		a.prev, a.cur, a.curStart = a.cur, demand{}, a.curStart.Add(w)
	default:
		a.prev, a.cur, a.curStart = demand{}, demand{}, now
	}
}

// refillEarly starts a background refill when a busy subject has used half of what a window of
// its demand needs, so its admissions need not wait for one. a.mu is held.
func (a *allotment) refillEarly(now time.Time) {
	if a.refill != nil {
		return
	}
	k := max(a.cur.n, a.prev.n)
	if k < 2 {
		return
	}
	low := a.limits.Concurrency > 0 && int64(len(a.free)) < k/2
	for i, dim := range rateDims {
		if a.limits.rate(dim).Limited() && a.units[i] < a.perRequest(i)*k/2 {
			low = true
		}
	}
	if low {
		go a.runRefill(a.startRefill(now))
	}
}

// perRequest is the recent mean cost of a request in dimension i, rounded up (0 without
// history: a first refill is sized by what the waiting admissions need). a.mu is held.
func (a *allotment) perRequest(i int) int64 {
	n := a.cur.n + a.prev.n
	if n == 0 {
		return 0
	}
	return (a.cur.units[i] + a.prev.units[i] + n - 1) / n
}

// refillSize is what the next refill asks for: a window of the recent demand (doubling while
// refills follow each other within a window, as the demand ramps up), at least what the waiting
// admissions need, never more than 1/allotShare of a limit held at once.
type refillSize struct {
	units  [3]int64
	leases int64
}

// startRefill marks a refill in flight and sizes it. a.mu is held.
func (a *allotment) startRefill(now time.Time) *refillCall {
	a.roll(now)
	k := max(a.cur.n, a.prev.n, a.waiting.n, 1)
	if now.Sub(a.lastRefill) < a.al.window {
		k = max(k, 2*a.lastSize)
	}
	a.lastRefill, a.lastSize = now, k
	call := &refillCall{done: make(chan struct{})}
	a.refill = call
	return call
}

// size turns the refill's request count into units and leases. a.mu is held.
func (a *allotment) size() refillSize {
	var s refillSize
	k := a.lastSize
	for i, dim := range rateDims {
		rt := a.limits.rate(dim)
		if !rt.Limited() {
			continue
		}
		want := max(k*a.perRequest(i), a.waiting.units[i]) - a.units[i]
		s.units[i] = max(min(want, rt.burst()/allotShare-a.units[i]), 0)
	}
	if c := a.limits.Concurrency; c > 0 {
		free := int64(len(a.free))
		want := max(k, a.waiting.n) - free
		s.leases = max(min(want, c/allotShare-free), 0)
	}
	return s
}

// runRefill charges Redis for one refill and adds it to the allotment; if it does not fit, the
// subject goes to the exact path for allotIdle and its allotment is given back. It closes
// call.done when the allotment is settled.
func (a *allotment) runRefill(call *refillCall) {
	r := a.al.r
	a.mu.Lock()
	s := a.size()
	a.mu.Unlock()
	defer close(call.done)
	if !r.breaker.allow() {
		a.endRefill(call, errCircuitOpen)
		return
	}
	ls := make([]*lease, s.leases)
	var freeing []*lease
	if s.leases > 0 {
		freeing = r.unconfirmedReleases(a.subject)
	}
	args := make([]any, 0, 1+len(freeing)+14+len(ls))
	args = append(args, len(freeing))
	for _, l := range freeing {
		args = append(args, l.id)
	}
	args = appendRateArgs(args, &a.limits, s.units)
	args = append(args, a.limits.Concurrency, int64(a.ttl/time.Microsecond))
	for i := range ls {
		ls[i] = &lease{subject: a.subject, id: r.idPrefix + strconv.FormatUint(r.idSeq.Add(1), 36), ttl: a.ttl}
		args = append(args, ls[i].id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	start := time.Now()
	res, err := allotScript.Run(ctx, r.client, r.keys(a.subject), args...).Int64Slice()
	cancel()
	end := time.Now()
	if err == nil && len(res) != 1+3*len(rateDims)+2 {
		err = fmt.Errorf("unexpected reply of %d values to an allotment", len(res))
	}
	r.metrics.redisCall("allot", end.Sub(start), err)
	if err != nil {
		r.failed("allot", err)
		for _, l := range ls {
			r.releaseUnsure(l, end)
		}
		a.endRefill(call, fmt.Errorf("redis: %w", err))
		return
	}
	r.succeeded()
	for _, l := range freeing {
		l.freed.Store(true)
	}
	granted := min(max(res[1+3*len(rateDims)], 0), int64(len(ls)))
	sent, recv := r.keeper.at(start), r.keeper.at(end)
	for _, l := range ls[:granted] {
		r.keeper.register(a.owner, l, sent, recv)
	}
	a.mu.Lock()
	fits := res[0] == 1 && granted == s.leases
	if res[0] == 1 {
		for i := range rateDims {
			a.units[i] += s.units[i]
			a.remain[i] = res[1+3*i]
			a.reset[i] = time.Duration(res[2+3*i]) * time.Microsecond
		}
	}
	a.cremain = res[2+3*len(rateDims)]
	a.free = append(a.free, ls[:granted]...)
	// Releases and give-backs that came in while the refill was out may have filled it.
	excess, over := a.trimLeases(), a.trimUnits()
	if !fits {
		a.tight = end.Add(allotIdle)
	}
	a.refill = nil
	a.armIdle()
	closed := a.closed // replaced or closed meanwhile: what this refill charged goes back now
	a.mu.Unlock()
	a.sendBack(excess, over)
	if !fits || closed {
		a.giveBack()
	}
}

// endRefill ends a refill that failed.
func (a *allotment) endRefill(call *refillCall, err error) {
	call.err = err
	a.mu.Lock()
	a.refill = nil
	a.mu.Unlock()
}

// armIdle makes sure the idle check is scheduled while the allotment holds anything. a.mu is
// held.
func (a *allotment) armIdle() {
	if a.timer == nil && !a.closed {
		a.timer = time.AfterFunc(allotIdle, a.idleCheck)
	}
}

// idleCheck gives the allotment back once the subject has been idle for allotIdle, and forgets
// the allotment once nothing of it is in use.
func (a *allotment) idleCheck() {
	al := a.al
	al.mu.Lock()
	a.mu.Lock()
	idle := time.Since(a.lastUse)
	if idle < allotIdle && !a.closed {
		a.timer.Reset(allotIdle - idle)
		a.mu.Unlock()
		al.mu.Unlock()
		return
	}
	a.timer = nil
	if a.used == 0 && a.refill == nil && al.m[a.subject] == a {
		a.closed = true
		delete(al.m, a.subject)
	} else if a.used > 0 || a.refill != nil {
		a.armIdle() // look again later
	}
	a.mu.Unlock()
	al.mu.Unlock()
	a.giveBack()
}

// giveBack returns the allotment's unused units and free leases to Redis.
func (a *allotment) giveBack() { a.sendBack(nil, a.takeAll()) }

// takeAll empties the allotment: its free leases go to the releaser, and the units it held are
// returned for the caller to give back to Redis.
func (a *allotment) takeAll() Cost {
	a.mu.Lock()
	units, free := a.units, a.free
	a.units, a.free = [3]int64{}, nil
	a.mu.Unlock()
	for _, l := range free {
		a.al.r.releaseLease(l)
	}
	return costOf(units)
}

// giveBackCall is the give-back script call that returns c to a's subject, for a batch.
func (a *allotment) giveBackCall(c Cost) scriptCall {
	return scriptCall{keys: a.al.r.keys(a.subject)[:3], args: giveBackArgs(&a.limits, c)}
}

// trimLeases and trimUnits cut the allotment down to 1/allotShare of each limit held unused and
// return what is beyond that, for sendBack: a burst this process served must not keep the other
// processes from the limit once it is over. a.mu is held.
func (a *allotment) trimLeases() (excess []*lease) {
	if c := a.limits.Concurrency; c > 0 && int64(len(a.free)) > c/allotShare {
		n := len(a.free) - int(c/allotShare)
		excess = slices.Clone(a.free[:n])
		a.free = slices.Delete(a.free, 0, n)
	}
	return excess
}

func (a *allotment) trimUnits() Cost {
	var back [3]int64
	for i, dim := range rateDims {
		if rt := a.limits.rate(dim); rt.Limited() && a.units[i] > rt.burst()/allotShare {
			back[i] = a.units[i] - rt.burst()/allotShare
			a.units[i] -= back[i]
		}
	}
	return costOf(back)
}

// sendBack returns leases and units the allotment does not keep to Redis.
func (a *allotment) sendBack(ls []*lease, c Cost) {
	r := a.al.r
	for _, l := range ls {
		r.releaseLease(l)
	}
	if !c.isZero() {
		if err := r.giveBackUnits(context.Background(), a.subject, &a.limits, c); err != nil {
			r.log.Debug("ratelimit: allotment give-back failed; the units return at the limit's rate")
		}
	}
}

// put takes back a lease a request released.
func (a *allotment) put(l *lease) {
	a.mu.Lock()
	a.used--
	a.lastUse = time.Now()
	if l.state.Load() != leaseLive {
		a.mu.Unlock()
		return
	}
	if a.closed || time.Now().Before(a.tight) {
		a.mu.Unlock()
		a.al.r.releaseLease(l)
		return
	}
	a.free = append(a.free, l)
	excess := a.trimLeases()
	a.mu.Unlock()
	a.sendBack(excess, Cost{})
}

// putUnits takes back units a request gave back and returns what the allotment does not keep,
// which the caller gives back to Redis.
func (a *allotment) putUnits(c Cost) (rest Cost) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || time.Now().Before(a.tight) {
		return c
	}
	for i, dim := range rateDims {
		if a.limits.rate(dim).Limited() {
			a.units[i] += c.of(dim)
		}
	}
	return a.trimUnits()
}

// release ends a grant's hold on its allotment lease, once.
func (s *poolSlot) release() {
	if s.done.CompareAndSwap(false, true) {
		s.a.put(s.l)
	}
}

// abandoned is the cleanup of a grant dropped without Release.
func (s *poolSlot) abandoned() {
	if s.done.CompareAndSwap(false, true) {
		s.a.al.r.metrics.leaseDropped(dropAbandoned)
		s.a.put(s.l)
	}
}
