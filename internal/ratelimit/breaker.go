package ratelimit

import (
	"sync/atomic"
	"time"
)

// breaker is a small circuit breaker in front of Redis. After threshold consecutive failures it
// opens for cooldown: calls skip Redis and the failure policy applies at once, so a dead Redis
// costs one timeout per threshold calls rather than per call. After the cooldown one call probes
// Redis (half-open); its success closes the circuit, its failure reopens it.
type breaker struct {
	threshold int64
	cooldown  time.Duration
	now       func() time.Time

	open      atomic.Bool
	failures  atomic.Int64
	openUntil atomic.Int64 // unix nanoseconds
	probing   atomic.Bool
}

func newBreaker(threshold int, cooldown time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: int64(max(threshold, 1)), cooldown: cooldown, now: now}
}

// allow reports whether a call may go to Redis now.
func (b *breaker) allow() bool {
	if !b.open.Load() {
		return true
	}
	if b.now().UnixNano() < b.openUntil.Load() {
		return false
	}
	return b.probing.CompareAndSwap(false, true)
}

// success records a successful call and reports whether it closed an open circuit.
func (b *breaker) success() (closed bool) {
	b.failures.Store(0)
	closed = b.open.Swap(false)
	b.probing.Store(false)
	return closed
}

// failure records a failed call and reports whether it opened a closed circuit.
func (b *breaker) failure() (opened bool) {
	if b.open.Load() {
		// A failed probe (or a call that started before the circuit opened): stay open.
		b.openUntil.Store(b.now().Add(b.cooldown).UnixNano())
		b.probing.Store(false)
		return false
	}
	if b.failures.Add(1) < b.threshold {
		return false
	}
	b.openUntil.Store(b.now().Add(b.cooldown).UnixNano())
	return b.open.CompareAndSwap(false, true)
}

func (b *breaker) isOpen() bool { return b.open.Load() }
