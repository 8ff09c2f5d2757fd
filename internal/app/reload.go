package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/meter"
	"github.com/imagegw/imagegw/providers"
)

// Configuration reload (SIGHUP, POST /admin/v1/reload).
//
// A reload reads the configuration again from its source (SetSource: the file serve was started
// with, and the environment) and checks it exactly as serve does (config validation and Check),
// all problems at once. On any problem nothing changes. Otherwise the reloadable settings
// (Reloadable) are applied and the others keep their running value until a restart; those that
// changed are reported as needing one.
//
// Applying swaps, in this order: the redactor learns the new secrets; the new channels' adapters
// and catalog are built (sharing the outbound HTTP client, so no connection is closed); the
// router loads the catalog (health is kept for the channel and model pairs that remain) and
// the breaker settings; the meter takes the new per-channel limits; the catalog in force
// (App.Live) is swapped. A request resolves its model once, from the catalog in force when it
// arrives, and keeps that entry with its routes and adapters to its end: requests in flight
// finish on the channels and prices they started with, new ones use the new. Old adapters are
// left to the garbage collector once their last request ends.

// Reloadable are the settings a reload applies, by their YAML path: channels (the sandbox and
// providers[]: keys, base URLs, options, models, limits, priority, weight, model_routing), models[]
// (aliases, fallbacks, prices, markups, strategies, definitions), billing.markup and the
// routing breaker. Every other setting needs a restart: a reload reports it and keeps its
// running value.
var Reloadable = []string{"sandbox", "providers", "models", "billing.markup", "routing.failures", "routing.error_rate",
	"routing.min_requests", "routing.window", "routing.cooldown", "routing.half_open_probes"}

// reloading is the state reloads need and change.
type reloading struct {
	// mu serializes reloads; generation (under mu) counts the configurations applied.
	mu         sync.Mutex
	generation int64
	// source is where ReloadFile reads the configuration (SetSource).
	source *source
	// running is the configuration in force: the one started with, its reloadable settings
	// replaced by each reload's.
	running atomic.Pointer[config.Config]
	// client is the outbound HTTP client every channel's adapter shares.
	client *http.Client
	meter  *meter.Meter
}

type source struct {
	path   string
	getenv func(string) string
}

// SetSource says where ReloadFile reads the configuration: the YAML file at path ("" for none:
// defaults and environment) with the environment read through getenv, as config.Load does.
// imagegw serve sets the file it was started with.
func (a *App) SetSource(path string, getenv func(string) string) {
	a.reloading.mu.Lock()
	defer a.reloading.mu.Unlock()
	a.source = &source{path: path, getenv: getenv}
}

// Running returns the configuration in force: the one the gateway started with, with the
// reloadable settings of the last reload applied.
func (a *App) Running() *config.Config { return a.running.Load() }

// ReloadFile reads the configuration again from its source (SetSource), checks it as serve does
// and applies it (see Reload). Every problem comes back at once as a *config.Error, and nothing
// changes then. SIGHUP and POST /admin/v1/reload call it.
func (a *App) ReloadFile(ctx context.Context) (admin.ReloadResult, error) {
	a.reloading.mu.Lock()
	defer a.reloading.mu.Unlock()
	if a.source == nil {
		return admin.ReloadResult{}, a.refused("", errors.New("reload: the gateway was not started from a configuration source"))
	}
	src := *a.source
	c, err := config.LoadChecked(src.path, src.getenv, a.check)
	if err != nil {
		return admin.ReloadResult{}, a.refused(src.path, err)
	}
	return a.apply(ctx, c)
}

// Reload checks c as serve checks a configuration (config validation and Check, all problems at
// once, as a *config.Error) and, when it has no problem, applies its reloadable settings
// without dropping requests in flight: a request admitted before finishes on the catalog,
// channels and prices it started with; requests after use the new ones. Settings that need a
// restart and changed are listed in the result (RestartRequired) and keep their running value.
func (a *App) Reload(ctx context.Context, c *config.Config) (admin.ReloadResult, error) {
	a.reloading.mu.Lock()
	defer a.reloading.mu.Unlock()
	if err := errors.Join(c.Validate(), a.check(c)); err != nil {
		return admin.ReloadResult{}, a.refused("", &config.Error{Problems: flatten(err)})
	}
	return a.apply(ctx, c)
}

// check is Check, and, when billing.currency or billing.rates changed (they need a restart),
// a check that the new prices can be billed with the running ones.
func (a *App) check(c *config.Config) error {
	cat, err := Check(c)
	run := a.Running()
	if cat == nil || (c.Billing.Currency == run.Billing.Currency && reflect.DeepEqual(c.Billing.Rates, run.Billing.Rates)) {
		return err
	}
	engine, eerr := billing.New(run.Billing.Currency, run.Billing.Rates)
	if eerr == nil {
		_, eerr = engine.Validate(modelsOf(cat))
	}
	if eerr != nil {
		eerr = fmt.Errorf("billing.currency and billing.rates need a restart; with the running ones (%s): %w", run.Billing.Currency, eerr)
	}
	return errors.Join(err, eerr)
}

// refused records a refused reload and returns its problems (secrets redacted) as a
// *config.Error.
func (a *App) refused(path string, err error) error {
	a.Metrics.ConfigReloads.WithLabelValues("error").Inc()
	out := &config.Error{File: path}
	for _, p := range flatten(err) {
		out.Problems = append(out.Problems, errors.New(a.Redactor.String(p.Error())))
	}
	msgs := make([]string, len(out.Problems))
	for i, p := range out.Problems {
		msgs[i] = p.Error()
	}
	a.Logger.Error("configuration reload refused; the running configuration stays", zap.String("file", path),
		zap.Strings("problems", msgs))
	return out
}

// apply puts the reloadable settings of c in force (the caller holds mu and checked c).
func (a *App) apply(_ context.Context, c *config.Config) (admin.ReloadResult, error) {
	run := a.Running()
	changed, restart := diffSettings(run, c)
	next := *run
	next.Sandbox, next.Providers, next.Models = c.Sandbox, c.Providers, c.Models
	next.Billing.Markup = c.Billing.Markup
	poll := next.Routing.SwitchPoll
	next.Routing = c.Routing
	next.Routing.SwitchPoll = poll

	// Secrets first: the new adapters may log.
	a.Redactor.Add(Secrets(c)...)
	_, cat, err := BuildCatalog(&next, a.client, a.Logger)
	if err != nil {
		return admin.ReloadResult{}, a.refused("", err)
	}
	if engine, err := billing.New(next.Billing.Currency, next.Billing.Rates); err == nil {
		if unpriced, _ := engine.Validate(modelsOf(cat)); len(unpriced) > 0 {
			a.Logger.Warn("models without a price are served free of charge; price them in config", zap.Strings("models", unpriced))
		}
	}
	a.Router.SetBreaker(BreakerOf(next.Routing))
	a.Router.Load(cat)
	a.meter.SetChannels(channelLimits(&next))
	a.Live.Store(cat)
	a.running.Store(&next)

	a.generation++
	now := time.Now()
	a.Metrics.ConfigReloads.WithLabelValues("ok").Inc()
	a.Metrics.ConfigGeneration.Set(float64(a.generation))
	a.Metrics.ConfigLastReloadTime.Set(float64(now.UnixNano()) / 1e9)
	fields := []zap.Field{zap.Int64("generation", a.generation), zap.Strings("changed", changed),
		zap.Int("models", len(cat.List())), zap.Int("channels", len(cat.Channels()))}
	if len(restart) > 0 {
		a.Logger.Warn("configuration reloaded; changed settings that need a restart keep their running value",
			append(fields, zap.Strings("restart_required", restart))...)
	} else {
		a.Logger.Info("configuration reloaded", fields...)
	}
	return admin.ReloadResult{Object: "config_reload", Generation: a.generation, ReloadedAt: now.UTC(),
		Changed: changed, RestartRequired: restart}, nil
}

// channelLimits are the per-channel limits of the configuration's channels.
func channelLimits(c *config.Config) map[string]meter.Limits {
	out := map[string]meter.Limits{}
	for _, ch := range c.Providers {
		out[ch.Name] = meter.Limits{RPM: ch.RPM, IPM: ch.IPM, Concurrency: ch.Concurrency}
	}
	return out
}

func modelsOf(cat *catalog.Catalog) map[string]*providers.Model {
	models := map[string]*providers.Model{}
	for _, e := range cat.List() {
		models[e.Name] = &e.Model
	}
	return models
}

// flatten lists the problems of err: those of a *config.Error or of a joined error, nested
// ones included, each once.
func flatten(err error) []error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ce, ok := err.(*config.Error); ok {
			for _, p := range ce.Problems {
				walk(p)
			}
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, p := range j.Unwrap() {
				walk(p)
			}
			return
		}
		if !slices.ContainsFunc(out, func(e error) bool { return e.Error() == err.Error() }) {
			out = append(out, err)
		}
	}
	walk(err)
	return out
}

// diffSettings compares two configurations setting by setting (by YAML path) and returns the
// reloadable settings that changed (channels by name: "providers[sf-main]") and the others.
func diffSettings(old, c *config.Config) (changed, restart []string) {
	var walk func(prefix string, ov, nv reflect.Value)
	walk = func(prefix string, ov, nv reflect.Value) {
		t := ov.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			// Unexported fields and those only the environment sets (the image store's AWS_*
			// credentials, fixed for the life of the process) are not settings of the file.
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			path := prefix + name
			o, n := ov.Field(i), nv.Field(i)
			if f.Type.Kind() == reflect.Struct {
				walk(path+".", o, n)
				continue
			}
			if reflect.DeepEqual(o.Interface(), n.Interface()) {
				continue
			}
			switch {
			case path == "providers":
				changed = append(changed, channelChanges(old.Providers, c.Providers)...)
			case slices.Contains(Reloadable, path):
				changed = append(changed, path)
			default:
				restart = append(restart, path)
			}
		}
	}
	walk("", reflect.ValueOf(*old), reflect.ValueOf(*c))
	return changed, restart
}

// channelChanges names the channels added, removed or changed ("providers[name]"), or
// "providers" when only their order changed.
func channelChanges(old, next []config.ChannelConfig) []string {
	var out []string
	find := func(chs []config.ChannelConfig, name string) *config.ChannelConfig {
		for i := range chs {
			if chs[i].Name == name {
				return &chs[i]
			}
		}
		return nil
	}
	for i := range next {
		if o := find(old, next[i].Name); o == nil || !reflect.DeepEqual(*o, next[i]) {
			out = append(out, "providers["+next[i].Name+"]")
		}
	}
	for i := range old {
		if find(next, old[i].Name) == nil {
			out = append(out, "providers["+old[i].Name+"]")
		}
	}
	if len(out) == 0 {
		out = []string{"providers"}
	}
	return out
}
