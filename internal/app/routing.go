package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/providers"
)

// BreakerOf is the router's breaker for the configuration's routing section.
func BreakerOf(c config.RoutingConfig) router.Breaker {
	return router.Breaker{Failures: c.Failures, ErrorRate: c.ErrorRate, MinRequests: c.MinRequests, Window: c.Window.D(),
		Cooldown: c.Cooldown.D(), HalfOpenProbes: c.HalfOpenProbes}
}

// newRouter builds the router over the catalog, reads the channel switches once (so a channel
// disabled in the store gets no traffic from the first request) and follows them until Close.
// Routes are priced for the cheapest strategy as billing prices them.
func (a *App) newRouter(ctx context.Context, cat *catalog.Catalog, m *metrics.Metrics, log *zap.Logger) (*router.Router, error) {
	c := a.Config
	engine, err := billing.New(c.Billing.Currency, c.Billing.Rates)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	r := router.New(router.Options{Breaker: BreakerOf(c.Routing), Metrics: m, Logger: log,
		Price: func(rt catalog.Route, req *providers.Request) (money.Amount, bool) {
			if rt.Price.IsZero() {
				return 0, false
			}
			model := *rt.Model
			model.Price = rt.Price
			q, err := engine.Quote(&model, req)
			if err != nil {
				return 0, false
			}
			return q.PerImage, true
		}})
	r.Load(cat)
	_ = r.Refresh(ctx, a.Store, c.Store.Timeout.D())
	a.background(ctx, func(ctx context.Context) {
		r.Follow(ctx, a.Store, c.Routing.SwitchPoll.D(), c.Store.Timeout.D())
	})
	return r, nil
}
