package faulttest

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/store"
)

// replay starts an in-process gateway on the journal directory and database, waits until it
// has moved everything the journal holds to the ledger, and returns it.
func replay(t *testing.T, dbURL, journal string) {
	t.Helper()
	b := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": dbURL},
		func(c *config.Config) { c.Billing.OutboxDir = journal })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.App.Recorder.Flush(ctx); err != nil {
		t.Fatalf("replaying the journal: %v", err)
	}
}

// TestDrainOverrun covers SIGTERM: a drain that outlasts shutdown_timeout cancels the requests
// still running, which still account for themselves, and the process exits 0 with everything in
// the ledger; a SIGTERM while Postgres is down leaves the events in the journal (exit 0: nothing
// is lost) for the next start to replay; and an event that could not be made durable (the
// journal's disk refused the write) makes the exit code non-zero.
func TestDrainOverrun(t *testing.T) {
	t.Run("requests cancelled", func(t *testing.T) {
		db := newPG(t)
		journal := t.TempDir()
		quickSecret, quickID := newKey(t, db.Store, &store.Key{Name: "quick", Budget: amount("1000")})
		slowSecret, slowID := newKey(t, db.Store, &store.Key{Name: "slow", Budget: amount("1000")})
		a := startChild(t, childConfig{"database_url": db.Direct, "shutdown_timeout": "1s",
			"billing": map[string]any{"outbox_dir": journal}}, "")

		const slow = 6
		slowTally := &tally{}
		var slowDone sync.WaitGroup
		for i := 0; i < slow; i++ {
			slowDone.Add(1)
			go func() {
				defer slowDone.Done()
				slowTally.add(generate(context.Background(), a.URL, slowSecret, requestID("slow"), "[sandbox:latency=30s] outlasts the drain", 1))
			}()
		}
		eventually(t, 10*time.Second, "the slow requests are journaled as begun", func() bool {
			v, err := scrape(a.URL, "imagegw_usage_open_requests")
			return err == nil && v == slow
		})
		stop := make(chan struct{})
		load := runLoad(a.URL, quickSecret, "quick", 4, stop, true)
		time.Sleep(time.Second)

		sent := time.Now()
		code := a.terminate(20 * time.Second)
		t.Logf("exited with %d, %s after SIGTERM", code, time.Since(sent).Round(time.Millisecond))
		close(stop)
		<-load.wait
		slowDone.Wait()
		a.raceReports()
		if code != 0 {
			t.Errorf("exit code %d after a drain overrun that lost nothing, want 0", code)
		}
		if !strings.Contains(a.logs.String(), "drain overran shutdown_timeout") {
			t.Errorf("the log does not say the drain overran")
		}

		// Directly: the process put everything in the ledger before it exited.
		quick, _ := audit(t, db.Store, quickID, load.results())
		slowLedger, _ := audit(t, db.Store, slowID, slowTally.results())
		for _, res := range slowTally.results() {
			e, ok := slowLedger[res.ID]
			switch {
			case !ok:
				t.Errorf("%s: cancelled by the drain but not in the ledger (%s)", res.ID, res)
			case e.Status != store.StatusIndeterminate || e.Cost != 0:
				t.Errorf("%s: cancelled by the drain, in the ledger as %s/%s cost %s; want indeterminate, cost 0", res.ID, e.Status, e.ErrorKind, e.Cost)
			default:
				t.Logf("%s: %s/%s (client: %s)", res.ID, e.Status, e.ErrorKind, res)
			}
		}
		// A restart on the same journal finds nothing left to add.
		replay(t, db.Direct, journal)
		if l := ledger(t, db.Store, quickID); len(l) != len(quick) {
			t.Errorf("the replay after a clean exit changed the ledger: %d rows, then %d", len(quick), len(l))
		}
		if l := ledger(t, db.Store, slowID); len(l) != len(slowLedger) {
			t.Errorf("the replay after a clean exit changed the ledger: %d rows, then %d", len(slowLedger), len(l))
		}
	})

	t.Run("Postgres down at shutdown", func(t *testing.T) {
		db := newPG(t)
		journal := t.TempDir()
		secret, keyID := newKey(t, db.Store, &store.Key{Name: "events wait in the journal"})
		a := startChild(t, childConfig{"database_url": db.Proxied, "shutdown_timeout": "1s",
			"store": map[string]any{"timeout": "1s"}, "billing": map[string]any{"outbox_dir": journal}}, "")
		healOnCleanup(t, db.Proxy)
		ta := &tally{}
		ta.add(generate(context.Background(), a.URL, secret, requestID("warm"), "warm up", 1))
		setMode(t, db.Proxy, faultproxy.Refuse)
		db.Proxy.CutExisting()
		for i := 0; i < 20; i++ {
			r := generate(context.Background(), a.URL, secret, requestID("down"), "while Postgres is down", 1+i%2)
			if r.Status != http.StatusOK {
				t.Errorf("with Postgres down, a cached key without budget: %s", r)
			}
			ta.add(r)
		}
		if v := metric(t, a.URL, "imagegw_usage_pending_events"); v < 20 {
			t.Errorf("imagegw_usage_pending_events = %v with Postgres down after 20 requests", v)
		}
		code := a.terminate(30 * time.Second)
		a.raceReports()
		if code != 0 {
			t.Errorf("exit code %d: the events wait in the journal, nothing was lost; want 0", code)
		}
		setMode(t, db.Proxy, faultproxy.Pass)
		replay(t, db.Direct, journal)
		audit(t, db.Store, keyID, ta.results())
	})

	t.Run("loss makes the exit code non-zero", func(t *testing.T) {
		db := newPG(t)
		journal := t.TempDir()
		secret, keyID := newKey(t, db.Store, &store.Key{Name: "journal full"})
		// The journal's disk is full: the process may not write files larger than 32-64 KB
		// (ulimit -f counts 512- or 1024-byte blocks depending on the shell), so once the
		// journal holds that much (Postgres is down, nothing leaves it) appends fail.
		a := startChild(t, childConfig{"database_url": db.Proxied, "shutdown_timeout": "2s",
			"store": map[string]any{"timeout": "1s"}, "billing": map[string]any{"outbox_dir": journal}}, "ulimit -f 64")
		healOnCleanup(t, db.Proxy)
		ta := &tally{}
		ta.add(generate(context.Background(), a.URL, secret, requestID("warm"), "warm up", 1))
		setMode(t, db.Proxy, faultproxy.Refuse)
		db.Proxy.CutExisting()
		refused := 0
		for i := 0; i < 1000 && refused < 3; i++ {
			r := generate(context.Background(), a.URL, secret, requestID("full"), "until the journal is full", 1)
			ta.add(r)
			switch {
			case r.Status == http.StatusOK:
			case r.Status == http.StatusServiceUnavailable && strings.Contains(r.Body, "usage ledger is unavailable"):
				refused++
			default:
				t.Fatalf("while the journal fills: %s", r)
			}
		}
		if refused == 0 {
			t.Skip("the journal never filled up: the file size limit (ulimit -f) does not apply here")
		}
		t.Logf("%s", statuses(ta.results()))
		// Postgres comes back, the journal drains; the loss is still a loss.
		setMode(t, db.Proxy, faultproxy.Pass)
		eventually(t, 20*time.Second, "the journal drains into the store", func() bool {
			v, err := scrape(a.URL, "imagegw_usage_pending_events")
			return err == nil && v == 0
		})
		if v := metric(t, a.URL, "imagegw_usage_events_dropped_total"); v < 1 {
			t.Errorf("imagegw_usage_events_dropped_total = %v after refused requests", v)
		}
		code := a.terminate(30 * time.Second)
		a.raceReports()
		if code == 0 {
			t.Errorf("exit code 0 although %d events could not be made durable", refused)
		}
		if !regexp.MustCompile(`[1-9][0-9]* events could not be made durable`).MatchString(a.logs.String()) {
			t.Errorf("the log does not count the events that could not be made durable")
		}
		// What was delivered is in the ledger; what was refused is not (a request whose charge
		// failed after its upstream call is an indeterminate row once the journal is replayed).
		replay(t, db.Direct, journal)
		audit(t, db.Store, keyID, ta.results())
	})
}
