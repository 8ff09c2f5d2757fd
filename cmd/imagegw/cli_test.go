package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/config"
)

// TestMain lets the tests run the real command: the test binary, started again with
// IMAGEGW_TEST_RUN_MAIN=1, is imagegw (its exit status, stdout and stderr are the command's).
func TestMain(m *testing.M) {
	if os.Getenv("IMAGEGW_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cli runs imagegw with args in a process of its own, in the test's environment.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "IMAGEGW_TEST_RUN_MAIN=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("imagegw %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// isolate gives the test an empty data directory and no configuration from the environment.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("IMAGEGW_DATA_DIR", dir)
	t.Setenv("IMAGEGW_DATABASE_URL", "")
	t.Setenv("IMAGEGW_CONFIG", "")
	return dir
}

// TestHelpAtEveryLevel: --help (and -h, and "help") print that level's help on stdout and exit 0,
// without the flag package's noise and without opening the store.
func TestHelpAtEveryLevel(t *testing.T) {
	dir := isolate(t)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"imagegw serve", "imagegw keys create", "imagegw budgets reconcile", "'imagegw COMMAND --help'"}},
		{[]string{"-h"}, []string{"imagegw serve"}},
		{[]string{"help"}, []string{"imagegw serve"}},
		{[]string{"serve", "--help"}, []string{"Usage: imagegw serve", "--no-bootstrap", "--config FILE"}},
		{[]string{"serve", "-h"}, []string{"Usage: imagegw serve"}},
		{[]string{"migrate", "--help"}, []string{"Usage: imagegw migrate", "--config FILE"}},
		{[]string{"keys", "--help"}, []string{"Usage: imagegw keys SUBCOMMAND", "create", "revoke"}},
		{[]string{"keys", "-h"}, []string{"Usage: imagegw keys SUBCOMMAND"}},
		{[]string{"keys", "create", "--help"}, []string{"Usage: imagegw keys create", "--expires DURATION", "30d", "--models MODELS", "--json"}},
		{[]string{"keys", "create", "-h"}, []string{"Usage: imagegw keys create"}},
		{[]string{"keys", "list", "--help"}, []string{"Usage: imagegw keys list", "--json"}},
		{[]string{"keys", "show", "--help"}, []string{"Usage: imagegw keys show ID"}},
		{[]string{"keys", "show", "key_abc", "--help"}, []string{"Usage: imagegw keys show ID"}},
		{[]string{"keys", "update", "--help"}, []string{"Usage: imagegw keys update ID", "--no-expiry"}},
		{[]string{"keys", "update", "key_abc", "--name", "x", "--help"}, []string{"Usage: imagegw keys update ID"}},
		{[]string{"keys", "revoke", "--help"}, []string{"Usage: imagegw keys revoke ID"}},
		{[]string{"usage", "--help"}, []string{"Usage: imagegw usage", "--since", "--json"}},
		{[]string{"budgets", "--help"}, []string{"reconcile"}},
		{[]string{"budgets", "reconcile", "--help"}, []string{"Usage: imagegw budgets reconcile", "--fix", "--json"}},
		{[]string{"config", "--help"}, []string{"Usage: imagegw config", "exactly as serve does"}},
		{[]string{"version", "--help"}, []string{"Usage: imagegw version"}},
		{[]string{"help", "keys", "create"}, []string{"Usage: imagegw keys create"}},
	} {
		stdout, stderr, code := cli(t, c.args...)
		if code != 0 || stderr != "" {
			t.Errorf("imagegw %v: exit %d, stderr %q; want 0 and nothing", c.args, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("imagegw %v: help lacks %q:\n%s", c.args, w, stdout)
			}
		}
		if strings.Contains(stdout, "help requested") || strings.Contains(stdout, "\n  -config") {
			t.Errorf("imagegw %v: the flag package's own output:\n%s", c.args, stdout)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("help created %v in the data directory", ents)
	}
}

// TestUsageErrorsAreOneLineWithHint: a mistake prints one line and a hint naming the level's
// --help on stderr, nothing on stdout, and exits 2; the usage is never reprinted.
func TestUsageErrorsAreOneLineWithHint(t *testing.T) {
	dir := isolate(t)
	for _, c := range []struct {
		args       []string
		want, hint string
	}{
		{nil, "missing command", "imagegw"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, "imagegw"},
		{[]string{"--config", "x.yaml", "serve"}, "flags go after the command", "imagegw"},
		{[]string{"serve", "--nope"}, "serve: unknown flag --nope", "imagegw serve"},
		{[]string{"serve", "extra"}, `serve: unexpected argument "extra"`, "imagegw serve"},
		{[]string{"keys"}, "keys: missing subcommand", "imagegw keys"},
		{[]string{"keys", "frob"}, `keys: unknown subcommand "frob"`, "imagegw keys"},
		{[]string{"keys", "create"}, "keys create: --name is required", "imagegw keys create"},
		{[]string{"keys", "create", "--name", "x", "--expires", "soon"}, `keys create: --expires "soon": not a duration`, "imagegw keys create"},
		{[]string{"keys", "create", "--name", "x", "--expires", "-1d"}, "--expires must be positive", "imagegw keys create"},
		{[]string{"keys", "create", "--name", "x", "--budget", "lots"}, `--budget "lots"`, "imagegw keys create"},
		{[]string{"keys", "create", "--name", "x", "--markup", "lots"}, `--markup "lots"`, "imagegw keys create"},
		{[]string{"keys", "create", "--name", "x", "--markup", "0"}, "Invalid value for 'markup'", "imagegw keys create"},
		{[]string{"keys", "create", "--name", "x", "--rpm", "many"}, `--rpm "many": not a whole number`, "imagegw keys create"},
		{[]string{"keys", "create", "--name"}, "--name needs a value", "imagegw keys create"},
		{[]string{"keys", "show"}, "keys show: want exactly one key ID", "imagegw keys show"},
		{[]string{"keys", "update", "key_a", "key_b"}, "keys update: want exactly one key ID", "imagegw keys update"},
		{[]string{"usage", "--csv", "--json"}, "exclusive", "imagegw usage"},
		{[]string{"budgets"}, "budgets: missing subcommand", "imagegw budgets"},
		{[]string{"budgets", "fix"}, `budgets: unknown subcommand "fix"`, "imagegw budgets"},
		{[]string{"budgets", "reconcile", "now"}, `unexpected argument "now"`, "imagegw budgets reconcile"},
		{[]string{"config", "--verbose"}, "config: unknown flag --verbose", "imagegw config"},
		{[]string{"version", "now"}, `unexpected argument "now"`, "imagegw version"},
	} {
		stdout, stderr, code := cli(t, c.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != 2 || stdout != "" || len(lines) != 2 {
			t.Errorf("imagegw %v: exit %d, stdout %q, stderr %q; want 2, nothing and two lines", c.args, code, stdout, stderr)
			continue
		}
		if !strings.HasPrefix(lines[0], "imagegw: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("imagegw %v: %q does not say %q", c.args, lines[0], c.want)
		}
		if want := "run '" + c.hint + " --help' for usage"; lines[1] != want {
			t.Errorf("imagegw %v: hint %q, want %q", c.args, lines[1], want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("refused commands created %v in the data directory", ents)
	}
}

// TestRuntimeErrorsExit1: a failure while running is one line and exit status 1.
func TestRuntimeErrorsExit1(t *testing.T) {
	isolate(t)
	stdout, stderr, code := cli(t, "keys", "revoke", "key_nope")
	if code != 1 || stdout != "" || stderr != "imagegw: no key with ID \"key_nope\"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestExpiresTakesDays: --expires takes days as usage --since does, on create and update.
func TestExpiresTakesDays(t *testing.T) {
	isolate(t)
	var k admin.KeyView
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "create", "--name", "d", "--expires", "30d", "--json")), &k); err != nil {
		t.Fatal(err)
	}
	if k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 30*24*time.Hour-time.Minute || time.Until(*k.ExpiresAt) > 30*24*time.Hour {
		t.Fatalf("--expires 30d: expires at %v", k.ExpiresAt)
	}
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "update", k.ID, "--expires", "7d12h", "--json")), &k); err != nil {
		t.Fatal(err)
	}
	if want := 7*24*time.Hour + 12*time.Hour; k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < want-time.Minute || time.Until(*k.ExpiresAt) > want {
		t.Fatalf("--expires 7d12h: expires at %v", k.ExpiresAt)
	}
}

// TestKeysModelsChecked: --models names must be in the catalog the configuration builds; an
// unknown one is refused with the nearest names, before anything is written.
func TestKeysModelsChecked(t *testing.T) {
	isolate(t)
	_, stderr, code := cli(t, "keys", "create", "--name", "x", "--models", "sandbox-image,sandbox-imgae")
	if code != 2 || !strings.Contains(stderr, `unknown model "sandbox-imgae" (did you mean sandbox-image?)`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, stderr, code = cli(t, "keys", "create", "--name", "x", "--models", "nosuchmodel")
	if code != 2 || !strings.Contains(stderr, `unknown model "nosuchmodel" (known: sandbox-fixed, sandbox-image, sandbox-steps)`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// A model that configuration adds is known: the check uses the configured catalog.
	cfg := filepath.Join(t.TempDir(), "imagegw.yaml")
	if err := os.WriteFile(cfg, []byte("models:\n  - {name: house-style, target: sandbox/sandbox-steps}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var k admin.KeyView
	out := mustRun(t, "keys", "create", "--config", cfg, "--name", "ok", "--models", "house-style,sandbox/sandbox-image", "--json")
	if err := json.Unmarshal([]byte(out), &k); err != nil || len(k.Models) != 2 {
		t.Fatalf("create with configured models: %v %s", err, out)
	}
	_, stderr, code = cli(t, "keys", "update", k.ID, "--models", "house-styel")
	if code != 2 || !strings.Contains(stderr, `keys update: --models: unknown model "house-styel"`) {
		t.Fatalf("update with an unknown model: exit %d: %s", code, stderr)
	}
	var list []admin.KeyView
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "list", "--json")), &list); err != nil || len(list) != 1 || len(list[0].Models) != 2 {
		t.Fatalf("refused commands changed the store: %v %+v", err, list)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "imagegw.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigCommandChecksAsServe: `imagegw config` refuses what serve refuses (a target naming no
// channel), with the same message, and exits 1.
func TestConfigCommandChecksAsServe(t *testing.T) {
	isolate(t)
	t.Setenv("IMAGEGW_ADDR", "127.0.0.1:0")
	path := writeConfig(t, "models:\n  - {name: mine, target: nope/x}\n")
	for _, cmd := range []string{"config", "serve"} {
		stdout, stderr, code := cli(t, cmd, "--config", path)
		if code != 1 || stdout != "" || !strings.Contains(stderr, `models[0]: target "nope/x"`) || strings.Contains(stderr, "run '") {
			t.Errorf("imagegw %s: exit %d, stdout %q, stderr %q", cmd, code, stdout, stderr)
		}
	}
}

// TestConfigCommandReportsEveryProblem: five problems in the file and five in the environment
// come back in one run, each on its line, the environment's naming their variable.
func TestConfigCommandReportsEveryProblem(t *testing.T) {
	isolate(t)
	path := writeConfig(t, `
addr: nope
listen: ":8080"
log: {level: loud}
store: {timeout: soon}
models:
  - {name: mine, target: nope/x}
`)
	t.Setenv("IMAGEGW_SANDBOX", "maybe")
	t.Setenv("IMAGEGW_MAX_CONNECTIONS", "lots")
	t.Setenv("IMAGEGW_KEY_STALE_FOR", "a while")
	t.Setenv("IMAGEGW_LOG_FORMAT", "xml")
	t.Setenv("IMAGEGW_REDIS_URL", "http://redis:6379")
	_, stderr, code := cli(t, "config", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"10 problems",
		`addr: "nope" is not host:port`,
		`unknown setting "listen"`,
		`log.level: "loud"`,
		`"soon" is not a duration`,
		`target "nope/x"`,
		`IMAGEGW_SANDBOX: "maybe" is not a boolean`,
		`IMAGEGW_MAX_CONNECTIONS: "lots" is not an integer`,
		`IMAGEGW_KEY_STALE_FOR: "a while" is not a duration`,
		`IMAGEGW_LOG_FORMAT (log.format): "xml"`,
		"IMAGEGW_REDIS_URL (redis_url): must start with redis://",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the report lacks %q:\n%s", want, stderr)
		}
	}
	if n := strings.Count(stderr, "\n  - "); n != 10 {
		t.Errorf("%d problem lines, want 10:\n%s", n, stderr)
	}
}

// TestConfigCommandRedactsPasswordsOnly: database and Redis URLs keep their user, host and
// database; only the password is hidden.
func TestConfigCommandRedactsPasswordsOnly(t *testing.T) {
	isolate(t)
	t.Setenv("IMAGEGW_DATABASE_URL", "postgres://app:pg-s3cret@db.internal:5432/imagegw?sslmode=disable")
	t.Setenv("IMAGEGW_REDIS_URL", "redis://:redis-s3cret@cache:6379/0")
	t.Setenv("IMAGEGW_ADMIN_TOKEN", "admin-s3cret-token")
	out := mustRun(t, "config")
	for _, want := range []string{
		"database_url: postgres://app:[redacted]@db.internal:5432/imagegw?sslmode=disable",
		"redis_url: redis://:[redacted]@cache:6379/0",
		"admin_token: '[redacted]'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("config output leaks a secret:\n%s", out)
	}
}

// TestPreflightMatchesServe keeps app.Check (what config checks) in step with app.New (what
// serve builds): each configuration is refused by both or by neither.
func TestPreflightMatchesServe(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		refused    bool
	}{
		{"defaults", "", false},
		{"alias", "models:\n  - {name: fast, target: sandbox/sandbox-image}\n", false},
		{"unknown model", "models:\n  - {name: fast, target: nope/x}\n", true},
		{"bad fallback", "models:\n  - {name: fast, target: sandbox-image, fallbacks: [sandbox/nope]}\n", true},
		{"adapter option", `providers:
  - {name: oc, type: openai-compatible, api_key: sk-x, base_url: "http://127.0.0.1:1/v1", options: {size_field: bogus}}
`, true},
		{"own rate not 1", "billing: {rates: {USD: \"2\"}}\n", true},
		{"steps price without steps", `models:
  - target: sandbox/custom-model
    define: {sizes: [1024x1024]}
    price: {unit: megapixel_step, currency: USD, amount: "0.01"}
`, true},
		{"allow hosts", "outbound: {allow_hosts: [\"10.0.0.0/99\"]}\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := config.Load(writeConfig(t, c.yaml+"data_dir: "+dir+"\n"), func(string) string { return "" })
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			_, perr := app.Check(cfg)
			a, serr := app.New(t.Context(), cfg, zap.NewNop())
			if a != nil {
				_ = a.Close()
			}
			if (perr != nil) != c.refused || (serr != nil) != c.refused {
				t.Fatalf("want refused=%v\napp.Check: %v\napp.New: %v", c.refused, perr, serr)
			}
		})
	}
}
