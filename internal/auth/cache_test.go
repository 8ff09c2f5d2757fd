package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// fakeStore answers KeyByHash from a map, or fails, or hangs, as the test says. Other store
// methods are not used (and would panic).
type fakeStore struct {
	store.Store

	mu   sync.Mutex
	keys map[string]*store.Key
	fail error         // returned instead of an answer when set
	hang chan struct{} // when set, lookups block until it is closed
	deaf bool          // hanging lookups ignore their context
	slow time.Duration // answer after this long (honouring the context)

	calls, active, maxActive atomic.Int64
}

func newFake() *fakeStore { return &fakeStore{keys: map[string]*store.Key{}} }

func (f *fakeStore) KeyByHash(ctx context.Context, hash string) (*store.Key, error) {
	f.calls.Add(1)
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		m := f.maxActive.Load()
		if n <= m || f.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	fail, hang, deaf, slow := f.fail, f.hang, f.deaf, f.slow
	f.mu.Unlock()
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if hang != nil {
		if deaf {
			<-hang
		} else {
			select {
			case <-hang:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if fail != nil {
		return nil, fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[hash]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *k
	return &c, nil
}

func (f *fakeStore) set(fn func(f *fakeStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// add stores a key for secret.
func (f *fakeStore) add(secret string) *store.Key {
	k := &store.Key{ID: "key_" + secret, Prefix: secret[:8], Hash: Hash(secret)}
	f.set(func(f *fakeStore) { f.keys[k.Hash] = k })
	return k
}

// clock is a settable clock safe for the Authenticator's background lookups.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is one Authenticator over a fake store, with a fake clock, a stale counter and logs.
type rig struct {
	st    *fakeStore
	a     *Authenticator
	clk   *clock
	stale prometheus.Counter
	logs  *observer.ObservedLogs
}

const (
	goodSecret = "igw_goodsecretgoodsecret"
	testTTL    = 5 * time.Second
	testStale  = time.Minute
	testEvery  = time.Second
)

// newRig returns a rig with the test TTL, stale period and refresh interval and the given
// store timeout.
func newRig(t *testing.T, timeout time.Duration) *rig {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	r := &rig{st: newFake(), clk: &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, logs: logs,
		stale: prometheus.NewCounter(prometheus.CounterOpts{Name: "stale_test_total", Help: "test"})}
	r.a = New(r.st, Options{TTL: testTTL, Timeout: timeout, StaleFor: testStale, RefreshInterval: testEvery,
		Logger: zap.New(core), StaleServes: r.stale})
	r.a.now = r.clk.now
	r.st.add(goodSecret)
	t.Cleanup(func() {
		// Release any lookup still hanging so its goroutine ends.
		r.st.set(func(f *fakeStore) {
			if f.hang != nil {
				close(f.hang)
				f.hang = nil
			}
		})
	})
	return r
}

func (r *rig) auth(t *testing.T, secret string) (*store.Key, error) {
	t.Helper()
	return r.a.Authenticate(context.Background(), "Bearer "+secret)
}

// mustAuth authenticates secret and fails the test unless it works.
func (r *rig) mustAuth(t *testing.T, secret string) {
	t.Helper()
	if _, err := r.auth(t, secret); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
}

func (r *rig) staleServes() int {
	var m dto.Metric
	if err := r.stale.Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// idle waits until no lookup is in flight (background refreshes have finished).
func (r *rig) idle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.a.mu.Lock()
		n := len(r.a.inflight)
		r.a.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a key lookup is still in flight after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// logged counts log lines containing msg.
func (r *rig) logged(msg string) int {
	return r.logs.FilterMessageSnippet(msg).Len()
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUnavailable {
		t.Fatalf("want an unavailable error, got %v", err)
	}
	if pe.RetryAfter <= 0 {
		t.Fatalf("unavailable error without a RetryAfter: %v", err)
	}
}

var errStoreDown = errors.New("connection refused")

func TestKeyCache(t *testing.T) {
	// Generous bounds: these are deadline guarantees, not performance claims.
	const margin = 3 * time.Second
	tests := []struct {
		name string
		run  func(t *testing.T, r *rig)
	}{
		{"fresh hit makes no store round trip", func(t *testing.T, r *rig) {
			r.mustAuth(t, goodSecret)
			r.clk.add(testTTL - time.Millisecond)
			r.mustAuth(t, goodSecret)
			if n := r.st.calls.Load(); n != 1 {
				t.Fatalf("store lookups = %d, want 1", n)
			}
		}},
		{"stale serve on error", func(t *testing.T, r *rig) {
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(testTTL)
			for range 5 {
				r.mustAuth(t, goodSecret)
			}
			if got := r.staleServes(); got != 5 {
				t.Fatalf("stale serves = %d, want 5", got)
			}
			// One failed lookup; the following answers did not ask again within the interval.
			if n := r.st.calls.Load(); n != 2 {
				t.Fatalf("store lookups = %d, want 2 (one fresh, one failed refresh)", n)
			}
			if n := r.logged("answering with cached keys"); n != 1 {
				t.Fatalf("stale start logged %d times, want once", n)
			}
		}},
		{"stale serve on hang returns within the deadline", func(t *testing.T, r *rig) {
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.hang = make(chan struct{}) })
			r.clk.add(testTTL)
			start := time.Now()
			r.mustAuth(t, goodSecret)
			if d := time.Since(start); d > r.a.o.Timeout+margin {
				t.Fatalf("answered after %v; the store timeout is %v", d, r.a.o.Timeout)
			}
			if r.staleServes() != 1 {
				t.Fatalf("stale serves = %d, want 1", r.staleServes())
			}
		}},
		{"stale serve on a hang that ignores its context", func(t *testing.T, r *rig) {
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.hang, f.deaf = make(chan struct{}), true })
			r.clk.add(testTTL)
			for range 3 {
				start := time.Now()
				r.mustAuth(t, goodSecret)
				if d := time.Since(start); d > r.a.o.Timeout+margin {
					t.Fatalf("answered after %v; the store timeout is %v", d, r.a.o.Timeout)
				}
			}
			// The stuck lookup is still in flight: no second one was started.
			if n := r.st.calls.Load(); n != 2 {
				t.Fatalf("store lookups = %d, want 2", n)
			}
			// An unknown key gets its 503 within the deadline too.
			start := time.Now()
			_, err := r.auth(t, "igw_unknownunknownunknown")
			wantUnavailable(t, err)
			if d := time.Since(start); d > r.a.o.Timeout+margin {
				t.Fatalf("unknown key answered after %v; the store timeout is %v", d, r.a.o.Timeout)
			}
		}},
		{"after a failure, stale answers do not wait for a slow refresh", func(t *testing.T, r *rig) {
			r.a.o.Timeout = time.Minute // a wait would be obvious
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(testTTL)
			r.mustAuth(t, goodSecret) // fails fast, served stale
			r.st.set(func(f *fakeStore) { f.fail, f.hang = nil, make(chan struct{}) })
			r.clk.add(testEvery)
			start := time.Now()
			for range 10 {
				r.mustAuth(t, goodSecret)
			}
			if d := time.Since(start); d > margin {
				t.Fatalf("10 stale answers took %v with a refresh hanging", d)
			}
			r.a.mu.Lock()
			n := len(r.a.inflight)
			r.a.mu.Unlock()
			if n != 1 {
				t.Fatalf("%d lookups in flight, want the one background refresh", n)
			}
		}},
		{"refreshes at most once per interval, then recovery ends stale serving", func(t *testing.T, r *rig) {
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(testTTL)
			for range 3 {
				for range 20 {
					r.mustAuth(t, goodSecret)
				}
				r.idle(t)
				r.clk.add(testEvery)
			}
			// One fresh lookup, then one refresh per interval: three intervals.
			if n := r.st.calls.Load(); n != 4 {
				t.Fatalf("store lookups = %d, want 4", n)
			}
			r.st.set(func(f *fakeStore) { f.fail = nil })
			r.mustAuth(t, goodSecret) // stale, refreshes in the background
			r.idle(t)
			before := r.staleServes()
			r.mustAuth(t, goodSecret)
			if r.staleServes() != before {
				t.Fatal("still serving stale after the store answered")
			}
			if r.logged("answering with cached keys") != 1 || r.logged("answers again") != 1 {
				t.Fatalf("want one start and one stop line, got %v", r.logs.All())
			}
		}},
		{"stale answers end after key_stale_for", func(t *testing.T, r *rig) {
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(testTTL + testStale - time.Millisecond)
			r.mustAuth(t, goodSecret)
			r.clk.add(time.Millisecond)
			_, err := r.auth(t, goodSecret)
			wantUnavailable(t, err)
		}},
		{"revocation is visible within the TTL while the store answers", func(t *testing.T, r *rig) {
			k := r.st.keys[Hash(goodSecret)]
			r.mustAuth(t, goodSecret)
			revoked := r.clk.now()
			r.st.set(func(f *fakeStore) { f.keys[k.Hash].RevokedAt = &revoked })
			r.mustAuth(t, goodSecret) // cached within the TTL
			r.clk.add(testTTL)
			_, err := r.auth(t, goodSecret)
			if providers.KindOf(err) != providers.KindUnauthenticated || !strings.Contains(err.Error(), "revoked") {
				t.Fatalf("want a revoked-key error, got %v", err)
			}
			// Also after an outage: the first answer of the store wins over the stale copy.
			r.st.set(func(f *fakeStore) { f.keys[k.Hash].RevokedAt = nil })
			r.clk.add(testTTL)
			r.mustAuth(t, goodSecret)
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(testTTL)
			r.mustAuth(t, goodSecret) // stale
			r.st.set(func(f *fakeStore) { f.fail, f.keys[k.Hash].RevokedAt = nil, &revoked })
			r.clk.add(testEvery)
			r.mustAuth(t, goodSecret) // still stale: the refresh runs in the background
			r.idle(t)
			_, err = r.auth(t, goodSecret)
			if providers.KindOf(err) != providers.KindUnauthenticated {
				t.Fatalf("want the revocation seen after the store answered, got %v", err)
			}
		}},
		{"an unknown key is not served stale", func(t *testing.T, r *rig) {
			_, err := r.auth(t, "igw_unknownunknownunknown")
			if providers.KindOf(err) != providers.KindUnauthenticated {
				t.Fatalf("want unauthenticated, got %v", err)
			}
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(2 * time.Second) // past the negative answer's TTL, well within key_stale_for
			_, err = r.auth(t, "igw_unknownunknownunknown")
			wantUnavailable(t, err)
			if r.staleServes() != 0 {
				t.Fatal("an unknown key was counted as a stale serve")
			}
		}},
		{"Forget drops the stale copy", func(t *testing.T, r *rig) {
			k, err := r.auth(t, goodSecret)
			if err != nil {
				t.Fatal(err)
			}
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			r.clk.add(testTTL)
			r.mustAuth(t, goodSecret)
			r.a.Forget(k.ID)
			_, err = r.auth(t, goodSecret)
			wantUnavailable(t, err)
		}},
		{"a waiting caller returns when its own context ends", func(t *testing.T, r *rig) {
			r.a.o.Timeout = time.Minute
			r.st.set(func(f *fakeStore) { f.hang, f.deaf = make(chan struct{}), true })
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := r.a.Authenticate(ctx, "Bearer "+goodSecret)
			if err == nil || time.Since(start) > margin {
				t.Fatalf("got %v after %v; want an error when the caller's context ends", err, time.Since(start))
			}
			ctx, cancel = context.WithCancel(context.Background())
			cancel()
			_, err = r.a.Authenticate(ctx, "Bearer "+goodSecret)
			if providers.KindOf(err) != providers.KindCanceled {
				t.Fatalf("want canceled, got %v", err)
			}
		}},
		{"store errors are unavailable with a RetryAfter", func(t *testing.T, r *rig) {
			r.st.set(func(f *fakeStore) { f.fail = errStoreDown })
			_, err := r.auth(t, goodSecret)
			wantUnavailable(t, err)
			if strings.Contains(err.Error(), goodSecret) {
				t.Fatalf("error shows the secret: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newRig(t, 200*time.Millisecond))
		})
	}
}

// TestKeyCacheSingleflight checks that concurrent requests for one key make one store lookup
// at a time, fresh or stale (run with -race).
func TestKeyCacheSingleflight(t *testing.T) {
	r := newRig(t, 2*time.Second)
	r.st.set(func(f *fakeStore) { f.slow = 20 * time.Millisecond })
	other := "igw_othersecretothersecret"
	r.st.add(other)

	run := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s := goodSecret
				if i%2 == 1 {
					s = other
				}
				if _, err := r.auth(t, s); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	run(100)
	if n := r.st.calls.Load(); n != 2 {
		t.Fatalf("store lookups = %d, want 2 (one per key)", n)
	}
	if n := r.st.maxActive.Load(); n > 2 {
		t.Fatalf("%d lookups in flight at once, want at most one per key", n)
	}

	// Outage: many concurrent requests past the TTL, several intervals.
	r.st.set(func(f *fakeStore) { f.fail, f.slow = errStoreDown, 0 })
	r.st.maxActive.Store(0)
	for range 3 {
		r.clk.add(testTTL)
		run(100)
		r.idle(t)
	}
	if n := r.st.maxActive.Load(); n > 2 {
		t.Fatalf("%d lookups in flight at once during the outage, want at most one per key", n)
	}
	if n := r.st.calls.Load(); n > 2+2*3 {
		t.Fatalf("store lookups = %d during 3 intervals of an outage, want at most one per key per interval", n)
	}
	if r.staleServes() != 300 {
		t.Fatalf("stale serves = %d, want 300", r.staleServes())
	}
}

// TestNewAuthenticatorDefaults checks the old constructor still serves stale with defaults.
func TestNewAuthenticatorDefaults(t *testing.T) {
	a := NewAuthenticator(newFake(), 0)
	if a.o.TTL != DefaultTTL || a.o.Timeout != DefaultTimeout || a.o.StaleFor != DefaultStaleFor || a.o.RefreshInterval != DefaultRefreshInterval {
		t.Fatalf("defaults: %+v", a.o)
	}
	if b := New(newFake(), Options{}); b.o.StaleFor != 0 {
		t.Fatal("Options{} must not serve stale")
	}
}
