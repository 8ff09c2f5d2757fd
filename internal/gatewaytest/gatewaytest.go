// Package gatewaytest starts a whole gateway (internal/app) on a loopback port with a private
// SQLite store and data directory, for end-to-end tests with real clients.
package gatewaytest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/store"
)

// AdminToken is the admin token every test gateway is configured with.
const AdminToken = "test-admin-token"

// Gateway is a running test gateway.
type Gateway struct {
	URL string // base URL without /v1, e.g. http://127.0.0.1:43121
	Key string // an API key allowed every model
	App *app.App

	done chan error
}

// Options adjust a test gateway.
type Options struct {
	// Env are environment variables as config.Load would read them (IMAGEGW_*, <PROVIDER>_API_KEY, …).
	Env map[string]string
	// ConfigFile is a YAML configuration file read under Env, as serve --config reads it; the
	// gateway reloads from it (and Env) on POST /admin/v1/reload or App.ReloadFile. Configure
	// is not applied again by a reload.
	ConfigFile string
	// Configure changes the loaded configuration before the gateway is built.
	Configure func(*config.Config)
	// Logger defaults to a test logger.
	Logger *zap.Logger
}

// Start runs a gateway until the test ends.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	return StartContext(t, context.Background(), o)
}

// StartContext runs a gateway until parent is canceled (a graceful shutdown, as on SIGTERM) or
// the test ends.
func StartContext(t testing.TB, parent context.Context, o Options) *Gateway {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"IMAGEGW_ADDR": "127.0.0.1:0", "IMAGEGW_DATA_DIR": dir, "IMAGEGW_ADMIN_TOKEN": AdminToken}
	for k, v := range o.Env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	c, err := config.Load(o.ConfigFile, getenv)
	if err != nil {
		t.Fatalf("gatewaytest: config: %v", err)
	}
	if o.Configure != nil {
		o.Configure(c)
		if err := c.Validate(); err != nil {
			t.Fatalf("gatewaytest: config: %v", err)
		}
	}
	log := o.Logger
	if log == nil {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	ctx, cancel := context.WithCancel(parent)
	a, err := app.New(ctx, c, log)
	if err != nil {
		cancel()
		t.Fatalf("gatewaytest: %v", err)
	}
	a.SetSource(o.ConfigFile, getenv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Server.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("gatewaytest: the server did not shut down")
		}
		a.Close()
	})
	secret, err := auth.Create(ctx, a.Store, &store.Key{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &Gateway{URL: "http://" + ln.Addr().String(), Key: secret, App: a, done: done}
}

// Wait blocks until the server has stopped (after its context was canceled).
func (g *Gateway) Wait(t testing.TB) {
	t.Helper()
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("gatewaytest: serve: %v", err)
		}
		g.done <- nil // keep the cleanup's receive from blocking
	case <-time.After(15 * time.Second):
		t.Fatal("gatewaytest: the server did not stop")
	}
}

// NewKey creates another key with the given settings and returns its secret.
func (g *Gateway) NewKey(t testing.TB, k *store.Key) string {
	t.Helper()
	secret, err := auth.Create(context.Background(), g.App.Store, k)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// Do sends method url with body (as JSON, unless empty) and the bearer token auth (none when
// empty) and returns the response, its body read and closed. A request that gets no response
// fails the test.
func Do(t testing.TB, method, url, auth, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: reading the response: %v", method, url, err)
	}
	return resp, b
}
