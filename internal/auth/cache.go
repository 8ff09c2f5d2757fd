package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/store"
)

// Defaults of Options.
const (
	// DefaultTTL is how long a store answer is used without asking the store again.
	DefaultTTL = 5 * time.Second
	// DefaultTimeout bounds one key lookup in the store.
	DefaultTimeout = 2 * time.Second
	// DefaultStaleFor is how long past its TTL NewAuthenticator accepts a cached key while the
	// store fails.
	DefaultStaleFor = 10 * time.Minute
	// DefaultRefreshInterval spaces the lookups of a key served stale.
	DefaultRefreshInterval = time.Second
)

// StoreRetryAfter is what a client refused because the key store is unavailable is told to
// wait (the Retry-After of the 503).
const StoreRetryAfter = time.Second

// Options configure an Authenticator.
type Options struct {
	// TTL is how long a store answer (a key, or "no such key" for at most a second) is used
	// without asking the store again: while the store answers, a key revoked on another gateway
	// stops working within TTL. Zero means DefaultTTL.
	TTL time.Duration
	// Timeout bounds every key lookup in the store, independently of the callers waiting for it;
	// no caller waits longer. Zero means DefaultTimeout.
	Timeout time.Duration
	// StaleFor is how long past its TTL a cached key is still accepted when the store fails or
	// times out. Zero disables stale answers. "No such key" is never answered stale.
	StaleFor time.Duration
	// RefreshInterval is how often, at most, a key answered stale is looked up again while the
	// store fails. Zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// Logger gets one line when stale answers start and one when the store answers again.
	// Nil means no logging.
	Logger *zap.Logger
	// StaleServes counts authentications answered from a stale cached key. May be nil.
	StaleServes prometheus.Counter
}

// Authenticator resolves bearer secrets to keys through a short-lived cache that outlives a
// store outage: see Options.
//
// Lookups are deduplicated: at most one store lookup per key hash is in flight, it runs with
// its own deadline (Options.Timeout) whoever started it, and each caller stops waiting when its
// own context ends. Once a lookup has failed or timed out, a key that may be answered stale is
// answered at once, without waiting, and looked up again in the background at most once per
// RefreshInterval; the first success ends the stale period.
type Authenticator struct {
	st  store.Store
	o   Options
	now func() time.Time

	mu       sync.Mutex
	cache    map[string]*cached
	inflight map[string]*lookup
	// gen changes on Forget: a lookup started before it does not fill the cache.
	gen uint64
	// failing: the last store lookup failed or timed out (lastErr says how).
	failing bool
	lastErr error
	// staleSince is when the current stale period began (zero: none); staleServes counts its
	// stale answers.
	staleSince  time.Time
	staleServes int64
}

type cached struct {
	key        *store.Key // nil: no such key
	expires    time.Time  // fresh until
	staleUntil time.Time  // answered when the store fails until (key != nil only)
	// nextRefresh: while the store fails, no new lookup of this key before this time.
	nextRefresh time.Time
}

type lookup struct {
	done     chan struct{}
	deadline time.Time // wall clock
	key      *store.Key
	err      error
}

// maxCached bounds the cache; past it unusable answers are dropped, then the cache starts over
// (invalid keys cannot grow it forever).
const maxCached = 100_000

// NewAuthenticator returns an Authenticator whose cached answers live ttl (a revoked key stops
// working within ttl while the store answers; a revocation made through this process stops it
// at once), with the default store timeout and stale period.
func NewAuthenticator(st store.Store, ttl time.Duration) *Authenticator {
	return New(st, Options{TTL: ttl, StaleFor: DefaultStaleFor})
}

// New returns an Authenticator configured by o.
func New(st store.Store, o Options) *Authenticator {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StaleFor < 0 {
		o.StaleFor = 0
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Authenticator{st: st, o: o, now: time.Now, cache: map[string]*cached{}, inflight: map[string]*lookup{}}
}

// lookup returns the key whose secret hashes to hash, nil when there is none.
func (a *Authenticator) lookup(ctx context.Context, hash string) (*store.Key, error) {
	a.mu.Lock()
	now := a.now()
	var stale *store.Key // what to answer if the store fails
	if c, ok := a.cache[hash]; ok {
		if now.Before(c.expires) {
			a.mu.Unlock()
			return c.key, nil
		}
		if c.key != nil && now.Before(c.staleUntil) {
			stale = c.key
			if a.failing && (a.inflight[hash] != nil || now.Before(c.nextRefresh)) {
				// The store is failing and this key is being, or was just, looked up again.
				a.servedStaleLocked(now, nil)
				a.mu.Unlock()
				return stale, nil
			}
			c.nextRefresh = now.Add(a.o.RefreshInterval)
		}
	}
	l := a.inflight[hash]
	if l == nil {
		l = a.startLocked(ctx, hash)
	}
	if stale != nil && a.failing {
		// Refresh in the background; do not wait for a store that is failing.
		a.servedStaleLocked(now, nil)
		a.mu.Unlock()
		return stale, nil
	}
	a.mu.Unlock()

	k, err := a.wait(ctx, l)
	if err == nil {
		return k, nil
	}
	if stale != nil && ctx.Err() == nil && a.serveStale(hash, stale, err) {
		return stale, nil
	}
	return nil, err
}

// startLocked starts the store lookup of hash in its own goroutine, with its own deadline.
func (a *Authenticator) startLocked(ctx context.Context, hash string) *lookup {
	l := &lookup{done: make(chan struct{}), deadline: time.Now().Add(a.o.Timeout)}
	a.inflight[hash] = l
	gen := a.gen
	// The lookup keeps the first caller's values (trace ids) but not its cancellation: other
	// callers may be waiting for it.
	lctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), l.deadline)
	go func() {
		defer cancel()
		k, err := a.st.KeyByHash(lctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			k, err = nil, nil
		}
		if err != nil {
			err = fmt.Errorf("auth: key lookup: %w", err)
		}
		l.key, l.err = k, err

		a.mu.Lock()
		delete(a.inflight, hash)
		now := a.now()
		if err != nil {
			a.failedLocked(now, hash, err)
		} else {
			if gen == a.gen {
				a.putLocked(now, hash, k)
			}
			a.answeredLocked(now)
		}
		a.mu.Unlock()
		close(l.done)
	}()
	return l
}

// wait waits for l until its deadline (even if the store ignores it) or the end of ctx.
func (a *Authenticator) wait(ctx context.Context, l *lookup) (*store.Key, error) {
	t := time.NewTimer(store.Within(ctx, time.Until(l.deadline)))
	defer t.Stop()
	select {
	case <-l.done:
		return l.key, l.err
	case <-t.C:
	case <-ctx.Done():
	}
	select {
	case <-l.done: // finished meanwhile: its answer wins
		return l.key, l.err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err := fmt.Errorf("auth: key lookup: no answer within %v: %w", a.o.Timeout, context.DeadlineExceeded)
	a.mu.Lock()
	a.failing, a.lastErr = true, err
	a.mu.Unlock()
	return nil, err
}

// serveStale reports whether k, cached for hash, may still be answered although the store
// failed with cause, and counts it if so.
func (a *Authenticator) serveStale(hash string, k *store.Key, cause error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	c, ok := a.cache[hash]
	if !ok || c.key != k || !now.Before(c.staleUntil) {
		return false // forgotten, replaced or past its stale period meanwhile
	}
	a.servedStaleLocked(now, cause)
	return true
}

// servedStaleLocked counts a stale answer and logs the start of a stale period.
func (a *Authenticator) servedStaleLocked(now time.Time, cause error) {
	if cause == nil {
		cause = a.lastErr
	}
	if a.staleSince.IsZero() {
		a.staleSince = now
		a.o.Logger.Warn("the key store is unavailable: answering with cached keys past their TTL",
			zap.Duration("key_stale_for", a.o.StaleFor), zap.Error(cause))
	}
	a.staleServes++
	if a.o.StaleServes != nil {
		a.o.StaleServes.Inc()
	}
}

// failedLocked records a failed lookup of hash.
func (a *Authenticator) failedLocked(now time.Time, hash string, err error) {
	a.failing, a.lastErr = true, err
	if c, ok := a.cache[hash]; ok {
		c.nextRefresh = now.Add(a.o.RefreshInterval)
	}
}

// answeredLocked records that the store answered, ending a stale period.
func (a *Authenticator) answeredLocked(now time.Time) {
	a.failing, a.lastErr = false, nil
	if !a.staleSince.IsZero() {
		a.o.Logger.Info("the key store answers again: stopped answering with stale keys",
			zap.Duration("stale_period", now.Sub(a.staleSince)), zap.Int64("stale_answers", a.staleServes))
		a.staleSince, a.staleServes = time.Time{}, 0
	}
}

// putLocked caches the store's answer for hash.
func (a *Authenticator) putLocked(now time.Time, hash string, k *store.Key) {
	if _, ok := a.cache[hash]; !ok && len(a.cache) >= maxCached {
		a.pruneLocked(now)
	}
	c := &cached{key: k}
	if k == nil {
		c.expires = now.Add(min(a.o.TTL, time.Second))
	} else {
		c.expires = now.Add(a.o.TTL)
		c.staleUntil = c.expires.Add(a.o.StaleFor)
	}
	a.cache[hash] = c
}

// pruneLocked makes room: first answers that can no longer be used, then unknown keys, then
// everything.
func (a *Authenticator) pruneLocked(now time.Time) {
	for h, c := range a.cache {
		if !now.Before(c.expires) && (c.key == nil || !now.Before(c.staleUntil)) {
			delete(a.cache, h)
		}
	}
	if len(a.cache) < maxCached {
		return
	}
	for h, c := range a.cache {
		if c.key == nil {
			delete(a.cache, h)
		}
	}
	if len(a.cache) >= maxCached {
		clear(a.cache)
	}
}

// Forget drops every cached answer for the key id (after an update or revocation in this
// process), stale ones included; lookups already in flight do not cache their answer.
func (a *Authenticator) Forget(keyID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	for h, c := range a.cache {
		if c.key != nil && c.key.ID == keyID {
			delete(a.cache, h)
		}
	}
}
