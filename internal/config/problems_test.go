package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// problems returns the problems of a Load error, failing the test when it is not an *Error.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want a *config.Error, got %T %v", err, err)
	}
	var out []string
	for _, p := range e.Problems {
		out = append(out, p.Error())
	}
	return out
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, w)
		}
		if !found {
			t.Errorf("no problem mentions %q:\n  %s", w, strings.Join(got, "\n  "))
		}
	}
}

// TestFiveProblemsInFileAndEnv: a file with five problems (an unknown setting, a bad duration,
// and three bad values) and an environment with five more are reported in one error; the
// environment's name their variable.
func TestFiveProblemsInFileAndEnv(t *testing.T) {
	path := write(t, `
addr: nope
listen: ":8080"
log: {level: loud}
store: {timeout: soon}
billing: {currency: dollars}
`)
	_, err := Load(path, env(map[string]string{
		"IMAGEGW_SANDBOX":         "maybe",
		"IMAGEGW_MAX_CONNECTIONS": "lots",
		"IMAGEGW_KEY_STALE_FOR":   "a while",
		"IMAGEGW_LOG_FORMAT":      "xml",
		"IMAGEGW_PUBLIC_URL":      "gateway.example",
	}))
	got := problems(t, err)
	wantProblems(t, got,
		`addr: "nope" is not host:port`,
		`line 3: unknown setting "listen"`,
		`log.level: "loud" is not one of`,
		`line 5: "soon" is not a duration`,
		`billing.currency: "DOLLARS"`,
		`IMAGEGW_SANDBOX: "maybe" is not a boolean`,
		`IMAGEGW_MAX_CONNECTIONS: "lots" is not an integer`,
		`IMAGEGW_KEY_STALE_FOR: "a while" is not a duration`,
		`IMAGEGW_LOG_FORMAT (log.format): "xml" is not json or console`,
		`IMAGEGW_PUBLIC_URL (public_url): "gateway.example" is not an absolute http(s) URL`,
	)
	msg := err.Error()
	if !strings.HasPrefix(msg, "configuration "+path+": 10 problems:\n  - ") || strings.Count(msg, "\n  - ") != 10 {
		t.Errorf("the message does not list the problems a line each:\n%s", msg)
	}
}

// TestEnvAloneReportsEveryProblem: problems found while reading the environment and those of the
// values it sets come back together (they used to come one run at a time).
func TestEnvAloneReportsEveryProblem(t *testing.T) {
	_, err := Load("", env(map[string]string{
		"IMAGEGW_ADDR":             "nope",
		"IMAGEGW_JOURNAL_FSYNC":    "sometimes",
		"IMAGEGW_STORE_TIMEOUT":    "0s",
		"IMAGEGW_BODY_MIN_RATE":    "fast",
		"IMAGEGW_REDIS_URL":        "http://cache:6379",
		"CFGTEST_UPSTREAM_API_KEY": "sk-x", "CFGTEST_UPSTREAM_BASE_URL": "ftp://upstream",
	}))
	wantProblems(t, problems(t, err),
		`IMAGEGW_ADDR (addr): "nope" is not host:port`,
		`IMAGEGW_JOURNAL_FSYNC: "sometimes" is not true, false or a duration`,
		`IMAGEGW_STORE_TIMEOUT (store.timeout): 0s must be positive`,
		`IMAGEGW_BODY_MIN_RATE: "fast" is not an integer`,
		`IMAGEGW_REDIS_URL (redis_url): must start with redis://`,
		`CFGTEST_UPSTREAM_BASE_URL: "ftp://upstream" is not an absolute http(s) URL`,
	)
}

// TestSyntaxErrorStillChecksEnv: a file that does not parse is one problem; the environment is
// still checked in the same run.
func TestSyntaxErrorStillChecksEnv(t *testing.T) {
	_, err := Load(write(t, "addr: [unclosed\n"), env(map[string]string{"IMAGEGW_SANDBOX": "maybe"}))
	got := problems(t, err)
	if len(got) != 2 || !strings.Contains(got[0], "line") || !strings.Contains(got[1], "IMAGEGW_SANDBOX") {
		t.Fatalf("problems: %q", got)
	}
}

// TestLoadCheckedMergesProblems: the further check's problems join the file's, and one it repeats
// is listed once.
func TestLoadCheckedMergesProblems(t *testing.T) {
	_, err := LoadChecked(write(t, "addr: nope\n"), env(nil), func(c *Config) error {
		return errors.Join(errors.New(`models[0]: target "nope/x": the model "nope/x" does not exist`),
			fmt.Errorf("addr: %q is not host:port", c.Addr))
	})
	wantProblems(t, problems(t, err), `addr: "nope" is not host:port`, `target "nope/x"`)
	if _, err := LoadChecked("", env(nil), func(*Config) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "15m": 15 * time.Minute, "12h": 12 * time.Hour, "1h30m": 90 * time.Minute,
		"7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0, "0": 0,
		"-1d": -24 * time.Hour, "-1s": -time.Second, " 2d ": 48 * time.Hour, "1d0.5h": 24*time.Hour + 30*time.Minute,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "soon", "7", "1.5d", "d7", "7dd", "1d-1h", "--1d", "100001d", "7days", "1d 2h"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "is not a duration (like 30s, 15m, 12h or 7d)") {
			t.Errorf("ParseDuration(%q): %v", in, err)
		}
	}
}

// TestDaysInFileAndEnv: durations in days work in the file and the environment.
func TestDaysInFileAndEnv(t *testing.T) {
	c, err := Load(write(t, "images: {ttl: 7d}\nlimits: {key_stale_for: 1d}\n"), env(map[string]string{"IMAGEGW_KEY_STALE_FOR": "2d"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Images.TTL.D() != 7*24*time.Hour || c.Limits.KeyStaleFor.D() != 48*time.Hour {
		t.Fatalf("images.ttl %v, limits.key_stale_for %v", c.Images.TTL.D(), c.Limits.KeyStaleFor.D())
	}
}

// TestRedactURL: only the password goes; user, host, port, database and other parameters stay.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://user:pw@host/db":                                     "postgres://user:[redacted]@host/db",
		"postgres://app:s3cret@db.internal:5432/imagegw?sslmode=require": "postgres://app:[redacted]@db.internal:5432/imagegw?sslmode=require",
		"postgresql://app@db/imagegw":                                    "postgresql://app@db/imagegw",
		"postgres://db/imagegw?user=app&password=s3cret":                 "postgres://db/imagegw?password=[redacted]&user=app",
		"redis://:s3cret@cache:6379/0":                                   "redis://:[redacted]@cache:6379/0",
		"rediss://default:s3cret@cache:6380":                             "rediss://default:[redacted]@cache:6380",
		"redis://cache:6379/0":                                           "redis://cache:6379/0",
		"sqlite:./data/imagegw.db":                                       "sqlite:./data/imagegw.db",
		"postgres://user:p%40ss@host/db":                                 "postgres://user:[redacted]@host/db",
		// A password that cuts the URL short ('/' in it) is not shown at all.
		"postgres://user:12/34@host/db": "[redacted]",
		"postgres://user:a b@host/db":   "[redacted]",
		"":                              "",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	c, err := Load("", env(map[string]string{"IMAGEGW_DATABASE_URL": "postgres://app:s3cret@db:5432/imagegw", "IMAGEGW_REDIS_URL": "redis://:s3cret@cache:6379"}))
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted() + fmt.Sprintf("%v %+v %#v", c.DatabaseURL, c, c)
	if strings.Contains(out, "s3cret") || !strings.Contains(out, "database_url: postgres://app:[redacted]@db:5432/imagegw") ||
		!strings.Contains(out, "redis_url: redis://:[redacted]@cache:6379") {
		t.Fatalf("redacted configuration:\n%s", out)
	}
	if c.DatabaseURL.Value() != "postgres://app:s3cret@db:5432/imagegw" {
		t.Fatal("Value must return the URL whole")
	}
}
