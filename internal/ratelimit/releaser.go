package ratelimit

import (
	"sync"
	"sync/atomic"
)

// releaser takes a Redis limiter's lease releases off the request path. Release queues the lease
// (a map append) and returns; one goroutine, running only while there is work, sends everything
// queued in one pipelined call (one script call per subject) as soon as it can. While a batch is
// in flight new releases queue for the next one, so the batch size follows the load and no
// release waits for more than the round trip in front of it. Releases the batch could not apply
// go to the keeper's retry queue.
//
// Until Redis confirms a release, Admit for the same subject sends its id with the admission (see
// unconfirmed), so this process never refuses a request for a slot it has already freed.
type releaser struct {
	// send releases a batch and hands what failed to the retry queue.
	send func([]*lease)

	// n counts releases queued or in flight: Admit's fast path skips the lock while it is 0.
	n atomic.Int64

	mu      sync.Mutex
	queued  map[Subject][]*lease // waiting for the next batch
	queuedN int
	sending map[Subject][]*lease // the batch in flight
	spare   map[Subject][]*lease
	busy    bool   // the goroutine runs
	enq     uint64 // releases ever queued
	done    uint64 // releases queued before the last batch that completed
	idle    sync.Cond
}

func newReleaser(send func([]*lease)) *releaser {
	q := &releaser{send: send, queued: map[Subject][]*lease{}, spare: map[Subject][]*lease{}}
	q.idle.L = &q.mu
	return q
}

// add queues the release of l and makes sure a goroutine sends it.
func (q *releaser) add(l *lease) {
	q.n.Add(1)
	q.mu.Lock()
	q.queued[l.subject] = append(q.queued[l.subject], l)
	q.queuedN++
	q.enq++
	start := !q.busy
	q.busy = true
	q.mu.Unlock()
	if start {
		go q.run()
	}
}

// run sends batches until the queue is empty.
func (q *releaser) run() {
	var ls []*lease
	q.mu.Lock()
	for q.queuedN > 0 {
		batch, n, upto := q.queued, q.queuedN, q.enq
		q.queued, q.spare, q.sending = q.spare, nil, batch
		q.queuedN = 0
		q.mu.Unlock()

		ls = ls[:0]
		for _, sl := range batch {
			for _, l := range sl {
				if !l.freed.Load() { // an admission of its subject carried it already
					ls = append(ls, l)
				}
			}
		}
		if len(ls) > 0 {
			q.send(ls)
		}
		clear(ls)

		q.mu.Lock()
		// Only now: a release that failed is in the retry queue before it leaves sending, so
		// Admit (which looks here first, then at the retry queue) always finds it.
		q.sending = nil
		clear(batch)
		q.spare = batch
		q.n.Add(-int64(n))
		q.done = upto
		q.idle.Broadcast()
	}
	q.busy = false
	q.mu.Unlock()
}

// unconfirmed appends the releases of s that are queued or in flight (not yet confirmed by
// Redis) to dst.
func (q *releaser) unconfirmed(s Subject, dst []*lease) []*lease {
	if q.n.Load() == 0 {
		return dst
	}
	q.mu.Lock()
	for _, l := range q.sending[s] {
		if !l.freed.Load() {
			dst = append(dst, l)
		}
	}
	for _, l := range q.queued[s] {
		if !l.freed.Load() {
			dst = append(dst, l)
		}
	}
	q.mu.Unlock()
	return dst
}

// flush waits until every release queued before the call has been sent (applied, or handed to
// the retry queue).
func (q *releaser) flush() {
	q.mu.Lock()
	target := q.enq
	for q.done < target {
		q.idle.Wait()
	}
	q.mu.Unlock()
}
