package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/backend"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

// ---------------------------------------------------------------------------------------------
// Test binary set-up.

// binDir holds the imagegw binary built for the child-process cases; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gatewayBinary builds cmd/imagegw once per test binary run and returns its path. It builds
// with -race when the tests do, so the build reuses the packages the test already compiled.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			if goTool, err = exec.LookPath("go"); err != nil {
				buildErr = fmt.Errorf("no go tool to build the gateway: %w", err)
				return
			}
		}
		dir, err := os.MkdirTemp("", "imagegw-faulttest-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		out := filepath.Join(dir, "imagegw")
		args := []string{"build"}
		if raceBuild {
			args = append(args, "-race")
		}
		args = append(args, "-o", out, "github.com/imagegw/imagegw/cmd/imagegw")
		cmd := exec.Command(goTool, args...)
		// The package directory is inside the module: build from it.
		cmd.Dir = "."
		start := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build imagegw: %v\n%s", err, b)
			return
		}
		binPath = out
		fmt.Fprintf(os.Stderr, "faulttest: built %s in %s (race=%v)\n", out, time.Since(start).Round(time.Millisecond), raceBuild)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// ---------------------------------------------------------------------------------------------
// Postgres and Redis.

// pg is a fresh Postgres schema for one test: the gateway reaches it through a fault proxy,
// the test through its own direct connection.
type pg struct {
	// Direct is the schema's URL on the real server; Proxied the same through Proxy.
	Direct, Proxied string
	Proxy           *faultproxy.Proxy
	// Store is opened directly (not through the proxy) and migrated: for creating keys and
	// reading the ledger.
	Store store.Store
}

// newPG creates a schema, migrates it and starts a proxy in front of the server. Outside CI an
// unreachable server skips the test; in CI it fails it.
func newPG(t *testing.T) *pg {
	t.Helper()
	direct := storetest.PostgresURL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	pu := *u
	pu.Host = p.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := backend.Open(ctx, direct)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return &pg{Direct: direct, Proxied: pu.String(), Proxy: p, Store: st}
}

const startRedisHint = `start one with: redis-server --daemonize yes --port 6379 --save "" --appendonly no ` +
	`(or point IMAGEGW_TEST_REDIS_URL at one)`

// rd is the test Redis with a fault proxy in front of it.
type rd struct {
	Direct, Proxied string
	Proxy           *faultproxy.Proxy
	Client          *redis.Client // direct
}

// newRedis checks the test Redis answers and starts a proxy in front of it. Keys of the keys
// the test registers with forget are deleted when it ends.
func newRedis(t *testing.T) *rd {
	t.Helper()
	direct := os.Getenv("IMAGEGW_TEST_REDIS_URL")
	if direct == "" {
		direct = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(direct)
	if err != nil {
		t.Fatalf("IMAGEGW_TEST_REDIS_URL %q: %v", direct, err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		msg := fmt.Sprintf("faulttest: Redis at %s is unreachable: %v", opts.Addr, err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true, so this is a failure)", msg)
		}
		t.Skipf("%s; %s", msg, startRedisHint)
	}
	t.Cleanup(func() { _ = c.Close() })
	p, err := faultproxy.Start(opts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	pu := *u
	pu.Host = p.Addr()
	return &rd{Direct: direct, Proxied: pu.String(), Proxy: p, Client: c}
}

// forget deletes the gateway's Redis keys of the API key id when the test ends.
func (r *rd) forget(t *testing.T, keyID string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var keys []string
		iter := r.Client.Scan(ctx, 0, "imagegw:{key:"+keyID+"}:*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = r.Client.Del(ctx, keys...).Err()
		}
	})
}

// setMode switches a proxy's mode or fails the test.
func setMode(t *testing.T, p *faultproxy.Proxy, m faultproxy.Mode) {
	t.Helper()
	if err := p.SetMode(m); err != nil {
		t.Fatalf("faultproxy %s: %v", m, err)
	}
}

// healOnCleanup puts the proxy back in Pass mode when the test ends, before the cleanups
// registered earlier (gateways shut down with their store reachable).
func healOnCleanup(t *testing.T, p *faultproxy.Proxy) {
	t.Cleanup(func() { _ = p.SetMode(faultproxy.Pass) })
}

// ---------------------------------------------------------------------------------------------
// Keys and the ledger.

// newKey creates a key in st and returns its secret and id.
func newKey(t *testing.T, st store.Store, k *store.Key) (secret, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if k.Name == "" {
		k.Name = "faulttest"
	}
	secret, err := auth.Create(ctx, st, k)
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	return secret, k.ID
}

func amount(s string) *money.Amount {
	a := money.MustParse(s)
	return &a
}

func intp(v int) *int { return &v }

// ledger reads the key's ledger rows by the request id the client sent (each test request sends
// its own) and fails the test on one that appears twice.
func ledger(t *testing.T, st store.Store, keyID string) map[string]store.UsageEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := st.ListUsage(ctx, store.UsageFilter{KeyID: keyID}, 0)
	if err != nil {
		t.Fatalf("list usage: %v", err)
	}
	out := make(map[string]store.UsageEvent, len(evs))
	for _, e := range evs {
		if _, dup := out[e.ClientRequestID]; dup {
			t.Errorf("request %s is in the ledger twice", e.ClientRequestID)
		}
		out[e.ClientRequestID] = e
	}
	return out
}

// spent is the key's budget position (total period) as the store keeps it.
func spent(t *testing.T, st store.Store, keyID string) money.Amount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := st.Balance(ctx, keyID, store.PeriodTotal, time.Time{})
	if err != nil {
		t.Fatalf("balance: %v", err)
	}
	return b.Spent
}

// reconciled fails the test when the key's recorded spend differs from its ledger.
func reconciled(t *testing.T, st store.Store, keyID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	diffs, err := st.ReconcileSpend(ctx, keyID, false)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	for _, d := range diffs {
		t.Errorf("key_spend disagrees with the ledger: %s %s %s: recorded %s, ledger %s", d.KeyID, d.Period,
			d.PeriodStart.Format(time.DateOnly), d.Recorded, d.Ledger)
	}
}

// ---------------------------------------------------------------------------------------------
// Clients.

var client = &http.Client{Transport: &http.Transport{
	Proxy:               nil,
	MaxIdleConns:        512,
	MaxIdleConnsPerHost: 512,
	IdleConnTimeout:     30 * time.Second,
}}

// result is what a client saw of one request.
type result struct {
	ID         string // the X-Request-Id the client sent (its ledger label)
	Status     int    // 0: no response (the connection failed)
	Cost       money.Amount
	HasCost    bool // an X-Imagegw-Cost header came back
	RetryAfter string
	Err        error
	Took       time.Duration
	Body       string // error bodies, truncated
}

func (r result) String() string {
	if r.Status == 0 {
		return fmt.Sprintf("%s: no response after %s (%v)", r.ID, r.Took.Round(time.Millisecond), r.Err)
	}
	s := fmt.Sprintf("%s: %d after %s", r.ID, r.Status, r.Took.Round(time.Millisecond))
	if r.HasCost {
		s += " cost " + r.Cost.String()
	}
	if r.RetryAfter != "" {
		s += " retry-after " + r.RetryAfter
	}
	if r.Body != "" {
		s += " " + r.Body
	}
	return s
}

var reqSeq atomic.Int64

// requestID returns a fresh request id the gateway accepts from a client.
func requestID(tag string) string {
	return fmt.Sprintf("ft-%s-%d-%s", tag, reqSeq.Add(1), randHex(3))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// generate sends one image generation (sandbox-image, n images of 64×64, about 0.01 each)
// with the given prompt (which may carry [sandbox:…] directives) and request id.
func generate(ctx context.Context, base, secret, id, prompt string, n int) result {
	body, _ := json.Marshal(map[string]any{"model": "sandbox-image", "prompt": prompt, "n": n, "size": "64x64"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/images/generations", bytes.NewReader(body))
	if err != nil {
		return result{ID: id, Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	start := time.Now()
	resp, err := client.Do(req)
	r := result{ID: id}
	if err != nil {
		r.Err, r.Took = err, time.Since(start)
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r.Took = time.Since(start)
	if err != nil {
		// Headers came but the body did not: the client saw no complete response.
		r.Err = fmt.Errorf("status %d, body: %w", resp.StatusCode, err)
		return r
	}
	r.Status = resp.StatusCode
	if got := resp.Header.Get("X-Client-Request-Id"); got != id {
		r.Err = fmt.Errorf("X-Client-Request-Id %q, sent %q", got, id)
	}
	if c := resp.Header.Get("X-Imagegw-Cost"); c != "" {
		a, err := money.Parse(c)
		if err != nil {
			r.Err = fmt.Errorf("X-Imagegw-Cost %q: %w", c, err)
		}
		r.Cost, r.HasCost = a, true
	}
	r.RetryAfter = resp.Header.Get("Retry-After")
	if r.Status != http.StatusOK {
		r.Body = strings.TrimSpace(string(b))
		if len(r.Body) > 300 {
			r.Body = r.Body[:300] + "…"
		}
	}
	return r
}

// get fetches a path and returns the status and body.
func get(ctx context.Context, base, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metric reads one sample of the gateway's /metrics: the value of the series whose name and
// labels (as written, e.g. `imagegw_ratelimit_leases_in_flight{class="key"}`) are series.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	v, err := scrape(base, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func scrape(base, series string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	status, body, err := get(ctx, base, "/metrics")
	if err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("scrape %s/metrics: %d %v", base, status, err)
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, series+" ")), 64)
		}
	}
	return 0, fmt.Errorf("scrape %s/metrics: no series %s", base, series)
}

// eventually polls cond every 50ms until it holds or within passes, and returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// ---------------------------------------------------------------------------------------------
// Gateways.

// inproc starts an in-process gateway (internal/gatewaytest) with the given environment and
// configuration changes. The shutdown timeout is short, so a test that leaves a request in
// flight does not hold its cleanup for long.
func inproc(t *testing.T, env map[string]string, configure func(*config.Config)) *gatewaytest.Gateway {
	t.Helper()
	return gatewaytest.Start(t, gatewaytest.Options{Env: env, Configure: func(c *config.Config) {
		c.ShutdownTimeout = config.Duration(3 * time.Second)
		if configure != nil {
			configure(c)
		}
	}})
}

// child is a gateway process (`imagegw serve`).
type child struct {
	t    *testing.T
	URL  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{} // closed when the process has exited
	// state is the exit state, set before done closes.
	state *os.ProcessState
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// childConfig is the YAML configuration of a child gateway: the keys of config.Config.
type childConfig map[string]any

// startChild writes cfg to a file and runs `imagegw serve --config FILE --no-bootstrap` with
// an environment free of IMAGEGW_* variables. It waits until the gateway logs the address it
// listens on. wrap, when not nil, is a shell snippet run before the gateway is exec'd (for
// `ulimit`). The process is killed when the test ends, if it still runs; its log is printed
// when the test failed.
func startChild(t *testing.T, cfg childConfig, wrap string) *child {
	t.Helper()
	bin := gatewayBinary(t)
	cfg = merge(childConfig{
		"addr": "127.0.0.1:0", "migrate_on_start": true, "sandbox": true,
		"log": map[string]any{"level": "info", "format": "json"},
	}, cfg)
	if _, ok := cfg["data_dir"]; !ok {
		cfg["data_dir"] = t.TempDir()
	}
	b, err := yaml.Marshal(map[string]any(cfg))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "imagegw.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if wrap != "" {
		cmd = exec.Command("/bin/sh", "-c", wrap+` && exec "$0" "$@"`, bin, "serve", "--config", path, "--no-bootstrap")
	} else {
		cmd = exec.Command(bin, "serve", "--config", path, "--no-bootstrap")
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IMAGEGW_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	c := &child{t: t, cmd: cmd, logs: &lockedBuffer{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = c.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start imagegw: %v", err)
	}
	addr := make(chan string, 1)
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = c.logs.Write(append(append([]byte(nil), line...), '\n'))
			if sent || !bytes.Contains(line, []byte("imagegw listening")) {
				continue
			}
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "imagegw listening" && l.Addr != "" {
				addr <- l.Addr
				sent = true
			}
		}
	}()
	go func() {
		copied.Wait() // all output read before Wait closes the pipe
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("log of gateway process %d:\n%s", cmd.Process.Pid, tail(c.logs.String(), 60))
		}
	})
	select {
	case a := <-addr:
		c.URL = "http://" + a
	case <-c.done:
		t.Fatalf("imagegw exited before listening (%v):\n%s", c.state, tail(c.logs.String(), 40))
	case <-time.After(60 * time.Second):
		t.Fatalf("imagegw did not listen within 60s:\n%s", tail(c.logs.String(), 40))
	}
	return c
}

func merge(base, over childConfig) childConfig {
	out := childConfig{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				m := map[string]any{}
				for kk, vv := range bm {
					m[kk] = vv
				}
				for kk, vv := range om {
					m[kk] = vv
				}
				out[k] = m
				continue
			}
		}
		out[k] = v
	}
	return out
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = append([]string{fmt.Sprintf("… %d lines before", len(ls)-lines)}, ls[len(ls)-lines:]...)
	}
	return strings.Join(ls, "\n")
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatal("the gateway did not die of SIGKILL within 10s")
	}
}

// terminate sends SIGTERM and waits up to within for the process to exit; it returns the exit
// code (-1 when a signal ended it).
func (c *child) terminate(within time.Duration) int {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(within):
		c.t.Fatalf("the gateway did not exit within %s of SIGTERM:\n%s", within, tail(c.logs.String(), 40))
	}
	return c.state.ExitCode()
}

// raceReports fails the test when the child's race detector reported a data race.
func (c *child) raceReports() {
	c.t.Helper()
	if strings.Contains(c.logs.String(), "WARNING: DATA RACE") {
		c.t.Errorf("the gateway process reported a data race:\n%s", c.logs.String())
	}
}

// ---------------------------------------------------------------------------------------------
// Accounting.

// tally is every result of a run, by request id.
type tally struct {
	mu  sync.Mutex
	all []result
	// wait, when set, is closed once the load that fills the tally has stopped.
	wait chan struct{}
}

func (ta *tally) add(r result) {
	ta.mu.Lock()
	ta.all = append(ta.all, r)
	ta.mu.Unlock()
}

func (ta *tally) results() []result {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return append([]result(nil), ta.all...)
}

// statuses counts results by status ("none" for no response).
func statuses(rs []result) string {
	m := map[string]int{}
	for _, r := range rs {
		k := strconv.Itoa(r.Status)
		if r.Status == 0 {
			k = "none"
		}
		m[k]++
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// audit compares what clients saw with the key's ledger and budget position:
//
//   - a response that carries a cost header was admitted: its request is in the ledger exactly
//     once, at that cost, with status ok when the response was a 200 (failed or indeterminate
//     otherwise);
//   - a response without a cost header was refused before admission: no ledger row;
//   - a request that got no response (the gateway died under it) is in the ledger at most once:
//     as an indeterminate "interrupted" row of cost 0, or, when the gateway died between making
//     the charge durable and writing the response, as a charged row (counted in unseen);
//   - every ledger row belongs to a request the test sent;
//   - the key's spent position equals the ledger's sum, which equals the cost headers plus the
//     charges of requests that got no response; key_spend reconciles with the ledger.
//
// It returns the ledger and the charges clients did not see.
func audit(t *testing.T, st store.Store, keyID string, rs []result) (map[string]store.UsageEvent, money.Amount) {
	t.Helper()
	l := ledger(t, st, keyID)
	var headers, ledgerSum, unseen money.Amount
	sent := make(map[string]bool, len(rs))
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range rs {
		if sent[r.ID] {
			t.Fatalf("the test sent request id %s twice", r.ID)
		}
		sent[r.ID] = true
		if r.Status != 0 && r.Err != nil {
			report("%s: %v", r, r.Err) // a wrong X-Request-Id or cost header
		}
		e, in := l[r.ID]
		switch {
		case r.Status != 0 && r.HasCost:
			headers += r.Cost
			switch {
			case !in:
				report("%s: the client saw cost %s but the request is not in the ledger", r, r.Cost)
			case e.Cost != r.Cost:
				report("%s: the ledger charged %s (status %s)", r, e.Cost, e.Status)
			case r.Status == http.StatusOK && e.Status != store.StatusOK:
				report("%s: the ledger says %s/%s", r, e.Status, e.ErrorKind)
			case r.Status != http.StatusOK && e.Status == store.StatusOK:
				report("%s: not delivered but the ledger says ok", r)
			}
		case r.Status != 0:
			if r.Status == http.StatusOK {
				report("%s: a 200 without a cost header", r)
			}
			if in {
				report("%s: refused before admission but in the ledger as %s/%s cost %s", r, e.Status, e.ErrorKind, e.Cost)
			}
		default: // no response
			if !in {
				continue
			}
			if e.Status == store.StatusIndeterminate {
				if e.Cost != 0 {
					report("%s: an interrupted request is charged %s", r, e.Cost)
				}
				continue
			}
			unseen += e.Cost
			t.Logf("%s: the gateway died after making its charge (%s, %s) durable and before answering", r, e.Cost, e.Status)
		}
	}
	for id, e := range l {
		ledgerSum += e.Cost
		if !sent[id] {
			report("ledger row %s (%s, cost %s) belongs to no request the test sent", id, e.Status, e.Cost)
		}
	}
	if ledgerSum != headers+unseen {
		t.Errorf("ledger %s != cost headers %s + charges of requests that got no response %s", ledgerSum, headers, unseen)
	}
	if sp := spent(t, st, keyID); sp != ledgerSum {
		t.Errorf("spent %s != ledger %s", sp, ledgerSum)
	}
	reconciled(t, st, keyID)
	if bad > 20 {
		t.Errorf("… %d problems in all", bad)
	}
	t.Logf("audit of %s: %d requests (%s), %d ledger rows, ledger = spent = %s, cost headers %s, unseen charges %s",
		keyID, len(rs), statuses(rs), len(l), ledgerSum, headers, unseen)
	return l, unseen
}
