package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxAdmitBatch bounds the admissions one admit script call carries.
const maxAdmitBatch = 256

// admitReplyLen is how many values admitScript returns per admission.
const admitReplyLen = 1 + 4*len(rateDims) + 3

// Waiter states.
const (
	waitQueued    int32 = iota // in its subject's queue
	waitTaken                  // in a batch: its result will come
	waitAbandoned              // its caller gave up while it was queued; no batch takes it
)

// admitWaiter is one Admit on Redis: sent alone, or queued behind a call in flight for its
// subject and then sent in a batch.
type admitWaiter struct {
	req     *Request
	leaseID string // "" without a concurrency limit
	state   atomic.Int32
	done    chan struct{} // closed when the result is in, or when it is to send lead
	lead    []*admitWaiter

	res        []int64 // its admitReplyLen values
	err        error
	start, end time.Time
}

// admitQueue is one subject's admissions waiting for the calls in flight to return.
type admitQueue struct {
	calls   int // admit script calls in flight
	waiting []*admitWaiter
}

// coalescer queues concurrent admissions of a subject behind the call in flight for it, so that
// a burst of them costs Redis a few batch script calls instead of one call each.
type coalescer struct {
	mu       sync.Mutex
	subjects map[Subject]*admitQueue
}

func newCoalescer() *coalescer { return &coalescer{subjects: map[Subject]*admitQueue{}} }

// join returns a batch of w alone if nothing is in flight for its subject (the caller sends it
// at once); otherwise it queues w and returns nil.
func (c *coalescer) join(w *admitWaiter) []*admitWaiter {
	s := w.req.Subject
	c.mu.Lock()
	q := c.subjects[s]
	if q == nil {
		c.subjects[s] = &admitQueue{calls: 1}
		c.mu.Unlock()
		return []*admitWaiter{w}
	}
	if q.calls == 0 {
		q.calls = 1
		c.mu.Unlock()
		return []*admitWaiter{w}
	}
	w.done = make(chan struct{})
	q.waiting = append(q.waiting, w)
	c.mu.Unlock()
	return nil
}

// finish records that a call for s returned and hands what queued meanwhile, in arrival order
// and in batches of at most maxAdmitBatch, to the first waiter of each batch to send.
func (c *coalescer) finish(s Subject) {
	var batches [][]*admitWaiter
	c.mu.Lock()
	q := c.subjects[s]
	q.calls--
	var cur []*admitWaiter
	for _, w := range q.waiting {
		if !w.state.CompareAndSwap(waitQueued, waitTaken) {
			continue // abandoned
		}
		if cur == nil {
			cur = make([]*admitWaiter, 0, min(len(q.waiting), maxAdmitBatch))
		}
		cur = append(cur, w)
		if len(cur) == maxAdmitBatch {
			batches = append(batches, cur)
			cur = nil
		}
	}
	if cur != nil {
		batches = append(batches, cur)
	}
	clear(q.waiting)
	q.waiting = q.waiting[:0]
	q.calls += len(batches)
	if q.calls == 0 {
		delete(c.subjects, s)
	}
	c.mu.Unlock()
	for _, b := range batches {
		b[0].lead = b
		close(b[0].done)
	}
}

// admitRedis decides req on Redis. If an admission of the subject is in flight, it waits for it
// to return and then goes out with everything else queued meanwhile in one script call.
func (r *Redis) admitRedis(ctx context.Context, req *Request) (Decision, error) {
	w := &admitWaiter{req: req}
	if req.Limits.Concurrency > 0 {
		w.leaseID = r.idPrefix + strconv.FormatUint(r.idSeq.Add(1), 36)
	}
	batch := r.co.join(w)
	if batch == nil {
		select {
		case <-w.done:
		case <-ctx.Done():
			if w.state.CompareAndSwap(waitQueued, waitAbandoned) {
				return Decision{}, fmt.Errorf("redis: %w", ctx.Err())
			}
			// Taken into a batch: its result comes within the limiter's timeout.
			<-w.done
		}
		batch = w.lead
	}
	if batch != nil {
		r.sendAdmits(ctx, batch)
	}
	return r.admitResult(w)
}

// sendAdmits sends batch (all of one subject, in arrival order) in one admit script call, hands
// what queued meanwhile to the next callers, and hands each waiter its result. ctx is the
// sender's: a batch of one is its own call, as an uncoalesced admit was; a larger batch must not
// fail because its sender's caller gave up.
func (r *Redis) sendAdmits(ctx context.Context, batch []*admitWaiter) {
	s := batch[0].req.Subject
	withLease := false
	for _, w := range batch {
		withLease = withLease || w.leaseID != ""
	}
	// freeing are this process's releases of the subject that Redis has not confirmed yet
	// (queued, in flight or waiting for a retry): the script removes them before it counts the
	// subject's leases, so a slot this process freed is never refused to it.
	var freeing []*lease
	if withLease {
		freeing = r.unconfirmedReleases(s)
	}
	args := make([]any, 0, 2+len(freeing)+15*len(batch))
	args = append(args, len(batch), len(freeing))
	for _, l := range freeing {
		args = append(args, l.id)
	}
	for _, w := range batch {
		lim := &w.req.Limits
		args = appendRateArgs(args, lim, w.req.Cost.units())
		args = append(args, lim.Concurrency, int64(w.req.leaseTTL()/time.Microsecond), w.leaseID)
	}

	base := ctx
	if len(batch) > 1 {
		base = context.WithoutCancel(ctx)
	}
	cctx, cancel := context.WithTimeout(base, r.timeout)
	start := time.Now()
	res, err := admitScript.Run(cctx, r.client, r.keys(s), args...).Int64Slice()
	cancel()
	end := time.Now()
	if err == nil && len(res) != admitReplyLen*len(batch) {
		err = fmt.Errorf("unexpected reply of %d values for %d admissions", len(res), len(batch))
	}
	if len(batch) > 1 || ctx.Err() == nil {
		r.metrics.redisCall("admit", end.Sub(start), err)
	}
	if err == nil {
		for _, l := range freeing {
			l.freed.Store(true)
		}
	}
	r.co.finish(s)
	for i, w := range batch {
		w.start, w.end = start, end
		if err != nil {
			w.err = err
		} else {
			w.res = res[i*admitReplyLen : (i+1)*admitReplyLen : (i+1)*admitReplyLen]
		}
		if i > 0 {
			close(w.done)
		}
	}
}

// admitResult turns w's reply into its decision (registering its lease), or its failure.
func (r *Redis) admitResult(w *admitWaiter) (Decision, error) {
	req := w.req
	lim := &req.Limits
	withLease := w.leaseID != ""
	if w.err != nil {
		if withLease {
			r.releaseUnsure(&lease{subject: req.Subject, id: w.leaseID, ttl: req.leaseTTL()}, w.end)
		}
		return Decision{}, fmt.Errorf("redis: %w", w.err)
	}
	res := w.res
	var d Decision
	for i, dim := range rateDims {
		rt := lim.rate(dim)
		if !rt.Limited() {
			continue
		}
		v := res[1+4*i : 5+4*i]
		*d.quota(dim) = Quota{
			Limit:      rt.Count,
			Refused:    v[0] == 1,
			Remaining:  v[1],
			Reset:      time.Duration(v[2]) * time.Microsecond,
			RetryAfter: time.Duration(v[3]) * time.Microsecond,
		}
	}
	if withLease {
		c := res[1+4*len(rateDims):]
		d.Concurrency = Quota{Limit: lim.Concurrency, Refused: c[0] == 1, Remaining: c[1],
			RetryAfter: time.Duration(c[2]) * time.Microsecond}
	}
	d.Allowed = res[0] == 1
	if !d.Allowed {
		d.finish(req)
		return d, nil
	}
	g := &Grant{
		subject:  req.Subject,
		limits:   req.Limits,
		leaseTTL: req.leaseTTL(),
		charged:  req.Cost,
	}
	if withLease {
		g.lease = &lease{subject: req.Subject, id: w.leaseID, ttl: g.leaseTTL}
		r.keeper.register(g, g.lease, r.keeper.at(w.start), r.keeper.at(w.end))
	}
	d.Grant = g
	return d, nil
}
