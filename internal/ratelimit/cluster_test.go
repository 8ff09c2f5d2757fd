package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/metrics/metricstest"
)

// The Redis Cluster tests run against a real cluster of 3 masters: scripts/redis-cluster.sh's on
// 127.0.0.1:7101-7103, or IMAGEGW_TEST_REDIS_CLUSTER_URL. With CI=true or
// IMAGEGW_TEST_REDIS_CLUSTER=start they start the script's cluster when it is not up (and leave
// it running for later runs and other packages; `scripts/redis-cluster.sh stop` stops it); in CI
// a cluster that cannot be started fails them, elsewhere they skip.

const defaultClusterURL = "redis://127.0.0.1:7101?addr=127.0.0.1:7102&addr=127.0.0.1:7103"

const startClusterHint = "start one with scripts/redis-cluster.sh (3 masters on 127.0.0.1:7101-7103; " +
	"`scripts/redis-cluster.sh stop` stops it), set IMAGEGW_TEST_REDIS_CLUSTER=start to let the tests " +
	"start it, or point IMAGEGW_TEST_REDIS_CLUSTER_URL at a cluster"

var (
	clusterOnce sync.Once
	clusterErr  error
)

// clusterScript is scripts/redis-cluster.sh (tests run in the package's directory).
func clusterScript() string {
	p, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "redis-cluster.sh"))
	return p
}

// runClusterScript runs the script with extra environment.
func runClusterScript(env []string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, clusterScript(), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", clusterScript(), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// needCluster returns the URL of the test cluster, whose every master reports cluster_state:ok.
func needCluster(t testing.TB) string {
	t.Helper()
	u := os.Getenv("IMAGEGW_TEST_REDIS_CLUSTER_URL")
	ours := u == ""
	if ours {
		u = defaultClusterURL
	}
	clusterOnce.Do(func() {
		clusterErr = clusterReady(u)
		start := os.Getenv("CI") == "true" || os.Getenv("IMAGEGW_TEST_REDIS_CLUSTER") == "start"
		if clusterErr == nil || !ours || !start {
			return
		}
		if err := runClusterScript(nil, "start"); err != nil {
			clusterErr = fmt.Errorf("%v; starting it failed: %w", clusterErr, err)
			return
		}
		clusterErr = clusterReady(u)
	})
	if clusterErr != nil {
		msg := fmt.Sprintf("Redis Cluster at %s is not ready: %v", redactedURL(u), clusterErr)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true, so this is a failure)", msg)
		}
		t.Skipf("%s; %s", msg, startClusterHint)
	}
	return u
}

func randomTag() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func redactedURL(raw string) string { return scrubPassword(raw, raw) }

// clusterReady checks that every master of the cluster at u answers cluster_state:ok and that
// there are at least 3.
func clusterReady(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := NewClient(ctx, withQuery(u, "cluster", "true"), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	cc := c.Redis().(*redis.ClusterClient)
	var masters atomic.Int64
	err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		info, err := m.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state is not ok", m.Options().Addr)
		}
		masters.Add(1)
		return nil
	})
	if err != nil {
		return err
	}
	if n := masters.Load(); n < 3 {
		return fmt.Errorf("%d masters, want 3", n)
	}
	return nil
}

// withQuery returns raw with the query parameter k set to v.
func withQuery(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// nodeURL returns raw naming only the node addr (no addr= parameters): a gateway configured with
// one node of the cluster.
func nodeURL(raw, addr string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Del("addr")
	q.Del("cluster")
	u.RawQuery = q.Encode()
	u.Host = addr
	return u.String()
}

// clusterAdmin is a cluster client for the test's own checks, closed with the test.
func clusterAdmin(t testing.TB, u string) *redis.ClusterClient {
	t.Helper()
	c, err := NewClient(context.Background(), withQuery(u, "cluster", "true"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.Redis().(*redis.ClusterClient)
}

// clusterPrefix returns a random key prefix and deletes its keys on every master when the test
// ends.
func clusterPrefix(t testing.TB, admin *redis.ClusterClient) string {
	t.Helper()
	prefix := "imagegwtest-" + randomTag()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = admin.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			keys, err := m.Keys(ctx, prefix+":*").Result()
			for _, k := range keys {
				_ = m.Del(ctx, k).Err() // one key per call: a cluster refuses cross-slot DEL
			}
			return err
		})
	})
	return prefix
}

// masters returns the addresses of the cluster's masters and, for each slot, the index of the
// master that serves it.
func masters(t testing.TB, admin *redis.ClusterClient) ([]string, [16384]int) {
	t.Helper()
	var owner [16384]int
	slots, err := admin.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	index := map[string]int{}
	for _, s := range slots {
		a := s.Nodes[0].Addr
		i, ok := index[a]
		if !ok {
			i = len(addrs)
			index[a] = i
			addrs = append(addrs, a)
		}
		for slot := s.Start; slot <= s.End; slot++ {
			owner[slot] = i
		}
	}
	return addrs, owner
}

// spreadSubjects returns perMaster fresh key subjects for each master of the cluster, in master
// order, using the slot Redis computes for the subject's keys.
func spreadSubjects(t testing.TB, admin *redis.ClusterClient, lim *Redis, perMaster int) [][]Subject {
	t.Helper()
	addrs, owner := masters(t, admin)
	out := make([][]Subject, len(addrs))
	need := perMaster * len(addrs)
	tag := randomTag()
	for i := 0; need > 0; i++ {
		if i > 1000 {
			t.Fatal("could not spread subjects over the masters")
		}
		s := KeySubject(fmt.Sprintf("spread-%s-%d", tag, i))
		slot, err := admin.ClusterKeySlot(context.Background(), lim.Key(s, "rpm")).Result()
		if err != nil {
			t.Fatal(err)
		}
		m := owner[slot]
		if len(out[m]) < perMaster {
			out[m] = append(out[m], s)
			need--
		}
	}
	return out
}

// clusterGateway is a gateway process on the cluster: a Redis limiter with its own Client (from
// u) and metrics registry.
func clusterGateway(t testing.TB, u string, opts RedisOptions) (*Redis, *Client, *prometheus.Registry) {
	t.Helper()
	c, err := NewClient(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Metrics = m
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second // the machine is shared; these tests are about counts
	}
	lim := NewRedis(c, opts)
	t.Cleanup(func() {
		_ = lim.Close()
		_ = c.Close()
	})
	return lim, c, reg
}

// checkAllRedis fails unless every decision of reg was Redis's, none the fallback's, and no Redis
// call failed.
func checkAllRedis(t testing.TB, name string, reg *prometheus.Registry, decisions int) {
	t.Helper()
	if got := metricstest.Sum(t, reg, "imagegw_ratelimit_decisions_total", "backend", "redis"); decisions >= 0 && got != float64(decisions) {
		t.Errorf("%s: %v decisions with backend=\"redis\", want %d", name, got, decisions)
	}
	for _, b := range []string{"fallback", "none"} {
		if got := metricstest.Sum(t, reg, "imagegw_ratelimit_decisions_total", "backend", b); got != 0 {
			t.Errorf("%s: %v decisions with backend=%q, want 0", name, got, b)
		}
	}
	if got := metricstest.Sum(t, reg, "imagegw_ratelimit_redis_errors_total"); got != 0 {
		t.Errorf("%s: %v Redis errors", name, got)
	}
	if got := metricstest.Sum(t, reg, "imagegw_ratelimit_fallback_active"); got != 0 {
		t.Errorf("%s: fallback active", name)
	}
}

// keysPerMaster counts the keys under prefix on each master.
func keysPerMaster(t testing.TB, admin *redis.ClusterClient, prefix string) map[string]int {
	t.Helper()
	var mu sync.Mutex
	out := map[string]int{}
	err := admin.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, prefix+":*").Result()
		mu.Lock()
		out[m.Options().Addr] = len(keys)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClusterGatewaysEnforceOneLimitPerKey(t *testing.T) {
	u := needCluster(t)
	admin := clusterAdmin(t, u)
	addrs, _ := masters(t, admin)
	opts := RedisOptions{Prefix: clusterPrefix(t, admin), Policy: FailOpen}
	// Three gateways, each configured with another form of the URL: the seed list, one node
	// (cluster mode detected), one node with cluster=true.
	urls := []string{u, nodeURL(u, addrs[1%len(addrs)]), withQuery(nodeURL(u, addrs[2%len(addrs)]), "cluster", "true")}
	var gws []*Redis
	var regs []*prometheus.Registry
	for _, gu := range urls {
		lim, c, reg := clusterGateway(t, gu, opts)
		if !c.Cluster() {
			t.Fatalf("%s: not a cluster client", redactedURL(gu))
		}
		gws, regs = append(gws, lim), append(regs, reg)
	}
	spread := spreadSubjects(t, admin, gws[0], 2)
	var subjects []Subject
	for _, ss := range spread {
		subjects = append(subjects, ss...)
	}
	limits := Limits{Requests: Rate{Count: 3, Period: time.Minute}}

	// Every subject (API key) limited to 3 requests a minute; 3 gateways × 3 workers × 4 tries
	// each: exactly 3 go through per key.
	allowed := make([]atomic.Int64, len(subjects))
	grants := make([]atomic.Pointer[Grant], len(subjects))
	var decisions [3]atomic.Int64
	var wg sync.WaitGroup
	for gi, gw := range gws {
		for range 3 {
			wg.Go(func() {
				for range 4 {
					for si, s := range subjects {
						d, err := gw.Admit(context.Background(), Request{Subject: s, Limits: limits, Cost: oneReq})
						if err != nil {
							t.Error(err)
							return
						}
						decisions[gi].Add(1)
						if d.Degraded {
							t.Errorf("gateway %d, %s: decided by the fallback", gi, s)
						}
						if d.Allowed {
							allowed[si].Add(1)
							grants[si].Store(d.Grant)
						} else if d.RefusedBy != DimRequests {
							t.Errorf("refused by %v, want requests", d.RefusedBy)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	for si, s := range subjects {
		if n := allowed[si].Load(); n != 3 {
			t.Errorf("%s: 3 gateways admitted %d of 36 against 3 a minute, want exactly 3", s, n)
		}
	}

	// The keys really live on every master, each subject's on the master of its slot.
	per := keysPerMaster(t, admin, opts.Prefix)
	for mi, a := range addrs {
		if per[a] != len(spread[mi]) {
			t.Errorf("master %s holds %d of the test's keys, want %d (one rpm key per subject there)", a, per[a], len(spread[mi]))
		}
	}

	// A give-back reaches the subject's node: one more request fits, then no more.
	for si, s := range subjects {
		g := grants[si].Load()
		if err := gws[si%3].GiveBack(context.Background(), g, oneReq); err != nil {
			t.Fatalf("%s: give back: %v", s, err)
		}
		for i, want := range []bool{true, false} {
			d, err := gws[(si+1)%3].Admit(context.Background(), Request{Subject: s, Limits: limits, Cost: oneReq})
			if err != nil || d.Allowed != want || d.Degraded {
				t.Fatalf("%s: admit %d after the give-back: %+v %v, want allowed=%v", s, i, d, err, want)
			}
			decisions[(si+1)%3].Add(1)
		}
	}
	for i, reg := range regs {
		checkAllRedis(t, fmt.Sprintf("gateway %d", i), reg, int(decisions[i].Load()))
	}
	t.Logf("%d subjects over %d masters, keys per master %v", len(subjects), len(addrs), per)
}

func TestClusterLeasesRenewAndReleaseAcrossNodes(t *testing.T) {
	u := needCluster(t)
	admin := clusterAdmin(t, u)
	opts := RedisOptions{Prefix: clusterPrefix(t, admin), Policy: FailClosed, LeaseTTL: 600 * time.Millisecond}
	gw0, _, reg0 := clusterGateway(t, u, opts)
	gw1, _, reg1 := clusterGateway(t, u, opts)
	var subjects []Subject
	for _, ss := range spreadSubjects(t, admin, gw0, 2) {
		subjects = append(subjects, ss...)
	}
	const limit = 2
	ctx := context.Background()
	req := func(s Subject) Request { return Request{Subject: s, Limits: Limits{Concurrency: limit}} }
	var held []*Grant
	for _, s := range subjects {
		for range limit {
			d, err := gw0.Admit(ctx, req(s))
			if err != nil || !d.Allowed {
				t.Fatalf("%s: gateway 0 admit: %+v %v", s, d, err)
			}
			held = append(held, d.Grant)
		}
	}
	refusedEverywhere := func(when string) {
		t.Helper()
		for _, s := range subjects {
			d, err := gw1.Admit(ctx, req(s))
			if err != nil || d.Allowed || d.RefusedBy != DimConcurrency {
				t.Fatalf("%s, %s: gateway 1 admit: %+v %v, want a concurrency refusal", when, s, d, err)
			}
		}
	}
	refusedEverywhere("while gateway 0 holds every slot")

	// Every master forgets its scripts: the renewals (one pipeline over every node) and the
	// releases must load them again, node by node.
	if err := admin.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	// Several TTLs: the leases stay only if gateway 0 renews them on their nodes.
	time.Sleep(4 * opts.LeaseTTL)
	refusedEverywhere("after 4 lease TTLs")
	if got := metricstest.Sum(t, reg0, "imagegw_ratelimit_leases_dropped_total"); got != 0 {
		t.Fatalf("gateway 0 dropped %v leases", got)
	}
	if got := metricstest.Sum(t, reg0, "imagegw_ratelimit_leases_in_flight"); got != float64(len(held)) {
		t.Fatalf("gateway 0 holds %v leases, want %d", got, len(held))
	}

	for _, g := range held {
		if err := gw0.Release(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "gateway 0's releases reach every node", func() bool {
		return gw0.rel.n.Load() == 0 && gw0.keeper.pendingLen() == 0
	})
	for _, s := range subjects {
		for i := range limit {
			d, err := gw1.Admit(ctx, req(s))
			if err != nil || !d.Allowed {
				t.Fatalf("%s: slot %d still held after the releases: %+v %v", s, i+1, d, err)
			}
		}
	}
	checkAllRedis(t, "gateway 0", reg0, len(held))
	checkAllRedis(t, "gateway 1", reg1, 2*len(subjects)+limit*len(subjects))
	if n := metricstest.Sum(t, reg0, "imagegw_ratelimit_redis_duration_seconds", "op", "renew_batch"); n == 0 {
		t.Fatal("gateway 0 never renewed in a batch")
	}
}

// A gateway that starts while Redis cannot be asked starts on a single-node client and moves to
// the cluster client on the first MOVED.
func TestClusterClientSwitchesOnMoved(t *testing.T) {
	u := needCluster(t)
	admin := clusterAdmin(t, u)
	addrs, _ := masters(t, admin)
	p, err := faultproxy.Start(addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := p.SetMode(faultproxy.Refuse); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	c, err := NewClient(context.Background(), nodeURL(u, p.Addr()), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if c.Cluster() {
		t.Fatal("a node that could not be asked was taken for a cluster")
	}
	if err := p.SetMode(faultproxy.Pass); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lim := NewRedis(c, RedisOptions{Prefix: clusterPrefix(t, admin), Timeout: 2 * time.Second, Metrics: m})
	t.Cleanup(func() { _ = lim.Close() })
	// A subject on another master: the node behind the proxy answers MOVED.
	spread := spreadSubjects(t, admin, lim, 1)
	s := spread[1][0]
	req := Request{Subject: s, Limits: Limits{Requests: perHour(2)}, Cost: oneReq}
	if _, err := lim.Admit(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if !c.Cluster() {
		t.Fatalf("still on the single-node client after a MOVED; logs %v", logs.All())
	}
	if logs.FilterMessageSnippet("switching to the cluster client").Len() != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	// The first admit failed over (MOVED) to the fallback; from now on Redis decides.
	for i, want := range []bool{true, true, false} {
		d, err := lim.Admit(context.Background(), req)
		if err != nil || d.Degraded || d.Allowed != want {
			t.Fatalf("admit %d after the switch: %+v %v, want allowed=%v from Redis", i, d, err, want)
		}
	}
}

// freeClusterPorts returns n free loopback ports whose cluster bus ports (+10000) are free too.
func freeClusterPorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 200 {
			t.Fatal("no free ports for a cluster")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		out = append(out, port)
	}
	return out
}

// A master restarts (SIGKILL, then scripts/redis-cluster.sh brings it back with its slots): the
// gateways fall back meanwhile and are back on the cluster, exact, afterwards. It runs on a cluster
// of its own, so the shared one is never disturbed.
func TestClusterNodeRestartSurvived(t *testing.T) {
	needCluster(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	ports := freeClusterPorts(t, 3)
	dir := t.TempDir()
	var ps []string
	for _, p := range ports {
		ps = append(ps, strconv.Itoa(p))
	}
	env := []string{"REDIS_CLUSTER_PORTS=" + strings.Join(ps, " "), "REDIS_CLUSTER_DIR=" + dir}
	t.Cleanup(func() {
		if err := runClusterScript(env, "stop"); err != nil {
			t.Errorf("stop the test's cluster: %v", err)
		}
	})
	if err := runClusterScript(env, "start"); err != nil {
		t.Fatal(err)
	}
	u := "redis://127.0.0.1:" + ps[0] // one node: cluster mode detected
	admin := clusterAdmin(t, u)
	opts := RedisOptions{Prefix: "imagegwtest", Policy: FailOpen, Timeout: 200 * time.Millisecond,
		BreakerThreshold: 3, BreakerCooldown: 200 * time.Millisecond}
	gw0, c0, reg0 := clusterGateway(t, u, opts)
	gw1, c1, _ := clusterGateway(t, "redis://127.0.0.1:"+ps[2], opts)
	if !c0.Cluster() || !c1.Cluster() {
		t.Fatal("cluster mode not detected")
	}
	addrs, _ := masters(t, admin)
	spread := spreadSubjects(t, admin, gw0, 2)
	victim := addrs[1] // its subjects are spread[1]
	ctx := context.Background()
	limits := Limits{Requests: perHour(3)}
	if d, err := gw0.Admit(ctx, Request{Subject: spread[1][0], Limits: limits, Cost: oneReq}); err != nil || !d.Allowed || d.Degraded {
		t.Fatalf("before the restart: %+v %v", d, err)
	}

	_, port, _ := net.SplitHostPort(victim)
	pid, err := os.ReadFile(filepath.Join(dir, "redis-"+port+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("kill", "-KILL", strings.TrimSpace(string(pid))).Run(); err != nil {
		t.Fatalf("kill node %s: %v", victim, err)
	}
	// While the node is down its subjects are decided by the fallback (fail-open).
	eventually(t, "gateway 0 falls back for the dead node's subject", func() bool {
		d, err := gw0.Admit(ctx, Request{Subject: spread[1][0], Limits: limits, Cost: Cost{}})
		return err == nil && d.Degraded
	})
	if err := runClusterScript(env, "start"); err != nil {
		t.Fatal(err)
	}
	// Back on the cluster: every subject is decided by Redis again, on every node.
	eventually(t, "both gateways decide with Redis again", func() bool {
		for _, gw := range []*Redis{gw0, gw1} {
			for _, ss := range spread {
				d, err := gw.Admit(ctx, Request{Subject: ss[0], Limits: limits, Cost: Cost{}})
				if err != nil || d.Degraded {
					return false
				}
			}
		}
		return true
	})
	if got := metricstest.Sum(t, reg0, "imagegw_ratelimit_fallback_active"); got != 0 {
		t.Fatalf("fallback still active")
	}
	// Exact again: a fresh subject on the restarted node gets 3 of 12 across both gateways.
	s := spread[1][1]
	var allowed int
	for i := range 12 {
		d, err := []*Redis{gw0, gw1}[i%2].Admit(ctx, Request{Subject: s, Limits: limits, Cost: oneReq})
		if err != nil || d.Degraded {
			t.Fatalf("admit %d after the restart: %+v %v", i, d, err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("after the restart %d of 12 admitted against 3 an hour, want exactly 3", allowed)
	}
}

// Allotments on a cluster: each subject's refills run on its own master, three gateways never
// admit more than a subject's limit together, and once closed they leave every master holding
// exactly what was admitted.
func TestClusterAllotments(t *testing.T) {
	u := needCluster(t)
	admin := clusterAdmin(t, u)
	addrs, _ := masters(t, admin)
	opts := RedisOptions{Prefix: clusterPrefix(t, admin), Policy: FailClosed, Timeout: 2 * time.Second, AllotWindow: DefaultAllotWindow}
	var gws []*Redis
	for range 3 {
		lim, _, _ := clusterGateway(t, u, opts)
		gws = append(gws, lim)
	}
	var subjects []Subject
	for _, ss := range spreadSubjects(t, admin, gws[0], 1) {
		subjects = append(subjects, ss...)
	}
	// 320 a day (1/16: 20) and 64 in flight (1/16: 4); 3 gateways × 4 workers × 40 tries per subject.
	limits := Limits{Requests: perDay(320), Concurrency: 64}
	allowed := make([]atomic.Int64, len(subjects))
	var wg sync.WaitGroup
	for _, gw := range gws {
		for range 4 {
			wg.Go(func() {
				for range 40 {
					for si, s := range subjects {
						d, err := gw.Admit(context.Background(), Request{Subject: s, Limits: limits, Cost: oneReq})
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							allowed[si].Add(1)
							_ = gw.Release(context.Background(), d.Grant)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	for _, gw := range gws {
		_ = gw.Close()
	}
	exact := NewRedis(gws[0].client, RedisOptions{Prefix: opts.Prefix, Policy: FailClosed, Timeout: 2 * time.Second})
	defer exact.Close()
	for si, s := range subjects {
		n := allowed[si].Load()
		if n > 320 || n < 320-3*20 {
			t.Errorf("%s: 3 gateways admitted %d of 480 against 320 a day (want at most 320, short by at most 3×20)", s, n)
		}
		d, err := exact.Admit(context.Background(), Request{Subject: s, Limits: Limits{Requests: perDay(320)}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Requests.Remaining != 320-n {
			t.Errorf("%s: after close Redis has %d requests left, want %d", s, d.Requests.Remaining, 320-n)
		}
		if c, err := admin.ZCard(context.Background(), gws[0].Key(s, "inflight")).Result(); err != nil || c != 0 {
			t.Errorf("%s: %d leases left after close (%v)", s, c, err)
		}
	}
	t.Logf("%d subjects over %d masters: admitted %v", len(subjects), len(addrs), func() (out []int64) {
		for i := range allowed {
			out = append(out, allowed[i].Load())
		}
		return
	}())
}
