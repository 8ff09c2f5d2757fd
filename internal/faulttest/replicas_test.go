package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/store"
)

// TestThreeReplicasBehindALoadBalancer runs the production layout: three gateway processes
// behind HAProxy, sharing Postgres, Redis and an S3 image store (SeaweedFS), scraped by a real
// Prometheus with deploy/prometheus/rules.yml loaded. It checks, through the load balancer:
//
//   - an image URL made by one replica is served by every replica;
//   - a key's requests-per-minute limit holds across the replicas;
//   - a budget that pays for K images admits at most K of many concurrent requests, and exactly
//     K once the slices are back (money: spent = ledger = cost headers);
//   - a replica killed with SIGKILL under load loses no money: after a replica on its journal
//     replays it, the audit holds (every charged response is in the ledger once);
//   - Prometheus scrapes all three, sees the killed one down, and evaluates the rules.
func TestThreeReplicasBehindALoadBalancer(t *testing.T) {
	haproxy := gatewaytest.DebianTool(t, "haproxy", "haproxy")
	prometheus := gatewaytest.DebianTool(t, "prometheus", "prometheus")
	imagesURL := seaweedS3(t)
	db := newPG(t)
	r := newRedis(t)

	journals := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	startReplica := func(i int, addr string) *child {
		return startChild(t, childConfig{"addr": addr, "database_url": db.Direct, "redis_url": r.Direct, "images_url": imagesURL,
			"billing": map[string]any{"outbox_dir": journals[i]}, "rate_limit": map[string]any{"lease_ttl": "3s"}}, "")
	}
	reps := []*child{startReplica(0, "127.0.0.1:0"), startReplica(1, "127.0.0.1:0"), startReplica(2, "127.0.0.1:0")}
	lb := startHAProxy(t, haproxy, reps)
	prom := startPrometheus(t, prometheus, reps)

	t.Run("a URL made by one replica is served by all", func(t *testing.T) {
		secret, _ := newKey(t, db.Store, &store.Key{Name: "urls"})
		for i := 0; i < 3; i++ { // round robin: made by each replica in turn
			u, want := generateURL(t, lb, secret)
			for j, rep := range reps {
				got := fetch(t, rep.URL+u.Path)
				if string(got) != string(want) {
					t.Fatalf("image %s: replica %d serves %d bytes, the load balancer %d", u.Path, j, len(got), len(want))
				}
			}
		}
	})

	t.Run("rate limits hold across replicas", func(t *testing.T) {
		secret, id := newKey(t, db.Store, &store.Key{Name: "limited", RPM: intp(6)})
		r.forget(t, id)
		ok := 0
		for i := 0; i < 24; i++ {
			if res := generate(context.Background(), lb, secret, requestID("rpm"), "limited", 1); res.Status == http.StatusOK {
				ok++
			}
		}
		if ok != 6 {
			t.Fatalf("%d of 24 requests served through three replicas; the key's limit is 6 per minute", ok)
		}
	})

	t.Run("limits served from allotments hold across replicas", func(t *testing.T) {
		// 96 a minute: 1/16 is 6, so each replica admits from allotments of at most 6 requests
		// charged to Redis ahead, and near the limit every replica takes the exact path.
		const rpm = 96
		secret, id := newKey(t, db.Store, &store.Key{Name: "allotted", RPM: intp(rpm)})
		r.forget(t, id)
		var ta tally
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					ta.add(generate(context.Background(), lb, secret, requestID("allot"), "allotted", 1))
				}
			}()
		}
		wg.Wait()
		// The limit refills one request every 625 ms while the test runs.
		refilled := int(time.Since(start) * rpm / time.Minute)
		ok := served(ta.results())
		if ok > rpm+refilled {
			t.Fatalf("%d of 200 requests served through three replicas in %v; the key's limit is %d a minute", ok, time.Since(start), rpm)
		}
		if ok < rpm-3*rpm/16 {
			t.Fatalf("%d of 200 requests served: short of %d by more than the replicas' allotments (%d each)", ok, rpm, rpm/16)
		}
		for _, res := range ta.results() {
			if res.Status == http.StatusTooManyRequests && res.RetryAfter == "" {
				t.Fatalf("a 429 without Retry-After: %+v", res)
			}
		}
		t.Logf("%d of 200 served against %d a minute (+%d refilled during the test)", ok, rpm, refilled)
	})

	t.Run("a budget for K images admits at most K", func(t *testing.T) {
		// The sandbox's 64x64 image costs 0.01: a budget of 0.20 pays for 20.
		const k = 20
		secret, id := newKey(t, db.Store, &store.Key{Name: "budget", Budget: amount("0.20")})
		r.forget(t, id)
		var ta tally
		var wg sync.WaitGroup
		for i := 0; i < 60; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ta.add(generate(context.Background(), lb, secret, requestID("budget"), "budget", 1))
			}()
		}
		wg.Wait()
		first := served(ta.results())
		if first > k {
			t.Fatalf("%d images served on a budget for %d", first, k)
		}
		// Slices held by the other replicas come back (they are returned when idle, or expire):
		// then the rest of the budget is served, one request at a time, until exactly K.
		deadline := time.Now().Add(45 * time.Second)
		for served(ta.results()) < k && time.Now().Before(deadline) {
			res := generate(context.Background(), lb, secret, requestID("budget"), "budget", 1)
			ta.add(res)
			if res.Status != http.StatusOK {
				time.Sleep(250 * time.Millisecond)
			}
		}
		total := served(ta.results())
		t.Logf("budget for %d images: %d served by the concurrent burst, %d in all", k, first, total)
		if total != k {
			t.Fatalf("%d images served in all on a budget for %d", total, k)
		}
		waitLedger(t, db.Store, id, ta.results())
		audit(t, db.Store, id, ta.results())
	})

	t.Run("a replica killed with SIGKILL under load loses no money", func(t *testing.T) {
		secret, id := newKey(t, db.Store, &store.Key{Name: "load", Budget: amount("1000"), RPM: intp(100000)})
		r.forget(t, id)
		stop := make(chan struct{})
		load := runLoad(lb, secret, "replicas", 12, stop, false)
		time.Sleep(1500 * time.Millisecond)
		reps[1].kill()
		eventually(t, 30*time.Second, "Prometheus sees the killed replica down", func() bool {
			return promQuery(t, prom, `up{job="imagegw"} == 0`) == 1
		})
		time.Sleep(time.Second) // the load goes on on the two others
		close(stop)
		<-load.wait
		rs := load.results()
		t.Logf("load through the load balancer: %s", statuses(rs))
		if served(rs) < 20 {
			t.Fatalf("only %d requests served: the load did not run", served(rs))
		}
		// A replica on the killed one's journal and address (the load balancer's and Prometheus's
		// target) replays what it left.
		reps[1] = startReplica(1, strings.TrimPrefix(reps[1].URL, "http://"))
		waitLedger(t, db.Store, id, rs)
		audit(t, db.Store, id, rs)
	})

	t.Run("Prometheus scrapes the replicas and evaluates the rules", func(t *testing.T) {
		eventually(t, 30*time.Second, "all three targets up again", func() bool {
			return promQuery(t, prom, `up{job="imagegw"} == 1`) == 3
		})
		if n := promQuery(t, prom, `sum by (instance) (max_over_time(imagegw_http_requests_total{route="/v1/images/generations", status="200"}[10m])) > 0`); n != 3 {
			t.Fatalf("Prometheus saw served generations on %d replicas, want 3", n)
		}
		eventually(t, 60*time.Second, "the recording rules evaluated", func() bool {
			return promQuery(t, prom, `job:imagegw_http_requests:rate5m`) > 0
		})
		groups := promRules(t, prom)
		if groups < 2 {
			t.Fatalf("Prometheus loaded %d rule groups from deploy/prometheus/rules.yml, want 2", groups)
		}
	})
}

func served(rs []result) int {
	n := 0
	for _, r := range rs {
		if r.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// waitLedger waits until every request that carried a cost is in the key's ledger (the replicas
// write it in batches, off the request path).
func waitLedger(t *testing.T, st store.Store, keyID string, rs []result) {
	t.Helper()
	want := 0
	for _, r := range rs {
		if r.HasCost {
			want++
		}
	}
	eventually(t, 30*time.Second, fmt.Sprintf("%d ledger rows", want), func() bool {
		return len(ledger(t, st, keyID)) >= want
	})
}

// seaweedS3 starts (or finds running) the SeaweedFS S3 server of scripts/seaweedfs.sh and
// returns an images_url on a fresh prefix. In CI the script builds weed if needed; elsewhere the
// test skips until it has been built.
func seaweedS3(t *testing.T) string {
	t.Helper()
	script := "../../scripts/seaweedfs.sh"
	if os.Getenv("CI") != "true" {
		if _, err := os.Stat(filepath.Join("..", "..", ".cache", "weed", "weed")); err != nil {
			t.Skip("SeaweedFS is not built: run scripts/seaweedfs.sh build (about 3 minutes), then this test starts it")
		}
	}
	out, err := exec.Command(script, "start").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("scripts/seaweedfs.sh start: %v\n%s", err, stderr)
	}
	endpoint := strings.TrimSpace(string(out))
	if i := strings.LastIndex(endpoint, "\n"); i >= 0 {
		endpoint = endpoint[i+1:]
	}
	return fmt.Sprintf("s3://imagegw-test/replicas-%s?endpoint=%s&region=us-east-1", randHex(4), url.QueryEscape(endpoint))
}

// startHAProxy runs HAProxy in front of the replicas (round robin, health-checked on /readyz,
// connection failures retried on another replica) and returns its URL.
func startHAProxy(t *testing.T, bin string, reps []*child) string {
	t.Helper()
	port := freePort(t)
	var servers strings.Builder
	for i, rep := range reps {
		fmt.Fprintf(&servers, "    server gw%d %s check inter 500ms fall 2 rise 2\n", i, strings.TrimPrefix(rep.URL, "http://"))
	}
	cfg := fmt.Sprintf(`global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A refused connection (a replica just killed, before its health check fails) is retried on
    # another replica: nothing reached the dead one, so nothing can be billed twice.
    retries 2
    option redispatch
    retry-on conn-failure
frontend gw
    bind 127.0.0.1:%d
    default_backend gws
backend gws
    balance roundrobin
    option httpchk GET /readyz
%s`, port, servers.String())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "haproxy", exec.Command(bin, "-db", "-f", path))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 15*time.Second, "HAProxy answers with the replicas up", func() bool {
		status, _, err := get(context.Background(), base, "/healthz")
		return err == nil && status == http.StatusOK
	})
	return base
}

// startPrometheus runs a Prometheus server scraping the replicas every second (job "imagegw")
// with deploy/prometheus/rules.yml loaded, and returns its URL.
func startPrometheus(t *testing.T, bin string, reps []*child) string {
	t.Helper()
	rules, err := filepath.Abs(filepath.Join("..", "..", "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, rep := range reps {
		targets = append(targets, `"`+strings.TrimPrefix(rep.URL, "http://")+`"`)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: imagegw
    static_configs:
      - targets: [%s]
`, rules, strings.Join(targets, ", "))
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	run(t, "prometheus", exec.Command(bin, "--config.file="+path, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 30*time.Second, "Prometheus scrapes the three replicas", func() bool {
		status, _, err := get(context.Background(), base, "/-/ready")
		return err == nil && status == http.StatusOK && promQuery(t, base, `up{job="imagegw"} == 1`) == 3
	})
	return base
}

// run starts a helper process for the test's duration; its output is shown if the test fails.
func run(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(logs.String(), 30))
		}
	})
}

// promQuery runs an instant query and returns how many series it gives (0 on any error).
func promQuery(t *testing.T, base, q string) int {
	t.Helper()
	status, body, err := get(context.Background(), base, "/api/v1/query?query="+url.QueryEscape(q))
	if err != nil || status != http.StatusOK {
		return 0
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(body), &r) != nil {
		return 0
	}
	return len(r.Data.Result)
}

// promRules returns how many rule groups Prometheus loaded, failing on a rule whose last
// evaluation failed.
func promRules(t *testing.T, base string) int {
	t.Helper()
	status, body, err := get(context.Background(), base, "/api/v1/rules")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/v1/rules: %d %v", status, err)
	}
	var r struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			if rule.Health == "err" {
				t.Errorf("rule %s (group %s) fails: %s", rule.Name, g.Name, rule.LastError)
			}
		}
	}
	return len(r.Data.Groups)
}

// generateURL asks for one image as a URL and returns it with the image's bytes as the load
// balancer serves them.
func generateURL(t *testing.T, base, secret string) (*url.URL, []byte) {
	t.Helper()
	body := `{"model":"sandbox-image","prompt":"hosted","size":"64x64","response_format":"url"}`
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/images/generations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generate a URL: %d %s", resp.StatusCode, b)
	}
	var out struct {
		Data []struct {
			URL     string `json:"url"`
			B64JSON string `json:"b64_json"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Data) != 1 || out.Data[0].URL == "" {
		t.Fatalf("generate a URL: %s", b)
	}
	u, err := url.Parse(out.Data[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	img := fetch(t, base+u.Path)
	if len(img) == 0 {
		t.Fatal("the load balancer served an empty image")
	}
	return u, img
}

// fetch GETs an image and fails unless it is a 200.
func fetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
