package app

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/httpx"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/ratelimit"
	"github.com/imagegw/imagegw/internal/redact"
	"github.com/imagegw/imagegw/providers"
)

// Check makes the checks New makes of a configuration before it opens anything: it
// builds every channel's adapter and the model catalog (so a model target that names no channel
// or model is refused), checks the outbound allow-list, the billing currency, rates and prices,
// and the Redis URL. It opens no connection and starts nothing. `imagegw serve` runs it before New and
// `imagegw config` runs it alone, so config accepts exactly what serve does.
func Check(c *config.Config) (*catalog.Catalog, error) {
	var errs []error
	if err := (httpx.Options{AllowHosts: c.Outbound.AllowHosts}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("outbound.allow_hosts: %w", err))
	}
	if u := c.RedisURL.Value(); u != "" && (strings.HasPrefix(u, "redis://") || strings.HasPrefix(u, "rediss://")) {
		if _, err := ratelimit.ClientOptions(u); err != nil {
			errs = append(errs, fmt.Errorf("redis_url %s: %s", c.RedisURL, redactIn(err.Error(), c)))
		}
	}
	_, cat, err := BuildCatalog(c, nil, nil)
	if err != nil {
		errs = append(errs, err)
	}
	// Billing gets the currency and rates config.Validate accepts (it reports the others).
	if _, err := billing.New(c.Billing.Currency, nil); err != nil {
		return cat, errors.Join(errs...)
	}
	rates := map[string]string{}
	for cur, r := range c.Billing.Rates {
		if a, err := money.Parse(r); err == nil && a > 0 {
			rates[cur] = r
		}
	}
	engine, err := billing.New(c.Billing.Currency, rates)
	if err != nil {
		errs = append(errs, err)
	} else if cat != nil {
		models := map[string]*providers.Model{}
		for _, e := range cat.List() {
			models[e.Name] = &e.Model
		}
		if _, err := engine.Validate(models); err != nil {
			errs = append(errs, err)
		}
	}
	return cat, errors.Join(errs...)
}

// BuildCatalog builds the channels and the model catalog over them: the sandbox channel when
// enabled, then every configured channel in order, each adapter given client and log (nil when
// only checking: nothing is sent while building). Channels of an unknown provider type are left
// out (config.Validate reports them); every other problem is reported, all at once.
func BuildCatalog(c *config.Config, client *http.Client, log *zap.Logger) (_ []catalog.Channel, _ *catalog.Catalog, err error) {
	defer func() {
		// The catalog of a configuration with other problems must not crash the report.
		if r := recover(); r != nil {
			err = fmt.Errorf("catalog: %v", r)
		}
	}()
	var channels []catalog.Channel
	var errs []error
	if c.Sandbox {
		p, err := providers.New("sandbox", providers.Config{Name: "sandbox", Logger: log, HTTP: client})
		if err != nil {
			return nil, nil, err
		}
		channels = append(channels, catalog.Channel{Name: "sandbox", Type: "sandbox", Provider: p, Weight: 1})
	}
	for i, ch := range c.Providers {
		if !providers.Registered(ch.Type) {
			continue
		}
		p, err := providers.New(ch.Type, providers.Config{
			Name: ch.Name, BaseURL: ch.BaseURL, APIKey: ch.APIKey.Value(), Timeout: ch.Timeout.D(), Options: ch.Options,
			HTTP: client, Logger: log,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("providers[%d] (%s): %s", i, ch.Name, redactIn(err.Error(), c)))
			continue
		}
		channels = append(channels, channelOf(ch, p))
	}
	cat, err := catalog.Build(channels, c.Models)
	if err != nil {
		// catalog.Build lists its problems "catalog: a; b": one problem each.
		for _, p := range strings.Split(strings.TrimPrefix(err.Error(), "catalog: "), "; ") {
			errs = append(errs, errors.New(p))
		}
	} else {
		byName := map[string]string{}
		for _, mc := range c.Models {
			if mc.Markup == "" {
				continue
			}
			name := mc.Name
			if name == "" {
				name = mc.Target
			}
			byName[name] = mc.Markup
		}
		if err := cat.Markup(c.Billing.Markup, byName); err != nil {
			errs = append(errs, err)
		}
	}
	return channels, cat, errors.Join(errs...)
}

// redactIn removes the configuration's secrets from an error message.
func redactIn(msg string, c *config.Config) string {
	return redact.New(Secrets(c)...).String(msg)
}

// channelOf is the catalog's channel for a configured one: its adapter p, its models, and its
// routing (a weight left unset is 1).
func channelOf(ch config.ChannelConfig, p providers.Provider) catalog.Channel {
	c := catalog.Channel{Name: ch.Name, Type: ch.Type, Provider: p, Models: ch.Models, Priority: ch.Priority, Weight: 1}
	if ch.Weight != nil {
		c.Weight = *ch.Weight
	}
	for id, mr := range ch.ModelRouting {
		if c.Routing == nil {
			c.Routing = map[string]catalog.Routing{}
		}
		c.Routing[id] = catalog.Routing{Priority: mr.Priority, Weight: mr.Weight}
	}
	return c
}
