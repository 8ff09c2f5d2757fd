package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/usage"
)

// loadPrompt varies what a load request asks for: plain deliveries, partial deliveries
// (withheld images), upstream failures, and latencies that keep requests in flight.
func loadPrompt(i int) (prompt string, n int) {
	n = 1 + i%3
	lat := fmt.Sprintf("[sandbox:latency=%dms]", 20*(i%8))
	switch i % 7 {
	case 3:
		if n > 1 {
			return lat + " [sandbox:withhold=1] partial", n
		}
	case 5:
		return lat + " [sandbox:fail=upstream_unavailable] failing", n
	}
	return lat + " load", n
}

// runLoad sends requests of the key from workers goroutines until stop is closed (a worker
// also stops at its first request without a response once stopOnDeadGateway is set), and
// returns every result.
func runLoad(base, secret, tag string, workers int, stop <-chan struct{}, stopOnDeadGateway bool) *tally {
	ta := &tally{}
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(seq.Add(1))
				prompt, n := loadPrompt(i)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r := generate(ctx, base, secret, requestID(tag), prompt, n)
				cancel()
				ta.add(r)
				if r.Status == 0 && stopOnDeadGateway {
					return
				}
				if r.Status != http.StatusOK {
					// Refusals are fast: do not spin on them.
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ta.wait = done
	return ta
}

// TestSIGKILLMidLoadLosesNothing: a gateway process on Postgres and Redis serves a concurrent
// load on a budgeted key (deliveries, partial deliveries, failures) while other requests of a
// second budgeted key are deep in a slow upstream call; it is killed with SIGKILL. A second
// process on the same journal directory (which replays what the first left while it serves the
// load, and fsyncs charges in the background: billing.journal_fsync 20ms) is killed the same
// way. A third gateway replays what both left. Then, per key, the ledger matches what every
// client saw (see audit: every response that carried a cost is in the ledger once at that cost,
// 200s as ok; nothing refused at admission is; no row twice or unknown), spent == ledger ==
// cost headers (plus charges made durable just before a kill whose response never left), and
// each request that was in the upstream at a kill is an indeterminate, "interrupted" row of
// cost 0.
func TestSIGKILLMidLoadLosesNothing(t *testing.T) {
	db := newPG(t)
	r := newRedis(t)
	journal := t.TempDir()
	loadSecret, loadID := newKey(t, db.Store, &store.Key{Name: "load", Budget: amount("1000"), Concurrency: intp(64), RPM: intp(100000)})
	slowSecret, slowID := newKey(t, db.Store, &store.Key{Name: "slow", Budget: amount("1000")})
	r.forget(t, loadID)

	var loadResults []result
	slowTally := &tally{}
	for round := 1; round <= 2; round++ {
		billing := map[string]any{"outbox_dir": journal}
		if round == 2 {
			// Charges fsync'd in the background, after their responses: a crash of the process
			// must lose none of them either (they are in the page cache before the response).
			billing["journal_fsync"] = "20ms"
		}
		a := startChild(t, childConfig{"database_url": db.Direct, "redis_url": r.Direct,
			"billing": billing, "rate_limit": map[string]any{"lease_ttl": "3s"}}, "")

		// Requests that will be in the upstream when the process dies.
		const slow = 5
		var slowDone sync.WaitGroup
		for i := 0; i < slow; i++ {
			slowDone.Add(1)
			go func() {
				defer slowDone.Done()
				slowTally.add(generate(context.Background(), a.URL, slowSecret, requestID("slow"), "[sandbox:latency=60s] in flight at the kill", 1))
			}()
		}
		eventually(t, 10*time.Second, "the slow requests are journaled as begun", func() bool {
			v, err := scrape(a.URL, "imagegw_usage_open_requests")
			return err == nil && v == slow
		})

		stop := make(chan struct{})
		load := runLoad(a.URL, loadSecret, "load", 12, stop, true)
		time.Sleep(1500 * time.Millisecond)
		if v := metric(t, a.URL, "imagegw_billing_holds_open"); v < slow {
			t.Errorf("imagegw_billing_holds_open = %v with %d slow budgeted requests in flight", v, slow)
		}
		a.kill()
		close(stop)
		<-load.wait
		slowDone.Wait()
		a.raceReports()

		rs := load.results()
		served := 0
		for _, res := range rs {
			if res.Status == http.StatusOK {
				served++
			}
		}
		t.Logf("round %d: %s before the kill", round, statuses(rs))
		if served < 10 {
			t.Fatalf("round %d: only %d requests served before the kill: the load did not run", round, served)
		}
		loadResults = append(loadResults, rs...)
	}

	// A new gateway on the same journal and database replays what the dead ones left.
	b := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Direct, "IMAGEGW_REDIS_URL": r.Direct},
		func(c *config.Config) { c.Billing.OutboxDir = journal })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.App.Recorder.Flush(ctx); err != nil {
		t.Fatalf("replaying the journal: %v", err)
	}
	if p := b.App.Recorder.Stats().Pending; p != 0 {
		t.Errorf("%d usage events still pending after the replay", p)
	}

	audit(t, db.Store, loadID, loadResults)
	slowLedger, _ := audit(t, db.Store, slowID, slowTally.results())
	for _, res := range slowTally.results() {
		e, ok := slowLedger[res.ID]
		switch {
		case res.Status != 0:
			t.Errorf("a request in the upstream at the kill got an answer: %s", res)
		case !ok:
			t.Errorf("%s: in the upstream at the kill, but not in the ledger", res.ID)
		case e.Status != store.StatusIndeterminate || e.ErrorKind != usage.InterruptedKind || e.Cost != 0:
			t.Errorf("%s: in the upstream at the kill, in the ledger as %s/%s cost %s; want indeterminate/%s cost 0",
				res.ID, e.Status, e.ErrorKind, e.Cost, usage.InterruptedKind)
		}
	}
}
