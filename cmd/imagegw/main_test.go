package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

// capture runs the command with args and returns what it printed on stdout.
func capture(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	runErr := run(args)
	w.Close()
	os.Stdout = old
	return <-done, runErr
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := capture(t, args...)
	if err != nil {
		t.Fatalf("imagegw %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func testKeysCLI(t *testing.T) {
	var created admin.KeyView
	out := mustRun(t, "keys", "create", "--name", "app", "--models", "sandbox-image, sandbox-steps", "--expires", "30d",
		"--budget", "25.00", "--budget-period", "monthly", "--rpm", "60", "--ipm", "120", "--mppm", "500", "--concurrency", "4", "--markup", "1.2", "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("keys create --json: %v\n%s", err, out)
	}
	if !strings.HasPrefix(created.Key, "igw_") || created.Name != "app" || len(created.Models) != 2 || created.Models[1] != "sandbox-steps" ||
		created.ExpiresAt == nil || created.ExpiresAt.Sub(time.Now()) < 29*24*time.Hour || created.ExpiresAt.Sub(time.Now()) > 30*24*time.Hour || created.Budget == nil || *created.Budget != "25" || created.BudgetPeriod != "monthly" ||
		*created.RPM != 60 || *created.IPM != 120 || *created.MPPM != 500 || *created.Concurrency != 4 || created.Markup == nil || *created.Markup != "1.2" {
		t.Fatalf("created %+v", created)
	}
	// The plain form prints the secret once, in words.
	if out := mustRun(t, "keys", "create", "--name", "second"); !strings.Contains(out, "shown only this once") || !strings.Contains(out, "igw_") {
		t.Fatalf("keys create: %s", out)
	}
	var list []admin.KeyView
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("keys list: %v %+v", err, list)
	}
	for _, k := range list {
		if k.Key != "" {
			t.Fatal("keys list shows a secret")
		}
	}
	if table := mustRun(t, "keys", "list"); !strings.Contains(table, created.ID) || !strings.Contains(table, "active") || strings.Contains(table, created.Key) {
		t.Fatalf("keys list table:\n%s", table)
	}
	var upd admin.KeyView
	json.Unmarshal([]byte(mustRun(t, "keys", "update", created.ID, "--name", "renamed", "--no-expiry", "--no-budget", "--no-markup", "--rpm", "0", "--json")), &upd)
	if upd.Name != "renamed" || upd.ExpiresAt != nil || upd.Budget != nil || upd.Markup != nil || *upd.RPM != 0 || *upd.IPM != 120 {
		t.Fatalf("keys update: %+v", upd)
	}
	// Without --json, update and show print for people.
	if out := mustRun(t, "keys", "update", created.ID, "--ipm", "90", "--expires", "1d12h"); !strings.Contains(out, "Updated key "+created.ID) ||
		!strings.Contains(out, "ipm 90") || !strings.Contains(out, "rpm unlimited") || strings.Contains(out, "{") {
		t.Fatalf("keys update (text):\n%s", out)
	}
	mustRun(t, "keys", "update", created.ID, "--markup", "1.35")
	if out := mustRun(t, "keys", "show", created.ID); !strings.Contains(out, "Name:") || !strings.Contains(out, "renamed") || !strings.Contains(out, "× 1.35") ||
		!strings.Contains(out, "sandbox-image, sandbox-steps") || strings.Contains(out, "{") {
		t.Fatalf("keys show (text):\n%s", out)
	}
	if out := mustRun(t, "keys", "revoke", created.ID); !strings.Contains(out, "Revoked key "+created.ID) {
		t.Fatalf("keys revoke: %s", out)
	}
	var shown admin.KeyView
	json.Unmarshal([]byte(mustRun(t, "keys", "show", created.ID, "--json")), &shown)
	if shown.Status != "revoked" || shown.RevokedAt == nil {
		t.Fatalf("keys show after revoke: %+v", shown)
	}
	if _, err := capture(t, "keys", "revoke", "key_nope"); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Fatalf("revoking an unknown key: %v", err)
	}
	if out := mustRun(t, "usage", "--by", "model"); out == "" {
		t.Fatal("usage printed nothing")
	}
}

func TestKeysCLIOnSQLite(t *testing.T) {
	t.Setenv("IMAGEGW_DATA_DIR", t.TempDir())
	t.Setenv("IMAGEGW_DATABASE_URL", "")
	testKeysCLI(t)
}

func TestMigrateAndKeysCLIOnPostgres(t *testing.T) {
	t.Setenv("IMAGEGW_DATA_DIR", t.TempDir())
	t.Setenv("IMAGEGW_DATABASE_URL", storetest.PostgresURL(t))
	if out := mustRun(t, "migrate"); !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %s", out)
	}
	mustRun(t, "migrate") // idempotent
	testKeysCLI(t)
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("IMAGEGW_DATA_DIR", t.TempDir())
	var ue usageError
	for _, args := range [][]string{{}, {"frobnicate"}, {"keys"}, {"keys", "create"}, {"keys", "create", "--name", "x", "--budget", "lots"},
		{"keys", "create", "--name", "x", "--budget-period", "weekly"}, {"keys", "show"}, {"serve", "--nope"}} {
		if _, err := capture(t, args...); !errors.As(err, &ue) {
			t.Errorf("imagegw %v: want a usage error, got %v", args, err)
		}
	}
	if out := mustRun(t, "version"); !strings.HasPrefix(out, "imagegw ") {
		t.Fatalf("version: %q", out)
	}
}

func TestConfigCommandRedacts(t *testing.T) {
	t.Setenv("IMAGEGW_ADMIN_TOKEN", "super-secret-admin")
	t.Setenv("SILICONFLOW_API_KEY", "sk-very-secret")
	out := mustRun(t, "config")
	if strings.Contains(out, "super-secret-admin") || strings.Contains(out, "sk-very-secret") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("config output leaks or lacks redaction:\n%s", out)
	}
	if !bytes.Contains([]byte(out), []byte("type: siliconflow")) {
		t.Fatalf("config output lacks the env channel:\n%s", out)
	}
}

// TestBudgetsReconcileOnPostgres: positions equal the ledger; a tampered position is reported
// (exit error) and --fix rewrites it from the ledger.
func TestBudgetsReconcileOnPostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	t.Setenv("IMAGEGW_DATA_DIR", t.TempDir())
	t.Setenv("IMAGEGW_DATABASE_URL", url)
	ctx := t.Context()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(ctx, &store.Key{ID: "key_rec", Hash: "rec"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	if err := st.InsertUsage(ctx, []store.UsageEvent{
		{RequestID: "r1", Time: at, KeyID: "key_rec", Model: "m", Cost: money.MustParse("0.25"), Currency: "USD", Status: store.StatusOK},
		{RequestID: "r2", Time: at.Add(2 * time.Hour), KeyID: "key_rec", Model: "m", Cost: money.MustParse("0.5"), Currency: "USD", Status: store.StatusOK},
	}); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "budgets", "reconcile"); !strings.Contains(out, "every budget position equals the ledger") {
		t.Fatalf("reconcile: %s", out)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE key_spend SET spent = spent + 1000000 WHERE key_id = 'key_rec' AND period = 'monthly' AND period_start = '2026-12-01'`); err != nil {
		t.Fatal(err)
	}
	out, err := capture(t, "budgets", "reconcile", "--key", "key_rec")
	if !errors.Is(err, errPositionsDiffer) || !strings.Contains(out, "key_rec") || !strings.Contains(out, "monthly") ||
		!strings.Contains(out, "1.5") || !strings.Contains(out, "0.5") {
		t.Fatalf("reconcile of a tampered position: %v\n%s", err, out)
	}
	if out := mustRun(t, "budgets", "reconcile", "--fix"); !strings.Contains(out, "1 positions rewritten") {
		t.Fatalf("reconcile --fix: %s", out)
	}
	b, err := st.Balance(ctx, "key_rec", store.PeriodMonthly, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || b.Spent != money.MustParse("0.5") {
		t.Fatalf("after --fix: %+v, %v", b, err)
	}
	if out := mustRun(t, "budgets", "reconcile"); !strings.Contains(out, "every budget position equals the ledger") {
		t.Fatalf("reconcile after --fix: %s", out)
	}
	if _, err := capture(t, "budgets"); err == nil {
		t.Fatal("budgets without a subcommand succeeded")
	}
}
