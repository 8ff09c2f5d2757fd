package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// promtool finds promtool (Debian's prometheus package). In CI (CI=true) it installs it with
// scripts/debian.sh when missing, and fails if it cannot; elsewhere a missing promtool skips
// the test with a hint.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	hint := "promtool is not installed: run scripts/debian.sh prometheus (Debian's prometheus package, as root)"
	if os.Getenv("CI") != "true" {
		t.Skip(hint)
	}
	out, err := exec.Command("../scripts/debian.sh", "prometheus").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", hint, err, out)
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("scripts/debian.sh installed no promtool: %v", err)
	}
	return p
}

// TestRulesWithPromtool checks deploy/prometheus/rules.yml with the real Prometheus rule engine:
// `promtool check rules`, then the unit tests in rules_test.yml, which show every alert firing
// on the series that should fire it (with its labels and rendered annotations) and quiet on
// healthy ones. Every alert must have a test there.
func TestRulesWithPromtool(t *testing.T) {
	pt := promtool(t)
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
