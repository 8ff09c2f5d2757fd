package faulttest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/store"
)

// TestOverloadShedsFast: with limits.max_in_flight requests stuck in a slow upstream, further
// image requests are refused at once with 503 "overloaded" and Retry-After (not queued behind
// the slow ones), /healthz and /metrics still answer, and once the slow requests finish the
// gateway serves again.
func TestOverloadShedsFast(t *testing.T) {
	const limit = 8
	const upstream = 4 * time.Second
	g := inproc(t, nil, func(c *config.Config) { c.Limits.MaxInFlight = limit })
	ctx := context.Background()

	var slow sync.WaitGroup
	slowResults := make([]result, limit)
	for i := 0; i < limit; i++ {
		slow.Add(1)
		go func() {
			defer slow.Done()
			slowResults[i] = generate(ctx, g.URL, g.Key, requestID("slow"), "[sandbox:latency="+upstream.String()+"] slow", 1)
		}()
	}
	eventually(t, 5*time.Second, "the slow requests fill max_in_flight", func() bool {
		v, err := scrape(g.URL, "imagegw_api_in_flight_requests")
		return err == nil && v == limit
	})

	// Shed answers must come well before a slot could free (the upstream's latency).
	const fast = 1500 * time.Millisecond
	extra := burst(ctx, 30, func(int) result { return generate(ctx, g.URL, g.Key, requestID("extra"), "one too many", 1) })
	for _, r := range extra {
		switch {
		case r.Status != http.StatusServiceUnavailable || r.RetryAfter == "" || !strings.Contains(r.Body, "overloaded"):
			t.Errorf("beyond max_in_flight: %s, want 503 overloaded with Retry-After", r)
		case r.Took > fast:
			t.Errorf("beyond max_in_flight: %s, want it within %s (not queued)", r, fast)
		}
	}
	hctx, cancel := context.WithTimeout(ctx, fast)
	defer cancel()
	if status, body, err := get(hctx, g.URL, "/healthz"); err != nil || status != http.StatusOK {
		t.Errorf("/healthz while overloaded: %d %q %v", status, body, err)
	}
	if v := metric(t, g.URL, "imagegw_api_shed_requests_total"); v < float64(len(extra)) {
		t.Errorf("imagegw_api_shed_requests_total = %v after %d shed requests", v, len(extra))
	}

	slow.Wait()
	for _, r := range slowResults {
		if r.Status != http.StatusOK {
			t.Errorf("a request within max_in_flight: %s", r)
		}
	}
	if r := generate(ctx, g.URL, g.Key, requestID("after"), "after the overload", 1); r.Status != http.StatusOK {
		t.Errorf("after the overload: %s", r)
	}
}

// TestLiveGauges: imagegw_billing_holds_open counts the budgeted requests in flight while they
// run (not only requests of keys without a budget, not stale), and imagegw_usage_pending_events
// counts the events waiting in the journal while Postgres is cut, back to 0 once it returns.
func TestLiveGauges(t *testing.T) {
	db := newPG(t)
	g := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Proxied, "IMAGEGW_STORE_TIMEOUT": "1s"}, nil)
	healOnCleanup(t, db.Proxy)
	budgeted, _ := newKey(t, db.Store, &store.Key{Name: "budgeted", Budget: amount("100")})
	plain, _ := newKey(t, db.Store, &store.Key{Name: "plain"})
	ctx := context.Background()

	t.Run("holds open", func(t *testing.T) {
		const holds = 5
		var wg sync.WaitGroup
		for i := 0; i < holds+2; i++ {
			secret := budgeted
			if i >= holds {
				secret = plain // in flight too, but holds nothing
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := generate(ctx, g.URL, secret, requestID("hold"), "[sandbox:latency=3s] holding", 1); r.Status != http.StatusOK {
					t.Errorf("%s", r)
				}
			}()
		}
		eventually(t, 2*time.Second, "imagegw_billing_holds_open counts the budgeted requests in flight", func() bool {
			return metric(t, g.URL, "imagegw_billing_holds_open") == holds
		})
		if v := metric(t, g.URL, "imagegw_billing_held"); v != holds*0.01 {
			t.Errorf("imagegw_billing_held = %v with %d holds of 0.01", v, holds)
		}
		time.Sleep(500 * time.Millisecond)
		if v := metric(t, g.URL, "imagegw_billing_holds_open"); v != holds {
			t.Errorf("imagegw_billing_holds_open = %v while %d budgeted requests run", v, holds)
		}
		wg.Wait()
		if v := metric(t, g.URL, "imagegw_billing_holds_open"); v != 0 {
			t.Errorf("imagegw_billing_holds_open = %v after the requests finished", v)
		}
	})

	t.Run("pending events", func(t *testing.T) {
		if r := generate(ctx, g.URL, plain, requestID("warm"), "warm", 1); r.Status != http.StatusOK {
			t.Fatalf("%s", r)
		}
		eventually(t, 5*time.Second, "nothing pending before the cut", func() bool {
			return metric(t, g.URL, "imagegw_usage_pending_events") == 0
		})
		setMode(t, db.Proxy, faultproxy.Refuse)
		db.Proxy.CutExisting()
		const n = 10
		for i := 0; i < n; i++ {
			if r := generate(ctx, g.URL, plain, requestID("cut"), "while cut", 1); r.Status != http.StatusOK {
				t.Fatalf("%s", r)
			}
		}
		if v := metric(t, g.URL, "imagegw_usage_pending_events"); v != n {
			t.Errorf("imagegw_usage_pending_events = %v after %d requests with Postgres cut", v, n)
		}
		eventually(t, 10*time.Second, "imagegw_usage_store_down says so", func() bool {
			return metric(t, g.URL, "imagegw_usage_store_down") == 1
		})
		setMode(t, db.Proxy, faultproxy.Pass)
		d := eventually(t, 10*time.Second, "imagegw_usage_pending_events returns to 0", func() bool {
			return metric(t, g.URL, "imagegw_usage_pending_events") == 0
		})
		t.Logf("pending events back to 0 %s after Postgres returned", d.Round(time.Millisecond))
		if v := metric(t, g.URL, "imagegw_usage_store_down"); v != 0 {
			t.Errorf("imagegw_usage_store_down = %v after the events were written", v)
		}
	})
}
