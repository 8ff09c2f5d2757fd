package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/store"
)

// configFile is a gateway configuration file a test rewrites between reloads.
type configFile string

func newConfigFile(t *testing.T, body string) configFile {
	t.Helper()
	f := configFile(filepath.Join(t.TempDir(), "imagegw.yaml"))
	f.write(t, body)
	return f
}

func (f configFile) write(t testing.TB, body string) {
	t.Helper()
	// Written aside and renamed, as an editor or a Kubernetes ConfigMap update does: a reload
	// never reads half a file.
	tmp := string(f) + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, string(f)); err != nil {
		t.Fatal(err)
	}
}

// reload calls POST /admin/v1/reload and returns its status and body.
func reload(t testing.TB, g *gatewaytest.Gateway) (int, []byte) {
	t.Helper()
	resp, b := gatewaytest.Do(t, "POST", g.URL+"/admin/v1/reload", gatewaytest.AdminToken, "")
	return resp.StatusCode, b
}

// reloaded reloads and fails the test unless the reload was applied.
func reloaded(t testing.TB, g *gatewaytest.Gateway) admin.ReloadResult {
	t.Helper()
	status, body := reload(t, g)
	if status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	var res admin.ReloadResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// generated is one answered image request.
type generated struct {
	status    int
	cost      string
	requestID string
	body      string
}

func generate(t testing.TB, g *gatewaytest.Gateway, model, prompt string) (generated, error) {
	req, _ := http.NewRequest("POST", g.URL+"/v1/images/generations",
		strings.NewReader(fmt.Sprintf(`{"model":%q,"prompt":%q,"size":"64x64"}`, model, prompt)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return generated{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return generated{}, err
	}
	return generated{status: resp.StatusCode, cost: resp.Header.Get("X-Imagegw-Cost"), requestID: resp.Header.Get("X-Request-Id"), body: string(b)}, nil
}

func mustGenerate(t testing.TB, g *gatewaytest.Gateway, model string, status int, cost string) generated {
	t.Helper()
	r, err := generate(t, g, model, "a lighthouse")
	if err != nil {
		t.Fatal(err)
	}
	if r.status != status || (cost != "" && r.cost != cost) {
		t.Fatalf("%s: status %d cost %q, want %d %q: %s", model, r.status, r.cost, status, cost, r.body)
	}
	return r
}

// ledger flushes the usage journal and returns the ledger's events by request id.
func ledger(t testing.TB, g *gatewaytest.Gateway) map[string]store.UsageEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.App.Recorder.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := g.App.Store.ListUsage(ctx, store.UsageFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.UsageEvent{}
	for _, ev := range evs {
		out[ev.RequestID] = ev
	}
	return out
}

// getStatus GETs url with the bearer token auth and returns the status and body.
func getStatus(t testing.TB, url, auth string) (int, string) {
	t.Helper()
	resp, b := gatewaytest.Do(t, "GET", url, auth, "")
	return resp.StatusCode, string(b)
}

const reloadV1 = `
sandbox: false
providers:
  - {name: sb-a, type: sandbox}
models:
  - {name: art, target: sandbox-image}
`

// TestReloadAppliesChanges reloads a gateway through the admin API after each change of its
// configuration file: a channel added (with a new secret the logs must not show), weights
// changed, a price changed, an alias removed, the deployment markup changed; a broken file is
// refused with every problem listed while the running configuration keeps serving; settings
// that need a restart are reported and not applied.
func TestReloadAppliesChanges(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	f := newConfigFile(t, reloadV1)
	g := gatewaytest.Start(t, gatewaytest.Options{ConfigFile: string(f), Logger: zap.New(core)})

	first := mustGenerate(t, g, "art", 200, "0.01")
	if st, _ := getStatus(t, g.URL+"/v1/models/extra", g.Key); st != 404 {
		t.Fatalf("extra before the reload: %d", st)
	}

	// A channel added with a key of its own, the first one made a standby, the alias re-priced,
	// another alias added on the new channel, the breaker tuned.
	const newSecret = "sk-reload-new-channel-secret-7f3a"
	f.write(t, `
sandbox: false
providers:
  - {name: sb-a, type: sandbox, weight: 0}
  - {name: sb-b, type: sandbox, api_key: `+newSecret+`, concurrency: 8}
models:
  - {name: art, target: sandbox-image, price: {unit: image, currency: USD, amount: "0.05"}}
  - {name: extra, target: sb-b/sandbox-steps}
routing: {failures: 3, cooldown: 10s}
`)
	res := reloaded(t, g)
	for _, want := range []string{"providers[sb-a]", "providers[sb-b]", "models", "routing.failures", "routing.cooldown"} {
		if !slices.Contains(res.Changed, want) {
			t.Errorf("reload changed %v, want %s among them", res.Changed, want)
		}
	}
	if res.Generation != 2 || len(res.RestartRequired) != 0 || res.Object != "config_reload" {
		t.Errorf("reload result %+v", res)
	}
	var ids []string
	for range 6 {
		ids = append(ids, mustGenerate(t, g, "art", 200, "0.05").requestID)
	}
	if st, body := getStatus(t, g.URL+"/v1/models/extra", g.Key); st != 200 {
		t.Fatalf("extra after the reload: %d %s", st, body)
	}
	if st, body := getStatus(t, g.URL+"/admin/v1/channels", gatewaytest.AdminToken); st != 200 || !strings.Contains(body, `"sb-b"`) {
		t.Fatalf("channels after the reload: %d %s", st, body)
	}
	if run := g.App.Running(); run.Routing.Failures != 3 || len(run.Providers) != 2 {
		t.Errorf("running configuration %+v", run.Routing)
	}
	ev := ledger(t, g)
	if e := ev[first.requestID]; e.Channel != "sb-a" || e.Cost.String() != "0.01" {
		t.Errorf("first request in the ledger: %+v", e)
	}
	for _, id := range ids {
		// sb-a is a standby now: every call goes to sb-b, at the new price.
		if e := ev[id]; e.Channel != "sb-b" || e.Cost.String() != "0.05" {
			t.Errorf("request after the reload in the ledger: channel %q cost %s", e.Channel, e.Cost)
		}
	}
	// The redactor learned the new channel's key.
	g.App.Logger.Warn("probe", zap.String("echo", "upstream said "+newSecret))
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(b)+e.Message, newSecret) {
			t.Fatalf("a log line holds the reloaded channel's key: %s %s", e.Message, b)
		}
	}
	if len(logs.FilterMessage("probe").All()) != 1 {
		t.Fatal("the probe line was not logged")
	}

	// The alias art removed; the deployment marks catalog prices up 2x.
	const v3 = `
sandbox: false
billing: {markup: "2"}
providers:
  - {name: sb-a, type: sandbox}
models:
  - {name: extra, target: sb-a/sandbox-steps}
`
	f.write(t, v3)
	res = reloaded(t, g)
	if !slices.Contains(res.Changed, "billing.markup") || !slices.Contains(res.Changed, "providers[sb-b]") {
		t.Errorf("reload changed %v", res.Changed)
	}
	mustGenerate(t, g, "art", 404, "")
	mustGenerate(t, g, "sandbox-image", 200, "0.02")

	// A broken file: every problem is listed at once, nothing changes.
	f.write(t, `
sandbox: false
listen: ":9999"
providers:
  - {name: sb-a, type: sandbox, options: {latency: soon}}
  - {name: sb-b, type: sandbox, weight: -1}
models:
  - {name: broken, target: nope/y}
`)
	status, body := reload(t, g)
	if status != 422 {
		t.Fatalf("broken reload: %d %s", status, body)
	}
	var env struct {
		Error struct {
			Message, Type, Code string
			Problems            []string
		}
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Error.Code != "invalid_config" || env.Error.Type != "invalid_request_error" || len(env.Error.Problems) < 4 {
		t.Fatalf("broken reload answer %s", body)
	}
	all := strings.Join(env.Error.Problems, "\n")
	for _, want := range []string{`unknown setting "listen"`, `"soon" is not a non-negative duration`, "weight -1 is not within", `target "nope/y"`} {
		if !strings.Contains(all, want) || !strings.Contains(env.Error.Message, want) {
			t.Errorf("the refusal does not list %q:\n%s", want, body)
		}
	}
	mustGenerate(t, g, "art", 404, "")
	mustGenerate(t, g, "sandbox-image", 200, "0.02")
	mustGenerate(t, g, "extra", 200, "")
	if len(logs.FilterMessage("configuration reload refused; the running configuration stays").All()) != 1 {
		t.Error("the refused reload was not logged")
	}

	// Settings that need a restart are reported and keep their running value; the rest applies.
	f.write(t, v3+"log: {level: debug}\nlimits: {max_n: 2}\n")
	res = reloaded(t, g)
	if !slices.Equal(res.RestartRequired, []string{"log.level", "limits.max_n"}) || len(res.Changed) != 0 || res.Generation != 4 {
		t.Errorf("reload with restart-only changes: %+v", res)
	}
	if r, err := generate(t, g, "sandbox-image", "x"); err != nil || r.status != 200 {
		t.Fatalf("after a restart-only reload: %v %+v", err, r)
	}
	if n := g.App.Running().Limits.MaxN; n != 10 {
		t.Errorf("limits.max_n applied without a restart: %d", n)
	}

	// The reloads are counted.
	st, metrics := getStatus(t, g.URL+"/metrics", "")
	for _, want := range []string{`imagegw_config_reloads_total{result="ok"} 3`, `imagegw_config_reloads_total{result="error"} 1`, "imagegw_config_generation 4"} {
		if st != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestReloadUnderLoadDropsNothing reloads a gateway 12 times, alternating two configurations
// that differ in channels (one removed, one added), weights, the alias's price, channel limits
// and breaker settings, while 8 clients keep sending requests of 50 ms upstream latency. Every
// request must answer 200 with no connection error; its cost header must be exactly what the
// ledger recorded for it, and both must come from one configuration (its price and one of its
// channels): a request admitted before a reload finishes on the catalog it started with.
func TestReloadUnderLoadDropsNothing(t *testing.T) {
	const a = `
sandbox: false
providers:
  - {name: sb-a, type: sandbox}
  - {name: sb-b, type: sandbox, weight: 3}
models:
  - {name: art, target: sandbox-image}
`
	const b = `
sandbox: false
providers:
  - {name: sb-b, type: sandbox, priority: 1}
  - {name: sb-c, type: sandbox, rpm: 100000, concurrency: 64}
models:
  - {name: art, target: sandbox-image, price: {unit: image, currency: USD, amount: "0.02"}}
routing: {failures: 3, cooldown: 5s, error_rate: 0.9}
`
	// The channels each configuration's price goes with.
	channelsAt := map[string][]string{"0.01": {"sb-a", "sb-b"}, "0.02": {"sb-b", "sb-c"}}
	f := newConfigFile(t, a)
	g := gatewaytest.Start(t, gatewaytest.Options{ConfigFile: string(f)})

	const workers = 8
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []generated
		errs    []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				r, err := generate(t, g, "art", fmt.Sprintf("worker %d request %d [sandbox:latency=50ms]", w, i))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					results = append(results, r)
				}
				mu.Unlock()
			}
		}()
	}
	const reloads = 12
	for i := range reloads {
		time.Sleep(120 * time.Millisecond)
		if i%2 == 0 {
			f.write(t, b)
		} else {
			f.write(t, a)
		}
		if res := reloaded(t, g); res.Generation != int64(i+2) {
			t.Errorf("reload %d: generation %d", i, res.Generation)
		}
	}
	time.Sleep(120 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	if len(errs) > 0 {
		t.Fatalf("%d requests failed to connect or read, the first: %v", len(errs), errs[0])
	}
	if len(results) < 4*reloads {
		t.Fatalf("only %d requests were made", len(results))
	}
	ev := ledger(t, g)
	seen := map[string]int{}
	for _, r := range results {
		if r.status != 200 {
			t.Errorf("a request answered %d during reloads: %s", r.status, r.body)
			continue
		}
		e, ok := ev[r.requestID]
		switch {
		case !ok:
			t.Errorf("request %s is not in the ledger", r.requestID)
		case e.Status != store.StatusOK || e.Cost.String() != r.cost:
			t.Errorf("request %s: header cost %s, ledger %s %s", r.requestID, r.cost, e.Status, e.Cost)
		case !slices.Contains(channelsAt[r.cost], e.Channel):
			t.Errorf("request %s: cost %s from channel %s, which that configuration does not price so", r.requestID, r.cost, e.Channel)
		}
		seen[r.cost]++
	}
	if seen["0.01"] == 0 || seen["0.02"] == 0 {
		t.Errorf("requests by cost %v: both configurations should have served", seen)
	}
	t.Logf("%d requests over %d reloads, by cost %v", len(results), reloads, seen)
}

// TestReloadConfigValue: App.Reload takes a loaded configuration, refuses one with problems (all
// of them, as a *config.Error, nothing applied) and applies a good one.
func TestReloadConfigValue(t *testing.T) {
	f := newConfigFile(t, reloadV1)
	g := gatewaytest.Start(t, gatewaytest.Options{ConfigFile: string(f)})
	load := func(body string) *config.Config {
		f.write(t, body)
		c, err := config.Load(string(f), func(k string) string {
			return map[string]string{"IMAGEGW_ADDR": "127.0.0.1:0", "IMAGEGW_DATA_DIR": g.App.Config.DataDir, "IMAGEGW_ADMIN_TOKEN": gatewaytest.AdminToken}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	bad := load(reloadV1 + "  - {name: other, target: nope/x}\n  - {name: third, target: sb-a/none}\n")
	_, err := g.App.Reload(t.Context(), bad)
	var ce *config.Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("a configuration with two problems: %v", err)
	}
	mustGenerate(t, g, "art", 200, "0.01")
	res, err := g.App.Reload(t.Context(), load(reloadV1+"  - {name: other, target: sb-a/sandbox-image}\n"))
	if err != nil || res.Generation != 2 || !slices.Equal(res.Changed, []string{"models"}) || len(res.RestartRequired) != 0 {
		t.Fatalf("reload: %+v %v", res, err)
	}
	mustGenerate(t, g, "other", 200, "0.01")
}
