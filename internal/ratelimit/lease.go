package ratelimit

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Lease states.
const (
	leaseLive     int32 = iota
	leaseReleased       // released by its owner, or by the keeper after its grant was dropped
	leaseLost           // found expired (or gone) before it could be renewed
)

const (
	leaseShards = 32
	// releaseRetryInterval is how long a failed renewal or release waits before the next try.
	releaseRetryInterval = 250 * time.Millisecond
	// maxIDsPerCall bounds the lease ids one script call carries (Lua's unpack has a stack limit).
	maxIDsPerCall = 512
)

// lease is one concurrency lease a limiter holds for a grant. Times are nanoseconds on the
// keeper's clock (since keeper.base).
type lease struct {
	subject Subject
	id      string // Redis sorted-set member
	localID uint64 // Local lease id
	ttl     time.Duration
	shard   uint32
	// grant is weak so that a grant its owner dropped without Release (a bug, a panic) is
	// noticed: the keeper then releases the lease instead of renewing it forever.
	grant weak.Pointer[Grant]
	state atomic.Int32
	// renewedAt is when the last successful renewal (or the admission) was sent: a lower bound
	// of the instant the backend computed the expiry from.
	renewedAt atomic.Int64
	// expires is an upper bound of the backend's expiry: when that call returned, plus the TTL.
	expires atomic.Int64
	// freed is set once Redis confirmed the release as part of an admission of the subject, so
	// the background releaser need not send it again.
	freed atomic.Bool
}

// renewed records a successful renewal sent at sent that returned at recv.
func (l *lease) renewed(sent, recv int64) {
	storeMax(&l.renewedAt, sent)
	storeMax(&l.expires, recv+int64(l.ttl))
}

func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

// leaseBackend is what a keeper needs from its limiter: batched renewals and releases.
type leaseBackend interface {
	// renewLeases extends every lease in ls by its TTL, in as few round trips as the backend
	// allows, and reports per lease 1 (renewed), 0 (lost: expired or unknown) or -1 (no answer).
	// sent and recv bracket the call on the keeper's clock.
	renewLeases(ls []*lease) (status []int8, sent, recv int64)
	// releaseLeases frees every lease in ls in as few round trips as possible and reports which
	// were freed.
	releaseLeases(ls []*lease) (ok []bool)
}

// keeper is a limiter's registry of live leases and the one background goroutine that renews
// them in batches and retries failed releases. There is no goroutine and no backend call per
// request: Admit registers a lease (a map insert), Release unregisters it.
//
// The loop sleeps until the earliest lease is due (a third of its TTL after its last renewal);
// leases that fall due within the next sixth of their TTL are renewed in the same batch, so with
// a steady stream of requests the loop wakes at most every TTL/6 and sends one batch each time.
type keeper struct {
	clock   func() time.Time
	base    time.Time
	metrics *Metrics
	backend leaseBackend
	retry   time.Duration
	// manual means no goroutine: tests with a fake clock call tick themselves.
	manual bool

	seq    atomic.Uint32
	shards [leaseShards]keeperShard

	wake chan struct{}
	// wakeAt is when the loop plans to wake (keeper nanos); a lease due earlier wakes it.
	wakeAt atomic.Int64

	pmu     sync.Mutex
	pending []pendingRelease
	// npending is len(pending), for the lock-free check of pendingOf.
	npending atomic.Int64

	started atomic.Bool // start was attempted: the fast path of register
	life    sync.Mutex
	running bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

type keeperShard struct {
	mu     sync.Mutex
	leases map[*lease]struct{}
}

// pendingRelease is a release that failed, waiting for its next try at at.
type pendingRelease struct {
	l  *lease
	at int64
}

func newKeeper(clock func() time.Time, base time.Time, m *Metrics, b leaseBackend, manual bool) *keeper {
	k := &keeper{clock: clock, base: base, metrics: m, backend: b, retry: releaseRetryInterval, manual: manual,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	k.wakeAt.Store(math.MaxInt64)
	for i := range k.shards {
		k.shards[i].leases = make(map[*lease]struct{})
	}
	return k
}

// nanos is now on the keeper's clock.
func (k *keeper) nanos() int64 { return int64(k.clock().Sub(k.base)) }

func (k *keeper) at(t time.Time) int64 { return int64(t.Sub(k.base)) }

// register starts renewing l for g. sent and recv bracket the call that created the lease.
func (k *keeper) register(g *Grant, l *lease, sent, recv int64) {
	l.grant = weak.Make(g)
	l.renewedAt.Store(sent)
	l.expires.Store(recv + int64(l.ttl))
	l.shard = k.seq.Add(1) % leaseShards
	sh := &k.shards[l.shard]
	sh.mu.Lock()
	sh.leases[l] = struct{}{}
	sh.mu.Unlock()
	k.metrics.leaseHeld(l.subject.Class(), 1)
	if !k.started.Load() {
		k.start()
	}
	if sent+int64(l.ttl/3) < k.wakeAt.Load() {
		k.poke()
	}
}

// unregister stops renewing l and moves it to state to. It reports false if l was no longer
// live (released or lost already), so exactly one caller acts on a lease's end.
func (k *keeper) unregister(l *lease, to int32) bool {
	if !l.state.CompareAndSwap(leaseLive, to) {
		return false
	}
	sh := &k.shards[l.shard]
	sh.mu.Lock()
	delete(sh.leases, l)
	sh.mu.Unlock()
	k.metrics.leaseHeld(l.subject.Class(), -1)
	return true
}

// lost unregisters a lease the backend no longer holds.
func (k *keeper) lost(l *lease) {
	if k.unregister(l, leaseLost) {
		k.metrics.leaseDropped(dropExpired)
	}
}

// enqueue queues the release of l for a retry by the loop.
func (k *keeper) enqueue(l *lease) {
	at := k.nanos() + int64(k.retry)
	k.pmu.Lock()
	k.pending = append(k.pending, pendingRelease{l: l, at: at})
	k.npending.Store(int64(len(k.pending)))
	k.pmu.Unlock()
	k.metrics.releasesPending(1)
	if !k.started.Load() {
		k.start()
	}
	if at < k.wakeAt.Load() {
		k.poke()
	}
}

func (k *keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

func (k *keeper) start() {
	k.life.Lock()
	defer k.life.Unlock()
	if !k.running && !k.closed && !k.manual {
		k.running = true
		go k.run()
	}
	k.started.Store(true)
}

// close stops the loop and makes one last attempt at the queued releases. Live leases are not
// released: they expire within their TTL, as if the process had died.
func (k *keeper) close() {
	k.life.Lock()
	if k.closed {
		k.life.Unlock()
		return
	}
	k.closed = true
	k.started.Store(true)
	running := k.running
	k.life.Unlock()
	if running {
		close(k.stop)
		<-k.done
	}
	k.flush()
}

// flush tries every queued release once, whatever its schedule.
func (k *keeper) flush() {
	now := k.nanos()
	k.pmu.Lock()
	ps := k.pending
	k.pending = nil
	k.npending.Store(0)
	k.pmu.Unlock()
	k.metrics.releasesPending(-float64(len(ps)))
	var ls []*lease
	for _, p := range ps {
		if now >= p.l.expires.Load() {
			k.metrics.releaseRetry(retryExpired)
			continue
		}
		ls = append(ls, p.l)
	}
	if len(ls) == 0 {
		return
	}
	for _, ok := range k.backend.releaseLeases(ls) {
		if ok {
			k.metrics.releaseRetry(retryReleased)
		} else {
			k.metrics.releaseRetry(retryFailed)
		}
	}
}

// minWait keeps a loop that is behind from spinning.
const minWait = time.Millisecond

func (k *keeper) run() {
	defer close(k.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		next := k.tick()
		k.wakeAt.Store(next)
		if next != math.MaxInt64 {
			t.Reset(max(time.Duration(next-k.nanos()), minWait))
		}
		select {
		case <-k.stop:
			t.Stop()
			return
		case <-k.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// tick does one pass: it drops leases whose grant was garbage-collected (releasing them) or that
// expired, renews the ones due in one batch, and retries the queued releases that are due in
// another. It returns when it wants to run next (keeper nanos; MaxInt64 for never).
func (k *keeper) tick() int64 {
	// A lease registered during the pass pokes the loop, so it is looked at in the next one.
	k.wakeAt.Store(math.MaxInt64)
	now := k.nanos()
	next := int64(math.MaxInt64)
	var due, expired, abandoned []*lease
	for i := range k.shards {
		sh := &k.shards[i]
		sh.mu.Lock()
		for l := range sh.leases {
			switch {
			case l.grant.Value() == nil:
				abandoned = append(abandoned, l)
			case now >= l.expires.Load():
				expired = append(expired, l)
			default:
				at := l.renewedAt.Load() + int64(l.ttl/3)
				if at-int64(l.ttl/6) <= now {
					due = append(due, l)
				} else {
					next = min(next, at)
				}
			}
		}
		sh.mu.Unlock()
	}
	for _, l := range expired {
		k.lost(l)
	}

	if len(due) > 0 {
		status, sent, recv := k.backend.renewLeases(due)
		failed := false
		for i, l := range due {
			switch status[i] {
			case 1:
				l.renewed(sent, recv)
				next = min(next, sent+int64(l.ttl/3))
			case 0:
				k.lost(l)
			default:
				failed = true
			}
		}
		if failed {
			next = min(next, now+int64(k.retry))
		}
	}

	// Releases: leases whose grant was dropped without Release, then the queued retries.
	var rel []*lease
	for _, l := range abandoned {
		if k.unregister(l, leaseReleased) {
			k.metrics.leaseDropped(dropAbandoned)
			if now < l.expires.Load() {
				rel = append(rel, l)
			}
		}
	}
	fresh := len(rel)
	k.pmu.Lock()
	keep := k.pending[:0]
	dropped := 0
	for _, p := range k.pending {
		switch {
		case now >= p.l.expires.Load():
			dropped++
			k.metrics.releaseRetry(retryExpired)
		case p.at <= now:
			rel = append(rel, p.l)
		default:
			keep = append(keep, p)
			next = min(next, p.at)
		}
	}
	clear(k.pending[len(keep):])
	k.pending = keep
	k.npending.Store(int64(len(keep)))
	k.pmu.Unlock()
	k.metrics.releasesPending(-float64(dropped + len(rel) - fresh))
	if len(rel) > 0 {
		ok := k.backend.releaseLeases(rel)
		var again []pendingRelease
		for i, l := range rel {
			retried := i >= fresh
			switch {
			case ok[i] && retried:
				k.metrics.releaseRetry(retryReleased)
			case !ok[i]:
				if retried {
					k.metrics.releaseRetry(retryFailed)
				}
				again = append(again, pendingRelease{l: l, at: now + int64(k.retry)})
			}
		}
		if len(again) > 0 {
			k.pmu.Lock()
			k.pending = append(k.pending, again...)
			k.npending.Store(int64(len(k.pending)))
			k.pmu.Unlock()
			k.metrics.releasesPending(float64(len(again)))
			next = min(next, now+int64(k.retry))
		}
	}
	return next
}

// size returns how many leases are registered (tests).
func (k *keeper) size() int {
	n := 0
	for i := range k.shards {
		k.shards[i].mu.Lock()
		n += len(k.shards[i].leases)
		k.shards[i].mu.Unlock()
	}
	return n
}

// pendingOf appends the queued releases of subject s to dst.
func (k *keeper) pendingOf(s Subject, dst []*lease) []*lease {
	if k.npending.Load() == 0 {
		return dst
	}
	k.pmu.Lock()
	for _, p := range k.pending {
		if p.l.subject == s && !p.l.freed.Load() {
			dst = append(dst, p.l)
		}
	}
	k.pmu.Unlock()
	return dst
}

// pendingLen returns how many releases are queued (tests).
func (k *keeper) pendingLen() int {
	k.pmu.Lock()
	defer k.pmu.Unlock()
	return len(k.pending)
}
