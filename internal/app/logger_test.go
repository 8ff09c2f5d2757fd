package app_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/redact"
	"github.com/imagegw/imagegw/internal/server"
)

// lockedBuffer is a WriteSyncer tests can read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) Sync() error { return nil }
func (l *lockedBuffer) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

// TestLoggerKeepsEveryAccessLine: 5,000 access lines in a burst (zap's production sampling
// would keep about 150) are all written, through the redacting core the app wraps it in, once
// the logger is synced; with log.sample other repeated lines are thinned, the access log never.
func TestLoggerKeepsEveryAccessLine(t *testing.T) {
	for _, sample := range []bool{false, true} {
		var out lockedBuffer
		log, err := app.NewLoggerTo(config.LogConfig{Level: "info", Format: "json", Access: "all", Sample: sample}, &out)
		if err != nil {
			t.Fatal(err)
		}
		log = log.WithOptions(zap.WrapCore(redact.New("s3cret-value-123").Core))
		access := log.Named(server.AccessLoggerName)
		for i := 0; i < 5000; i++ {
			access.Info("request", zap.Int("status", 200), zap.String("route", "/v1/images/generations"))
			log.Warn("request failed", zap.String("kind", "upstream_unavailable"))
		}
		if err := log.Sync(); err != nil {
			t.Fatal(err)
		}
		if n := out.lines(`"msg":"request"`); n != 5000 {
			t.Errorf("sample %v: %d access lines, want 5000", sample, n)
		}
		warns := out.lines(`"msg":"request failed"`)
		if !sample && warns != 5000 || sample && (warns < 100 || warns > 200) {
			t.Errorf("sample %v: %d warnings", sample, warns)
		}
	}
}

// TestLoggerAccessModes: log.access errors keeps the lines of failed requests, off none; other
// lines are kept either way.
func TestLoggerAccessModes(t *testing.T) {
	for mode, want := range map[string]int{"all": 2, "errors": 1, "off": 0} {
		var out lockedBuffer
		log, err := app.NewLoggerTo(config.LogConfig{Level: "info", Format: "json", Access: mode}, &out)
		if err != nil {
			t.Fatal(err)
		}
		access := log.Named(server.AccessLoggerName)
		access.Info("request", zap.Int("status", 200))
		access.Info("request", zap.Int("status", 502))
		log.Info("started")
		_ = log.Sync()
		if n := out.lines(`"msg":"request"`); n != want || out.lines(`"msg":"started"`) != 1 {
			t.Errorf("%s: %d access lines, want %d:\n%s", mode, n, want, out.b.String())
		}
	}
	if _, err := app.NewLoggerTo(config.LogConfig{Level: "info", Access: "some"}, zapcore.AddSync(&bytes.Buffer{})); err == nil {
		t.Error("an unknown access mode was accepted")
	}
}
