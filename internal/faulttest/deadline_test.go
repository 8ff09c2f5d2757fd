package faulttest

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/store"
)

// deadlineMargin is what a request may take beyond store.timeout (or redis_timeout): the rest
// of its work is in memory and on loopback. Generous for -race on two shared cores; with
// store.timeout at 2s a request that waited for two store deadlines one after the other still
// exceeds it.
const deadlineMargin = 1500 * time.Millisecond

// TestDeadlinesWithPostgresPartitioned: with Postgres blackholed (connections open, nothing
// moves), every request ends within store.timeout plus a margin: an unknown key gets 503 with
// Retry-After, a budgeted key is served from its slice while the slice lasts and then gets 503
// with Retry-After (alone or with many requests waiting for the same claim), a cached
// unbudgeted key is served, and after the key cache's TTL the same holds with the stale cache.
func TestDeadlinesWithPostgresPartitioned(t *testing.T) {
	db := newPG(t)
	const timeout = 2 * time.Second
	const keyTTL = 2 * time.Second
	g := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Proxied, "IMAGEGW_STORE_TIMEOUT": timeout.String()},
		func(c *config.Config) { c.Limits.KeyCacheTTL = config.Duration(keyTTL) })
	healOnCleanup(t, db.Proxy)
	bound := timeout + deadlineMargin

	plain, _ := newKey(t, db.Store, &store.Key{Name: "plain"})
	unknown, _ := newKey(t, db.Store, &store.Key{Name: "never used before the partition"})
	budgeted, _ := newKey(t, db.Store, &store.Key{Name: "budgeted", Budget: amount("100")})
	budgeted2, _ := newKey(t, db.Store, &store.Key{Name: "budgeted, concurrent", Budget: amount("100")})
	ctx := context.Background()
	for _, s := range []string{plain, budgeted, budgeted2} {
		if r := generate(ctx, g.URL, s, requestID("warm"), "warm up", 1); r.Status != http.StatusOK {
			t.Fatalf("warm-up: %s", r)
		}
	}

	setMode(t, db.Proxy, faultproxy.Blackhole)
	partitioned := time.Now()

	// checkUnavailable: a 503 with Retry-After within the bound.
	checkUnavailable := func(t *testing.T, what string, r result) {
		t.Helper()
		switch {
		case r.Status != http.StatusServiceUnavailable || r.RetryAfter == "":
			t.Errorf("%s: %s, want 503 with Retry-After", what, r)
		case r.Took > bound:
			t.Errorf("%s: %s, longer than store.timeout %s + %s", what, r, timeout, deadlineMargin)
		}
	}
	checkServed := func(t *testing.T, what string, r result) {
		t.Helper()
		switch {
		case r.Status != http.StatusOK:
			t.Errorf("%s: %s, want 200", what, r)
		case r.Took > bound:
			t.Errorf("%s: %s, longer than store.timeout %s + %s", what, r, timeout, deadlineMargin)
		}
	}

	t.Run("unknown key", func(t *testing.T) {
		checkUnavailable(t, "a key not in the cache", generate(ctx, g.URL, unknown, requestID("unknown"), "x", 1))
	})
	t.Run("cached key without budget", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			checkServed(t, "a cached key without budget", generate(ctx, g.URL, plain, requestID("plain"), "x", 1))
		}
	})
	t.Run("budgeted key, slice used up", func(t *testing.T) {
		// The slice covers a few requests; the one it no longer covers needs a claim.
		var served int
		for i := 0; i < 50; i++ {
			r := generate(ctx, g.URL, budgeted, requestID("budget"), "x", 1)
			if r.Status == http.StatusOK && r.Took <= bound {
				served++
				continue
			}
			checkUnavailable(t, "a budgeted key whose slice is used up", r)
			t.Logf("served %d requests from the slice, then: %s", served, r)
			return
		}
		t.Errorf("50 requests served from a slice during a partition")
	})
	t.Run("budgeted key, concurrent requests wait for one claim", func(t *testing.T) {
		// Use up the slice (one by one), then many requests need the same claim at once.
		for i := 0; i < 50; i++ {
			if r := generate(ctx, g.URL, budgeted2, requestID("budget2"), "x", 1); r.Status != http.StatusOK {
				break
			}
		}
		rs := burst(ctx, 6, func(i int) result { return generate(ctx, g.URL, budgeted2, requestID("budget2c"), "x", 1) })
		refused := 0
		for _, r := range rs {
			if r.Status == http.StatusOK {
				// Budget the replica was giving back when the partition hit returns to its slice
				// once the give-back fails; serving from it is sound (it is still reserved in the
				// store) as long as it is quick.
				checkServed(t, "concurrent requests of a budgeted key whose slice is used up", r)
				continue
			}
			refused++
			checkUnavailable(t, "concurrent requests of a budgeted key whose slice is used up", r)
		}
		if refused == 0 {
			t.Errorf("every request of a used-up slice was served during a partition")
		}
	})
	t.Run("after the key cache TTL", func(t *testing.T) {
		// The keys' cached entries have expired: they are answered stale (plain), or stale and
		// then refused for the budget claim (budgeted); an unknown key is still refused.
		time.Sleep(time.Until(partitioned.Add(keyTTL + 100*time.Millisecond)))
		rs := burst(ctx, 9, func(i int) result {
			switch i % 3 {
			case 0:
				return generate(ctx, g.URL, plain, requestID("stale"), "x", 1)
			case 1:
				return generate(ctx, g.URL, budgeted, requestID("stalebudget"), "x", 1)
			}
			return generate(ctx, g.URL, unknown, requestID("unknown2"), "x", 1)
		})
		for i, r := range rs {
			switch i % 3 {
			case 0:
				checkServed(t, "a key without budget served stale", r)
			case 1:
				checkUnavailable(t, "a budgeted key served stale, slice used up", r)
			default:
				checkUnavailable(t, "a key not in the cache", r)
			}
		}
	})

	setMode(t, db.Proxy, faultproxy.Pass)
	// Healed: every kind of key works again (the unknown one after its lookup succeeds).
	eventually(t, 10*time.Second, "requests succeed after the partition heals", func() bool {
		return generate(ctx, g.URL, unknown, requestID("healed"), "x", 1).Status == http.StatusOK &&
			generate(ctx, g.URL, budgeted, requestID("healed"), "x", 1).Status == http.StatusOK
	})
}

// burst runs n requests at once and returns their results in order.
func burst(ctx context.Context, n int, f func(i int) result) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f(i)
		}()
	}
	wg.Wait()
	return out
}

// TestDeadlinesWithRedisPartitioned: with Redis blackholed, requests of a key with rate and
// concurrency limits end within rate_limit.redis_timeout plus a margin: served from the
// in-process fallback under failure_policy "open", refused with 503 and Retry-After under
// "closed". Once Redis is back, limits are enforced in Redis again.
func TestDeadlinesWithRedisPartitioned(t *testing.T) {
	db := newPG(t)
	r := newRedis(t)
	const redisTimeout = 300 * time.Millisecond
	for _, policy := range []string{"open", "closed"} {
		t.Run(policy, func(t *testing.T) {
			g := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Direct, "IMAGEGW_REDIS_URL": r.Proxied},
				func(c *config.Config) {
					c.RateLimit.FailurePolicy = policy
					c.RateLimit.RedisTimeout = config.Duration(redisTimeout)
				})
			healOnCleanup(t, r.Proxy)
			secret, keyID := newKey(t, db.Store, &store.Key{Name: "limited " + policy, Concurrency: intp(8), RPM: intp(10000)})
			r.forget(t, keyID)
			ctx := context.Background()
			if res := generate(ctx, g.URL, secret, requestID("warm"), "warm", 1); res.Status != http.StatusOK {
				t.Fatalf("warm-up: %s", res)
			}
			setMode(t, r.Proxy, faultproxy.Blackhole)
			rs := burst(ctx, 6, func(int) result { return generate(ctx, g.URL, secret, requestID("redis"), "x", 1) })
			for i := 0; i < 6; i++ {
				rs = append(rs, generate(ctx, g.URL, secret, requestID("redis"), "x", 1))
			}
			for _, res := range rs {
				if res.Took > redisTimeout+deadlineMargin {
					t.Errorf("with Redis partitioned: %s, longer than redis_timeout %s + %s", res, redisTimeout, deadlineMargin)
				}
				switch {
				case policy == "open" && res.Status != http.StatusOK:
					t.Errorf("failure_policy open, Redis partitioned: %s, want 200", res)
				case policy == "closed" && (res.Status != http.StatusServiceUnavailable || res.RetryAfter == ""):
					t.Errorf("failure_policy closed, Redis partitioned: %s, want 503 with Retry-After", res)
				}
			}
			setMode(t, r.Proxy, faultproxy.Pass)
			eventually(t, 10*time.Second, "requests are admitted through Redis again", func() bool {
				res := generate(ctx, g.URL, secret, requestID("back"), "x", 1)
				n, err := r.Client.Exists(ctx, "imagegw:{key:"+keyID+"}:rpm").Result()
				return res.Status == http.StatusOK && err == nil && n == 1
			})
		})
	}
}

// TestDeadlineBoundsTheWholeRequest: the bound holds for a request, not for each store call it
// makes. Postgres is partitioned; a budgeted key's slice is used up; its cached entry expires
// with no key lookup having failed yet. Its next request must still end within store.timeout
// plus a margin (README: "their requests get 503 with Retry-After after at most
// store.timeout"), although it needs both a key lookup and a budget claim.
func TestDeadlineBoundsTheWholeRequest(t *testing.T) {
	db := newPG(t)
	const timeout = 2 * time.Second
	const keyTTL = 5 * time.Second
	g := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Proxied, "IMAGEGW_STORE_TIMEOUT": timeout.String()},
		func(c *config.Config) { c.Limits.KeyCacheTTL = config.Duration(keyTTL) })
	healOnCleanup(t, db.Proxy)
	budgeted, _ := newKey(t, db.Store, &store.Key{Name: "budgeted", Budget: amount("100")})
	ctx := context.Background()
	warmed := time.Now()
	if r := generate(ctx, g.URL, budgeted, requestID("warm"), "warm up", 1); r.Status != http.StatusOK {
		t.Fatalf("warm-up: %s", r)
	}
	setMode(t, db.Proxy, faultproxy.Blackhole)
	for i := 0; ; i++ {
		r := generate(ctx, g.URL, budgeted, requestID("spend"), "x", 1)
		if r.Status != http.StatusOK {
			break
		}
		if i == 50 {
			t.Fatal("50 requests served from a slice during a partition")
		}
	}
	if time.Since(warmed) >= keyTTL {
		t.Fatalf("using up the slice took longer than the key cache TTL (%s)", keyTTL)
	}
	time.Sleep(time.Until(warmed.Add(keyTTL + 200*time.Millisecond)))
	r := generate(ctx, g.URL, budgeted, requestID("expired"), "x", 1)
	if r.Status != http.StatusServiceUnavailable || r.RetryAfter == "" {
		t.Errorf("%s, want 503 with Retry-After", r)
	}
	if r.Took > timeout+deadlineMargin {
		t.Errorf("%s: longer than store.timeout %s + %s (a key lookup and a budget claim waited one after the other)",
			r, timeout, deadlineMargin)
	}
}
