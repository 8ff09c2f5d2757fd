package frontdoor_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/store"
)

// TestNodeSDK drives a gateway with the official `openai` npm package (testdata/node/check.mjs):
// models.retrieve of an id with '/', images.generate, images.generate with stream: true, and a
// never-fit 429 the SDK must not retry. scripts/node-sdk-check.sh installs the pinned package
// once into .cache/node (gitignored) and skips the install when that version is there.
//
// Outside CI the test skips, saying why, when node or npm are missing or npm cannot install the
// package; with CI=true it fails instead.
func TestNodeSDK(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	unavailable := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf(format+" (CI=true: the Node SDK check is required)", args...)
		}
		t.Skipf(format+" (the Node SDK check needs Node 18+ and npm; CI=true makes it required)", args...)
	}
	for _, tool := range []string{"bash", "node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("%s is not installed", tool)
		}
	}
	if v, err := exec.Command("node", "--version").Output(); err != nil {
		unavailable("node --version: %v", err)
	} else if major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(strings.TrimSpace(string(v)), "v"), ".", 2)[0]); major < 18 {
		unavailable("node %s is too old", strings.TrimSpace(string(v)))
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "node-sdk-check.sh"), "install")
	var stderr bytes.Buffer
	install.Stderr = &stderr
	out, err := install.Output()
	if err != nil {
		unavailable("npm could not install the openai package: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	modules := lines[len(lines)-1]

	g := gatewaytest.Start(t, gatewaytest.Options{})
	limited := g.NewKey(t, &store.Key{Name: "ipm5", IPM: intp(5)})
	check := exec.CommandContext(ctx, "node", filepath.Join("testdata", "node", "check.mjs"))
	check.Env = append(os.Environ(), "OPENAI_NODE_MODULES="+modules, "IMAGEGW_BASE_URL="+g.URL+"/v1",
		"IMAGEGW_KEY="+g.Key, "IMAGEGW_LIMITED_KEY="+limited)
	res, err := check.CombinedOutput()
	t.Logf("node check.mjs (openai from %s):\n%s", modules, res)
	if err != nil {
		t.Fatalf("the Node SDK check failed: %v", err)
	}
}
