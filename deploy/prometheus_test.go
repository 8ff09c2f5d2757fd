package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// TestRulesWithPromtool checks deploy/prometheus/rules.yml with the real Prometheus rule engine:
// `promtool check rules`, then the unit tests in rules_test.yml, which show every alert firing
// on the series that should fire it (with its labels and rendered annotations) and quiet on
// healthy ones. Every alert must have a test there.
func TestRulesWithPromtool(t *testing.T) {
	pt := gatewaytest.DebianTool(t, "prometheus", "promtool")
	for _, args := range [][]string{{"check", "rules", "prometheus/rules.yml"}, {"test", "rules", "prometheus/rules_test.yml"}} {
		if out, err := exec.Command(pt, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
	tests, err := os.ReadFile(filepath.Join("prometheus", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if !regexp.MustCompile(`(?m)^\s+alertname: ` + regexp.QuoteMeta(r.Alert) + `\s*$`).Match(tests) {
				t.Errorf("alert %s has no unit test in deploy/prometheus/rules_test.yml", r.Alert)
			}
		}
	}
}
