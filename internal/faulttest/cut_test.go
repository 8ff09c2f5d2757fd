package faulttest

import (
	"context"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// TestPostgresCutDuringLoadChargesOnce: a gateway serves a concurrent load on two budgeted keys
// (one with room, one whose budget runs out during the run) while its Postgres connections are
// refused and cut, reset again and again (so that ledger inserts fail after Postgres may have
// committed them), and partitioned. After recovery, per key: every response that carried a cost
// is in the ledger once at that cost, nothing refused is, spent == ledger == the sum of the cost
// headers, key_spend reconciles with the ledger, and the small budget is never exceeded.
func TestPostgresCutDuringLoadChargesOnce(t *testing.T) {
	db := newPG(t)
	g := inproc(t, map[string]string{"IMAGEGW_DATABASE_URL": db.Proxied, "IMAGEGW_STORE_TIMEOUT": "1s"}, nil)
	healOnCleanup(t, db.Proxy)
	bigSecret, bigID := newKey(t, db.Store, &store.Key{Name: "room", Budget: amount("1000")})
	const small = "1.50"
	smallSecret, smallID := newKey(t, db.Store, &store.Key{Name: "runs out", Budget: amount(small)})

	stop := make(chan struct{})
	big := runLoad(g.URL, bigSecret, "big", 6, stop, false)
	little := runLoad(g.URL, smallSecret, "small", 2, stop, false)

	step := func(d time.Duration, what string) {
		t.Logf("%s for %s", what, d)
		time.Sleep(d)
	}
	step(time.Second, "load")
	setMode(t, db.Proxy, faultproxy.Refuse)
	db.Proxy.CutExisting()
	step(3*time.Second, "Postgres down (refused, connections cut)")
	setMode(t, db.Proxy, faultproxy.Pass)
	step(time.Second, "Postgres back")
	for i := 0; i < 8; i++ {
		db.Proxy.CutExisting() // inserts in flight fail; some had committed
		time.Sleep(300 * time.Millisecond)
	}
	setMode(t, db.Proxy, faultproxy.Blackhole)
	step(2*time.Second, "Postgres partitioned")
	setMode(t, db.Proxy, faultproxy.Pass)
	step(time.Second, "Postgres back")
	close(stop)
	<-big.wait
	<-little.wait

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.App.Recorder.Flush(ctx); err != nil {
		t.Fatalf("the journal did not reach the store: %v", err)
	}
	audit(t, db.Store, bigID, big.results())
	audit(t, db.Store, smallID, little.results())
	if sp := spent(t, db.Store, smallID); sp > money.MustParse(small) {
		t.Errorf("the small key spent %s of a budget of %s", sp, small)
	}
}
