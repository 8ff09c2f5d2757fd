package gatewaytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// DebianTool finds prog, a program of Debian's package pkg that a test needs (promtool and
// prometheus of "prometheus", haproxy). In CI (CI=true) it installs the package with
// scripts/debian.sh when missing and fails the test if it cannot; elsewhere it skips the test
// with that hint.
func DebianTool(t testing.TB, pkg, prog string) string {
	t.Helper()
	if p, err := exec.LookPath(prog); err == nil {
		return p
	}
	hint := fmt.Sprintf("%s is not installed: run scripts/debian.sh %s (Debian's package, as root)", prog, pkg)
	if os.Getenv("CI") != "true" {
		t.Skip(hint)
	}
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "..", "scripts", "debian.sh")
	if out, err := exec.Command(script, pkg).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", hint, err, out)
	}
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("scripts/debian.sh %s installed no %s", pkg, prog)
	}
	return p
}
