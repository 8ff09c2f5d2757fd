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

// TestUnbudgetedKeysServedThroughStoreOutage: keys without a budget, cached before Postgres
// went away, are served through a 30-second outage in which connections are refused (the
// server is down, existing connections cut) and then through a shorter partition (blackhole),
// although the key cache's TTL (2s here) passes several times: every request gets 200 within
// store.timeout plus a margin. After the store is back, every request is in the ledger once,
// at the cost its response said, and each key's spend equals its ledger.
//
// With -short the outage lasts 5 seconds instead of 30.
func TestUnbudgetedKeysServedThroughStoreOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	db := newPG(t)
	const timeout = time.Second
	// A short key cache TTL, so that even the -short outage outlasts it several times.
	const keyTTL = 2 * time.Second
	g := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Proxied, "IMAGEGW_STORE_TIMEOUT": timeout.String()},
		func(c *config.Config) { c.Limits.KeyCacheTTL = config.Duration(keyTTL) })
	healOnCleanup(t, db.Proxy)

	type key struct {
		secret, id string
		tally      tally
	}
	keys := make([]*key, 3)
	ctx := context.Background()
	for i := range keys {
		s, id := newKey(t, db.Store, &store.Key{Name: "unbudgeted"})
		keys[i] = &key{secret: s, id: id}
		r := generate(ctx, g.URL, s, requestID("warm"), "warm up", 1)
		if r.Status != http.StatusOK {
			t.Fatalf("warm-up: %s", r)
		}
		keys[i].tally.add(r)
	}

	for _, tc := range []struct {
		name string
		mode faultproxy.Mode
		dur  time.Duration
	}{
		{"refused", faultproxy.Refuse, outage},
		{"partitioned", faultproxy.Blackhole, 7 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setMode(t, db.Proxy, tc.mode)
			if tc.mode == faultproxy.Refuse {
				db.Proxy.CutExisting()
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failed []result
			var n int
			end := time.Now().Add(tc.dur)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; time.Now().Before(end); i++ {
						k := keys[i%len(keys)]
						r := generate(ctx, g.URL, k.secret, requestID(tc.name), "through the outage", 1+i%2)
						k.tally.add(r)
						mu.Lock()
						n++
						if r.Status != http.StatusOK || r.Took > timeout+deadlineMargin {
							failed = append(failed, r)
						}
						mu.Unlock()
						time.Sleep(100 * time.Millisecond)
					}
				}()
			}
			wg.Wait()
			setMode(t, db.Proxy, faultproxy.Pass)
			for i, r := range failed {
				if i == 10 {
					t.Errorf("… %d of %d requests failed or were slow", len(failed), n)
					break
				}
				t.Errorf("during the outage: %s (want 200 within %s)", r, timeout+deadlineMargin)
			}
			t.Logf("%d requests during %s of %s, %d failed or slow", n, tc.dur, tc.name, len(failed))

			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := g.App.Recorder.Flush(fctx); err != nil {
				t.Fatalf("the usage journal did not reach the store after the outage: %v", err)
			}
			for _, k := range keys {
				audit(t, db.Store, k.id, k.tally.results())
			}
		})
	}
}
