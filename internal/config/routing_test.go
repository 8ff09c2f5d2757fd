package config

import (
	"strings"
	"testing"
	"time"
)

// TestRoutingSettings: priority, weight (default 1, 0 a standby), per-model overrides, a
// model's strategy and the breaker settings are read, defaulted and printed by `imagegw config`.
func TestRoutingSettings(t *testing.T) {
	path := write(t, `
providers:
  - {name: a, type: cfgtest-upstream, api_key: k, weight: 3}
  - {name: b, type: cfgtest-upstream, api_key: k, priority: 1, weight: 0, model_routing: {sandbox-image: {priority: 0, weight: 2}}}
  - {name: c, type: cfgtest-upstream, api_key: k}
models:
  - {name: fast, target: sandbox-image, strategy: fastest}
  - {target: sandbox-steps, strategy: cheapest}
routing: {failures: 3, cooldown: 10s}
`)
	c, err := Load(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Providers[0].Weight != 3 || *c.Providers[1].Weight != 0 || *c.Providers[2].Weight != 1 || c.Providers[1].Priority != 1 {
		t.Fatalf("providers: %+v", c.Providers)
	}
	if mr := c.Providers[1].ModelRouting["sandbox-image"]; *mr.Priority != 0 || *mr.Weight != 2 {
		t.Fatalf("model_routing: %+v", mr)
	}
	if c.Models[0].Strategy != "fastest" || c.Models[1].Strategy != "cheapest" {
		t.Fatalf("models: %+v", c.Models)
	}
	r := c.Routing
	if r.Failures != 3 || r.Cooldown.D() != 10*time.Second || r.ErrorRate != 0.5 || r.MinRequests != 20 || r.Window.D() != time.Minute ||
		r.HalfOpenProbes != 1 || r.SwitchPoll.D() != 2*time.Second {
		t.Fatalf("routing: %+v", r)
	}
	out := c.Redacted()
	for _, want := range []string{"routing:", "failures: 3", "cooldown: 10s", "switch_poll: 2s", "weight: 3", "strategy: fastest", "model_routing:"} {
		if !strings.Contains(out, want) {
			t.Errorf("imagegw config output lacks %q:\n%s", want, out)
		}
	}
}

// TestRoutingProblems: every bad routing setting is reported at once.
func TestRoutingProblems(t *testing.T) {
	path := write(t, `
providers:
  - {name: a, type: cfgtest-upstream, api_key: k, priority: -1, weight: -2}
  - {name: b, type: cfgtest-upstream, api_key: k, weight: 2000000, model_routing: {sandbox-image: {priority: 5000}}}
models:
  - {name: x, target: sandbox-image, strategy: random}
routing: {failures: 0, error_rate: 1.5, window: 10ms, cooldown: 0s, switch_poll: 1ms}
`)
	_, err := Load(path, env(nil))
	wantProblems(t, problems(t, err),
		"providers[0] (a): priority -1 is not within 0..1000",
		"providers[0] (a): weight -2 is not within 0..1000000",
		"providers[1] (b): weight 2000000 is not within 0..1000000",
		"providers[1] (b): model_routing[sandbox-image].priority 5000 is not within 0..1000",
		`models[0].strategy: "random" is not priority, cheapest or fastest`,
		"routing: failures, min_requests and half_open_probes must be at least 1",
		"routing.error_rate: 1.5 is not within 0..1",
		"routing.window: 10ms is below 1s",
		"routing.cooldown: 0s is below 1s",
		"routing.switch_poll: 1ms is below 100ms",
	)
}
