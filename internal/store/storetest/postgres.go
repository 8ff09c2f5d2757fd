package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresURL is the test server used when IMAGEGW_TEST_POSTGRES_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns a URL of the test Postgres server (IMAGEGW_TEST_POSTGRES_URL, or
// DefaultPostgresURL) whose connections use a fresh, empty schema with a random name: the URL
// carries search_path, which pgx sends as a runtime parameter. The schema is dropped when the
// test ends; close stores opened on it before then (a t.Cleanup registered later runs earlier).
//
// When the server cannot be reached the test is skipped with a message saying how to start it,
// or fails when the environment variable CI is "true": in CI, Postgres tests must run.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("IMAGEGW_TEST_POSTGRES_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storetest: IMAGEGW_TEST_POSTGRES_URL must be a postgres:// URL, got %q", redact(base))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		msg := fmt.Sprintf("storetest: Postgres at %s is unreachable (%v); start it, e.g. `pg_ctlcluster 15 main start`, "+
			"or point IMAGEGW_TEST_POSTGRES_URL at a server", redact(base), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer conn.Close(context.Background())

	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "igwtest_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storetest: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// redact hides the password of a database URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.Index(s, "://"); i >= 0 {
			return s[:i] + "://…"
		}
		return "…"
	}
	return u.Redacted()
}
