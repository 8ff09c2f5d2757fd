package faulttest

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/store"
)

// TestTwoGatewaysOnARedisCluster runs two gateway processes on a real 3-master Redis Cluster
// (scripts/redis-cluster.sh), one given a single node's plain URL (it detects the cluster at
// start) and one the multi-addr form: a key limited to 3 requests a minute gets exactly 3 of 12
// requests sent to both in turn, every decision is made on Redis (none by the per-process
// fallback), and the key's budget is spent once across both.
func TestTwoGatewaysOnARedisCluster(t *testing.T) {
	script := "../../scripts/redis-cluster.sh"
	if err := exec.Command(script, "status").Run(); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skip("no Redis Cluster on 127.0.0.1:7101-7103: start one with scripts/redis-cluster.sh")
		}
		if out, err := exec.Command(script, "start").CombinedOutput(); err != nil {
			t.Fatalf("scripts/redis-cluster.sh start: %v\n%s", err, out)
		}
	}
	out, err := exec.Command(script, "url").Output()
	if err != nil {
		t.Fatalf("scripts/redis-cluster.sh url: %v", err)
	}
	multi := strings.TrimSpace(string(out))
	db := newPG(t)
	a := startChild(t, childConfig{"database_url": db.Direct, "redis_url": "redis://127.0.0.1:7102"}, "")
	b := startChild(t, childConfig{"database_url": db.Direct, "redis_url": multi}, "")

	secret, id := newKey(t, db.Store, &store.Key{Name: "cluster", RPM: intp(3), Budget: amount("1")})
	var rs []result
	for i := 0; i < 12; i++ {
		base := a.URL
		if i%2 == 1 {
			base = b.URL
		}
		rs = append(rs, generate(context.Background(), base, secret, requestID("cluster"), "on the cluster", 1))
	}
	if n := served(rs); n != 3 {
		t.Fatalf("%d of 12 requests served across two gateways on the cluster; the key's limit is 3 a minute (%s)", n, statuses(rs))
	}
	for _, g := range []*child{a, b} {
		if v, err := scrape(g.URL, `imagegw_ratelimit_fallback_active`); err != nil || v != 0 {
			t.Errorf("%s: imagegw_ratelimit_fallback_active = %v (%v): limits fell back to the process", g.URL, v, err)
		}
		if v, err := scrape(g.URL, `imagegw_ratelimit_decisions_total{backend="redis",limit="requests",result="refused",subject="key"}`); err != nil || v == 0 {
			// Both gateways refused on Redis: the limit is shared, not per process.
			t.Errorf("%s: no refusal decided on Redis (%v, %v)", g.URL, v, err)
		}
	}
	for _, r := range rs {
		if r.Status != http.StatusOK && r.Status != http.StatusTooManyRequests {
			t.Errorf("%s", r)
		}
	}
	waitLedger(t, db.Store, id, rs)
	audit(t, db.Store, id, rs)
}
