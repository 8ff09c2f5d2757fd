package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/backend"
)

// The setups, in table order.
var setupOrder = []string{"direct", "proxy", "lean", "lean-bg", "governed", "budget", "limits"}

var setupLabels = map[string]string{
	"direct":   "direct to the fake upstream",
	"proxy":    "bare `httputil.ReverseProxy`",
	"lean":     "imagegw: SQLite, no budget, in-process limiter",
	"lean-bg":  "same, charges fsync'd in the background (`billing.journal_fsync: 10ms`)",
	"governed": "imagegw: Postgres + Redis, one key with a budget and limits",
	"budget":   "same, budget only (no limits)",
	"limits":   "same, limits only (no budget)",
}

// leanBgFsync is lean-bg's billing.journal_fsync: charges flushed within it after their responses.
const leanBgFsync = 10 * time.Millisecond

// needsServers reports whether a setup needs Postgres and Redis.
func needsServers(name string) bool {
	return name == "governed" || name == "budget" || name == "limits"
}

// The requests. The gateway's body names the public model; the direct and proxied bodies are
// what the openai-compatible adapter sends upstream for it.
const (
	gatewayModel = "openai-compatible/flux-schnell"
	gatewayBody  = `{"model":"` + gatewayModel + `","prompt":"a lighthouse%s","size":"512x512","response_format":"b64_json"}`
	upstreamBody = `{"model":"flux-schnell","prompt":"a lighthouse%s","width":512,"height":512,"response_format":"b64_json"}`
)

// target is one setup under load: where to send, with which key and bodies, and how to end it.
type target struct {
	name      string
	url       string // the image generation endpoint
	key       string
	fastBody  []byte
	slowBody  []byte // the upstream waits its delay
	largeBody []byte // the upstream answers with its large image
	// idle closes the load generator's idle connections to the target (between scenarios).
	idle func()
	// stop shuts the setup down and, for a gateway, returns its ledger totals.
	stop func(ctx context.Context) (*ledger, error)
}

// ledger is what a gateway's store recorded for the load key, read after the app was closed
// (so every usage event has been flushed).
type ledger struct {
	Requests int64
	Images   int64
	Cost     money.Amount
	// Decisions and Fallbacks count the rate limiter's decisions, and those the per-process
	// fallback made because Redis failed or timed out (a saturated machine can delay a Redis
	// round trip past rate_limit.redis_timeout): limits were then not shared across replicas.
	Decisions, Fallbacks float64
}

// add is the sum of l and m (either may be nil): a setup-run's ledger over its scenarios, each
// measured on a fresh instance.
func (l *ledger) add(m *ledger) *ledger {
	if l == nil || m == nil {
		return cmp.Or(l, m)
	}
	return &ledger{Requests: l.Requests + m.Requests, Images: l.Images + m.Images, Cost: l.Cost + m.Cost,
		Decisions: l.Decisions + m.Decisions, Fallbacks: l.Fallbacks + m.Fallbacks}
}

// env says where the setups find their dependencies.
type env struct {
	upstream    string // fake upstream base URL (http://127.0.0.1:port)
	upstreamHst string // its host:port, for outbound.allow_hosts
	// upstreamIdle closes the fake upstream's idle connections (after each scenario); a no-op
	// with -upstream.
	upstreamIdle func()
	databaseURL  string
	redisURL     string
	price        string
	maxConns     int
	logger       *zap.Logger
	keepSchema   bool
	config       string    // YAML file read under the tool's settings, or ""
	stats        io.Writer // -limiter-stats: where to print the limiter's metrics, or nil
}

func bodies(format string) (fast, slow, large []byte) {
	return []byte(fmt.Sprintf(format, "")), []byte(fmt.Sprintf(format, " "+slowMarker)), []byte(fmt.Sprintf(format, " "+largeMarker))
}

// startSetup starts the named setup.
func startSetup(ctx context.Context, name string, e *env) (*target, error) {
	switch name {
	case "direct":
		fast, slow, large := bodies(upstreamBody)
		return &target{name: name, url: e.upstream + "/v1/images/generations", key: upstreamKey, fastBody: fast, slowBody: slow, largeBody: large,
			idle: func() {}, stop: func(context.Context) (*ledger, error) { return nil, nil }}, nil
	case "proxy":
		rp, tr, err := newReverseProxy(e.upstream, e.maxConns)
		if err != nil {
			return nil, err
		}
		// Full duplex, as a proxy must be: the fake upstream answers before it has read the
		// whole body, and without it net/http closes the client's body the moment the answer
		// is written, failing the copy to the upstream still in progress (golang/go#40747).
		s, err := serve("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = http.NewResponseController(w).EnableFullDuplex()
			rp.ServeHTTP(w, r)
		}))
		if err != nil {
			return nil, err
		}
		fast, slow, large := bodies(upstreamBody)
		return &target{name: name, url: s.URL + "/v1/images/generations", key: upstreamKey, fastBody: fast, slowBody: slow, largeBody: large,
			idle: tr.CloseIdleConnections,
			stop: func(context.Context) (*ledger, error) {
				s.Close()
				tr.CloseIdleConnections()
				return nil, nil
			}}, nil
	case "lean", "lean-bg", "governed", "budget", "limits":
		return startGateway(ctx, name, e)
	}
	return nil, fmt.Errorf("unknown setup %q (known: %v)", name, setupOrder)
}

// startGateway builds imagegw with internal/app the way `imagegw serve` does, with the
// openai-compatible provider pointing at the fake upstream and its model priced, and creates
// one key for the load.
func startGateway(ctx context.Context, name string, e *env) (_ *target, err error) {
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()
	dir, err := os.MkdirTemp("", "imagegw-load-"+name+"-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { _ = os.RemoveAll(dir) })
	vars := map[string]string{
		"IMAGEGW_ADDR":                 "127.0.0.1:0",
		"IMAGEGW_DATA_DIR":             dir,
		"IMAGEGW_SANDBOX":              "false",
		"OPENAI_COMPATIBLE_API_KEY":    upstreamKey,
		"OPENAI_COMPATIBLE_BASE_URL":   e.upstream + "/v1",
		"IMAGEGW_OUTBOUND_ALLOW_HOSTS": e.upstreamHst,
	}
	var dropSchema func(context.Context) error
	if needsServers(name) {
		u, drop, err := freshSchema(ctx, e.databaseURL)
		if err != nil {
			return nil, err
		}
		dropSchema = drop
		if !e.keepSchema {
			cleanups = append(cleanups, func() { _ = drop(context.Background()) })
		}
		vars["IMAGEGW_DATABASE_URL"] = u
		vars["IMAGEGW_REDIS_URL"] = e.redisURL
	}
	c, err := config.Load(e.config, func(k string) string { return vars[k] })
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}
	if name == "lean-bg" {
		c.Billing.JournalFsync = config.FsyncPolicy{After: leanBgFsync}
	}
	for i := range c.Providers { // only the model under load: no warnings about the others' prices
		c.Providers[i].Models = []string{strings.TrimPrefix(gatewayModel, "openai-compatible/")}
	}
	c.Models = append(c.Models, config.ModelConfig{Target: gatewayModel,
		Price: &config.Price{Unit: "image", Currency: c.Billing.Currency, Amount: e.price}})
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}

	actx, cancelApp := context.WithCancel(context.WithoutCancel(ctx))
	cleanups = append(cleanups, cancelApp)
	a, err := app.New(actx, c, e.logger.With(zap.String("setup", name)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cleanups = append(cleanups, func() { _ = a.Close() })

	k := &store.Key{Name: "imagegw-load " + name}
	const high = 1 << 30 // limits that never refuse at these rates
	big := money.MustParse("1000000000")
	limit := func() *int { v := high; return &v }
	if name == "governed" || name == "budget" {
		k.Budget = &big
	}
	if name == "governed" || name == "limits" {
		k.RPM, k.IPM, k.MPPM, k.Concurrency = limit(), limit(), limit(), limit()
	}
	secret, err := auth.Create(ctx, a.Store, k)
	if err != nil {
		return nil, fmt.Errorf("%s: create key: %w", name, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- a.Server.Serve(sctx, ln) }()

	fast, slow, large := bodies(gatewayBody)
	t := &target{name: name, url: "http://" + ln.Addr().String() + "/v1/images/generations", key: secret,
		fastBody: fast, slowBody: slow, largeBody: large, idle: func() {}}
	t.stop = func(ctx context.Context) (*ledger, error) {
		stopServe()
		serr := <-served
		cancelApp()
		a.Close() // flushes the usage recorder into the store
		defer func() {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}()
		l, err := readLedger(ctx, app.DatabaseURL(c), k.ID)
		if l != nil {
			l.Decisions, l.Fallbacks = limiterDecisions(a.Metrics.Registry)
		}
		if e.stats != nil {
			printLimiterStats(e.stats, name, a.Metrics.Registry)
		}
		if dropSchema != nil && e.keepSchema {
			e.logger.Warn("kept the schema", zap.String("setup", name), zap.String("url", backend.Redact(vars["IMAGEGW_DATABASE_URL"])))
		}
		return l, errors.Join(serr, err)
	}
	return t, nil
}

// limiterDecisions sums imagegw_ratelimit_decisions_total of the app's registry: all, and those
// of the per-process fallback.
func limiterDecisions(g prometheus.Gatherer) (all, fallback float64) {
	fams, _ := g.Gather()
	for _, f := range fams {
		if f.GetName() != "imagegw_ratelimit_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			all += v
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" && l.GetValue() == "fallback" {
					fallback += v
				}
			}
		}
	}
	return all, fallback
}

// readLedger opens the gateway's store again and sums the key's usage events.
func readLedger(ctx context.Context, dbURL, keyID string) (*ledger, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := backend.Open(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("ledger: open store: %w", err)
	}
	defer st.Close()
	groups, err := st.SumUsage(ctx, store.UsageFilter{KeyID: keyID}, store.GroupByKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &ledger{}
	for _, g := range groups {
		l.Requests += g.Requests
		l.Images += g.Images
		l.Cost += g.Cost
	}
	return l, nil
}

// freshSchema creates an empty schema on the Postgres server at base and returns a URL whose
// connections use it (pgx sends search_path as a runtime parameter), and a function that drops it.
func freshSchema(ctx context.Context, base string) (string, func(context.Context) error, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("database url: want postgres://…, got %q", backend.Redact(base))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("postgres at %s: %w (set -database-url or IMAGEGW_LOAD_DATABASE_URL)", backend.Redact(base), err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "imagegw_load_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(cctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("postgres: create schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		return err
	}
	return u.String(), drop, nil
}

// newLogger encodes the gateway's info logs as in production but throws them away (the access
// log's cost is part of what is measured, its output is not wanted), and prints warnings and
// errors, sampled, to stderr.
func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "time"
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	info := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zap.InfoLevel)
	warn := zapcore.NewSamplerWithOptions(
		zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.Lock(zapcore.AddSync(w)), zap.WarnLevel),
		time.Second, 3, 0)
	return zap.New(zapcore.NewTee(info, warn), zap.AddCaller()) // as imagegw serve's logger
}

// discardLog silences net/http's server and proxy error logs.
var discardLog = log.New(io.Discard, "", 0)
