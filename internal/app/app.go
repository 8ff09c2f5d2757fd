// Package app wires the gateway together from its configuration: store, providers, catalog,
// auth, front door, admin API and server. The imagegw command and end-to-end tests use it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/httpx"
	"github.com/imagegw/imagegw/internal/imagestore"
	"github.com/imagegw/imagegw/internal/meter"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/ratelimit"
	"github.com/imagegw/imagegw/internal/redact"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/server"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/backend"
	"github.com/imagegw/imagegw/internal/usage"
	"github.com/imagegw/imagegw/providers"
	_ "github.com/imagegw/imagegw/providers/all" // every adapter registers itself
)

// App is a wired gateway.
type App struct {
	// Config is the configuration the gateway started with; Running is the one in force after
	// reloads (see reload.go).
	Config *config.Config
	Logger *zap.Logger
	Store  store.Store
	// Catalog is the catalog the gateway started with; Live holds the one in force, which a
	// reload swaps.
	Catalog *catalog.Catalog
	Live    *catalog.Live
	// Redactor knows every configured secret (those of reloaded configurations too) and scrubs
	// them from every log line and client error.
	Redactor *redact.Redactor
	Auth     *auth.Authenticator
	Metrics  *metrics.Metrics
	Images   *imagestore.Store
	Server   *server.Server
	// Recorder is the usage ledger's journal.
	Recorder *usage.Recorder
	// Escrow holds this replica's slices of key budgets.
	Escrow *billing.Escrow
	// Router orders each model's channels and keeps their health and switches.
	Router *router.Router

	// lost is set when Close could not make every usage event durable.
	lost error

	// reloading is what a reload needs and changes (reload.go).
	reloading

	closers []func()
	// stop ends the background loops (hold sweeper, image sweeper); bg waits for them.
	stop context.CancelFunc
	bg   sync.WaitGroup
}

// background runs f until Close.
func (a *App) background(ctx context.Context, f func(context.Context)) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		f(ctx)
	}()
}

// NewLogger builds the zap logger the configuration asks for: JSON (or console) lines on
// stderr through a buffer flushed every logFlushInterval, when it fills, and on Sync (call it at
// shutdown). The access log (server.AccessLoggerName) is never sampled: log.access says which
// requests get a line (all, errors, off). Other lines are kept too, unless log.sample thins
// them as zap's production setting does (per message, the first 100 a second, then 1 in 100).
func NewLogger(c config.LogConfig) (*zap.Logger, error) {
	return NewLoggerTo(c, zapcore.AddSync(os.Stderr))
}

// NewLoggerTo is NewLogger writing to w instead of stderr (through the same buffer).
func NewLoggerTo(c config.LogConfig, w zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	var enc zapcore.Encoder
	opts := []zap.Option{zap.AddCaller(), zap.ErrorOutput(zapcore.Lock(os.Stderr))}
	if c.Format == "console" {
		enc = zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
		opts = append(opts, zap.Development())
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "time"
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	out := &zapcore.BufferedWriteSyncer{WS: w, Size: logBufferSize, FlushInterval: logFlushInterval}
	core := zapcore.NewCore(enc, out, zap.NewAtomicLevelAt(lvl))
	rest := core
	if c.Sample {
		rest = zapcore.NewSamplerWithOptions(core, time.Second, 100, 100)
	}
	root, err := server.AccessCore(core, rest, c.Access)
	if err != nil {
		return nil, err
	}
	return zap.New(root, opts...), nil
}

// The log buffer: a line waits at most logFlushInterval; a full buffer is written at once.
const (
	logBufferSize    = 256 << 10
	logFlushInterval = 500 * time.Millisecond
)

// DatabaseURL is the configured store URL, or SQLite under the data directory.
func DatabaseURL(c *config.Config) string {
	if u := c.DatabaseURL.Value(); u != "" {
		return u
	}
	return "sqlite:" + filepath.Join(c.DataDir, "imagegw.db")
}

// OpenStore opens (and, when asked, migrates) the configured store.
func OpenStore(ctx context.Context, c *config.Config, migrate bool) (store.Store, error) {
	st, err := backend.Open(ctx, DatabaseURL(c))
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := st.Migrate(ctx); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return st, nil
}

// New wires a gateway. Close it when done.
func New(ctx context.Context, c *config.Config, log *zap.Logger) (_ *App, err error) {
	// Every configured secret is scrubbed from every log line and client error, whatever
	// carries it (a hostile upstream may echo a key anywhere).
	red := redact.New(Secrets(c)...)
	log = log.WithOptions(zap.WrapCore(red.Core))
	a := &App{Config: c, Logger: log, Metrics: metrics.New(), Redactor: red}
	a.running.Store(c)
	ctx, a.stop = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Store, err = OpenStore(ctx, c, c.MigrateOnStart)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = a.Store.Close() })

	// Provider calls are bounded by their channel's timeout (image generation may take minutes);
	// image downloads by outbound.timeout.
	hopts := httpx.Options{AllowHosts: c.Outbound.AllowHosts}
	if err := hopts.Validate(); err != nil {
		return nil, fmt.Errorf("outbound.allow_hosts: %w", err)
	}
	client := httpx.New(hopts)
	a.closers = append(a.closers, client.CloseIdleConnections)
	// Reloaded channels' adapters share the client (and its idle connections) with the first ones.
	a.client = client

	channels, cat, err := BuildCatalog(c, client, log)
	if err != nil {
		return nil, err
	}
	a.Catalog, a.Live = cat, catalog.NewLive(cat)
	a.Metrics.InitCatalog(cat)
	if a.Router, err = a.newRouter(ctx, cat, a.Metrics, log.Named("router")); err != nil {
		return nil, err
	}
	a.Auth = auth.New(a.Store, auth.Options{TTL: c.Limits.KeyCacheTTL.D(), Timeout: c.Store.Timeout.D(),
		StaleFor: c.Limits.KeyStaleFor.D(), Logger: log.Named("auth"), StaleServes: a.Metrics.KeyStaleServes})
	mtr, err := a.newMeter(ctx, channels)
	if err != nil {
		return nil, err
	}
	a.meter = mtr
	a.Images, err = imagestore.Open(ctx, imagestore.Options{URL: c.ImagesURL.Value(), Dir: c.Images.Dir, TTL: c.Images.TTL.D(),
		Timeout: c.Images.Timeout.D(), MaxBytes: c.Images.MaxBytes, Bytes: a.Metrics.HostedImageBytes, Evictions: a.Metrics.HostedImageEvictions,
		Credentials: imagestore.Credentials{AccessKeyID: c.Images.S3.AccessKeyID.Value(),
			SecretAccessKey: c.Images.S3.SecretAccessKey.Value(), SessionToken: c.Images.S3.SessionToken.Value()}})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = a.Images.Close() })
	log.Info("hosted images", zap.Stringer("store", a.Images), zap.Bool("presigned", a.Images.Presigned()),
		zap.Bool("rehost_provider_urls", c.Images.RehostProviderURLs))
	// Client-supplied image URLs go through a client without the upstream allowlist: a request
	// must never reach the simulator, a private upstream or anything else on the inside.
	public := httpx.New(httpx.Options{Timeout: c.Outbound.Timeout.D()})
	a.closers = append(a.closers, public.CloseIdleConnections)
	// Provider image URLs may be on allow-listed hosts (the simulator, a private upstream).
	downloads := httpx.New(httpx.Options{AllowHosts: c.Outbound.AllowHosts, Timeout: c.Outbound.Timeout.D()})
	a.closers = append(a.closers, downloads.CloseIdleConnections)
	fd := frontdoor.New(frontdoor.Options{
		Catalog: a.Catalog, Live: a.Live, Auth: a.Auth, Images: a.Images, StoreTimeout: c.Store.Timeout.D(),
		Fetcher: httpx.NewFetcher(public), OutputFetcher: httpx.NewFetcher(downloads),
		Meter: mtr, Channels: mtr, Router: a.Router, Redactor: red,
		Metrics: a.Metrics, Logger: log, PublicURL: c.PublicURL, MaxN: c.Limits.MaxN,
		MaxImagePixels: c.Limits.MaxImagePixels, MaxImageBytes: c.Limits.MaxImageBytes, MapNearest: c.Limits.MapNearest,
		RehostProviderURLs: c.Images.RehostProviderURLs,
	})
	a.Metrics.InitRoutes(fd.Routes)
	var adm *admin.API
	if tok := c.AdminToken.Value(); tok != "" {
		adm = &admin.API{Store: a.Store, Auth: a.Auth, Token: tok, Usage: admin.UsageHandler(a.Store, c.Billing.Currency), Router: a.Router,
			Reload: a.ReloadFile}
	}
	a.Server = server.New(server.Options{
		Addr: c.Addr, Logger: log, Metrics: a.Metrics, MaxBodyBytes: c.Limits.MaxBodyBytes,
		Ready: a.Store.Ping, ShutdownTimeout: c.ShutdownTimeout.D(), MaxInFlight: c.Limits.MaxInFlight,
		MaxConns: c.Limits.MaxConnections, BodyMinRate: c.Limits.BodyMinRate,
		BodyReadGrace: c.Limits.BodyReadGrace.D(), BodyReadTimeout: c.Limits.BodyReadTimeout.D(),
		Mount: func(r chi.Router) {
			fd.Routes(r)
			if adm != nil {
				adm.Routes(r)
			}
		},
	})
	a.background(ctx, a.sweepLoop)
	a.generation = 1
	a.Metrics.ConfigGeneration.Set(1)
	a.Metrics.ConfigLastReloadTime.SetToCurrentTime()
	return a, nil
}

// Secrets are the configured credentials: provider API keys, the admin token, the passwords
// (or whole credentials) in the database and Redis URLs, and the image store's S3 secret key
// and session token.
func Secrets(c *config.Config) []string {
	out := []string{c.AdminToken.Value(), c.Images.S3.SecretAccessKey.Value(), c.Images.S3.SessionToken.Value()}
	for _, ch := range c.Providers {
		out = append(out, ch.APIKey.Value())
	}
	for _, raw := range []string{c.DatabaseURL.Value(), c.RedisURL.Value()} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
		}
	}
	return out
}

// newMeter builds billing (with the budget escrow), rate limiting and the usage ledger.
func (a *App) newMeter(ctx context.Context, channels []catalog.Channel) (*meter.Meter, error) {
	c, log := a.Config, a.Logger
	engine, err := billing.New(c.Billing.Currency, c.Billing.Rates)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	models := map[string]*providers.Model{}
	for _, e := range a.Catalog.List() {
		models[e.Name] = &e.Model
	}
	unpriced, err := engine.Validate(models)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	if len(unpriced) > 0 {
		log.Warn("models without a price are served free of charge; price them in config", zap.Strings("models", unpriced))
	}
	var assumed []string
	for _, e := range a.Catalog.List() {
		if p := e.Model.Price; !p.IsZero() && (p.Source == "" || p.Source == providers.Assumed) {
			assumed = append(assumed, e.Name)
		}
	}
	if len(assumed) > 0 {
		log.Warn("models priced at assumed amounts (no document gives their price); check them and set price in config",
			zap.Strings("models", assumed))
	}
	bm, err := billing.NewMetrics(a.Metrics.Registry)
	if err != nil {
		return nil, err
	}
	bm.InitModels(engine.Currency(), models)
	rm, err := ratelimit.NewMetrics(a.Metrics.Registry)
	if err != nil {
		return nil, err
	}
	local := ratelimit.NewLocal(ratelimit.LocalOptions{Metrics: rm, LeaseTTL: c.RateLimit.LeaseTTL.D()})
	a.closers = append(a.closers, func() { _ = local.Close() }) // stops its lease renewal
	var limiter ratelimit.Limiter = local
	if u := c.RedisURL.Value(); u != "" {
		rc, err := ratelimit.NewClient(ctx, u, log.Named("ratelimit"))
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { _ = rc.Close() })
		policy, err := ratelimit.ParseFailurePolicy(c.RateLimit.FailurePolicy)
		if err != nil {
			return nil, err
		}
		rl := ratelimit.NewRedis(rc, ratelimit.RedisOptions{Timeout: c.RateLimit.RedisTimeout.D(), Policy: policy,
			Fallback: local, LeaseTTL: c.RateLimit.LeaseTTL.D(), Logger: log.Named("ratelimit"), Metrics: rm,
			AllotWindow: c.RateLimit.AllotWindow.D()})
		// Runs before the client closes: stops lease renewal, flushes queued releases.
		a.closers = append(a.closers, func() { _ = rl.Close() })
		limiter = rl
	}
	chLimits := channelLimits(c)
	// Decision series from startup: keys (any key may get limits of its own) and, when one is
	// limited, channels.
	classes := []string{"key"}
	for _, l := range chLimits {
		if l != (meter.Limits{}) {
			classes = append(classes, "channel")
			break
		}
	}
	rm.InitDecisions(limiter, classes...)
	rec, err := usage.Open(ctx, a.Store, usage.Options{Dir: c.Billing.OutboxDir,
		NoSync: c.Billing.JournalFsync.Off, SyncAfter: c.Billing.JournalFsync.After,
		WriteTimeout: 5 * c.Store.Timeout.D(), Logger: log.Named("usage"), Registerer: a.Metrics.Registry})
	if err != nil {
		return nil, fmt.Errorf("usage ledger: %w", err)
	}
	a.Recorder = rec
	escrow := billing.NewEscrow(billing.EscrowOptions{Store: a.Store, TTL: c.Billing.SliceTTL.D(), Window: c.Billing.SliceWindow.D(),
		Timeout: c.Store.Timeout.D(), Landed: rec.Landed, Logger: log.Named("billing"), Metrics: bm})
	a.Escrow = escrow
	if err := bm.ObserveEscrow(escrow); err != nil {
		return nil, err
	}
	// Closers run in reverse: slices are given back, then the recorder flushes, then the store
	// closes.
	a.closers = append(a.closers, func() {
		cctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout.D())
		defer cancel()
		if err := rec.Close(cctx); err != nil {
			log.Error("usage ledger: events lost at shutdown", zap.Error(err))
			a.lost = err
		}
	}, func() {
		cctx, cancel := context.WithTimeout(context.Background(), c.Store.Timeout.D())
		defer cancel()
		escrow.Close(cctx)
	})
	a.background(ctx, escrow.Run)
	return meter.New(meter.Options{
		Store: a.Store, Engine: engine, Limiter: limiter, Recorder: rec, Metrics: bm, Logger: log.Named("meter"),
		KeyDefaults: meter.Limits{RPM: c.RateLimit.RPM, IPM: c.RateLimit.IPM, MPPM: c.RateLimit.MPPM, Concurrency: c.RateLimit.Concurrency},
		Channels:    chLimits, Escrow: escrow, StoreTimeout: c.Store.Timeout.D(), LeaseTTL: c.RateLimit.LeaseTTL.D(),
		UnpricedWithBudget: c.Billing.UnpricedWithBudget, KeyFreeImages: c.Billing.KeyFreeImages,
	}), nil
}

// sweepLoop deletes expired hosted images every few minutes.
func (a *App) sweepLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
			n, err := a.Images.Sweep(sctx)
			cancel()
			if err != nil {
				a.Logger.Warn("hosted image sweep failed", zap.Error(err))
			} else if n > 0 {
				a.Logger.Info("hosted images expired", zap.Int("deleted", n))
			}
		}
	}
}

// Bootstrap creates a first API key when the store has none and prints it once, with a request
// to paste. It does nothing when keys exist.
func (a *App) Bootstrap(ctx context.Context, out io.Writer, baseURL string) error {
	n, err := a.Store.CountKeys(ctx)
	if err != nil || n > 0 {
		return err
	}
	secret, err := auth.Create(ctx, a.Store, &store.Key{Name: "default"})
	if err != nil {
		return err
	}
	model := "sandbox-image"
	if es := a.Catalog.List(); len(es) > 0 {
		if _, err := a.Catalog.Lookup(model); err != nil {
			model = es[0].Name
		}
	}
	fmt.Fprintf(out, `
imagegw: created your first API key. It is shown only this once; keep it:

    %s

Generate an image:

    curl -s %s/v1/images/generations \
      -H "Authorization: Bearer %s" \
      -H "Content-Type: application/json" \
      -d '{"model":"%s","prompt":"a lighthouse at dusk","size":"512x512"}'

Or point any OpenAI SDK at %s/v1 with that key.

`, secret, baseURL, secret, model, baseURL)
	return nil
}

// Run listens on the configured address and serves until ctx is done, then drains in-flight
// requests. ready, when not nil, receives the bound address once listening.
func (a *App) Run(ctx context.Context, ready func(addr string)) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return err
	}
	a.Logger.Info("imagegw listening", zap.String("addr", ln.Addr().String()),
		zap.String("store", backend.Redact(DatabaseURL(a.Config))), zap.Int("models", len(a.Catalog.List())))
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = a.Server.Serve(ctx, ln)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Close stops the background loops and releases everything New opened, in reverse order. It
// returns an error when usage events could not be made durable during the gateway's life (their
// requests were refused); the command exits non-zero then.
func (a *App) Close() error {
	if a.stop != nil {
		a.stop()
	}
	a.bg.Wait()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
	return a.lost
}

// ListenURL turns a listen address into a base URL a user can paste.
func ListenURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Getenv is os.Getenv, for config.Load.
var Getenv = os.Getenv
