package metrics

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/providers"
)

// Series that dashboards and alert rules select exist from startup, zero-valued: a panel shows 0
// rather than "No data", and rate() has a first sample to start from. Only label values the code
// emits are initialised, and only bounded sets of them: closed sets in New, and what the
// configuration makes known (catalog models and channels, routes) in the Init methods below.
// Label values first seen later (a model added by a reload, a non-200 status) simply appear
// when first used.

// ErrorKinds is every providers.Kind: imagegw_errors_total{kind, fault} is initialised for each,
// with its fault group. providers keeps the set closed; TestErrorKindsComplete checks this list
// against it.
var ErrorKinds = []providers.Kind{
	providers.KindInvalidRequest, providers.KindUnsupported, providers.KindContentPolicy,
	providers.KindModelNotFound, providers.KindTooLarge,
	providers.KindUnauthenticated, providers.KindPermissionDenied, providers.KindRateLimited,
	providers.KindQuotaExceeded,
	providers.KindUpstreamAuth, providers.KindUpstreamRateLimited, providers.KindUpstreamUnavailable,
	providers.KindUpstreamTimeout, providers.KindUpstreamBadResponse,
	providers.KindInternal, providers.KindUnavailable, providers.KindCanceled,
}

// AdjustedParams are the param label values of imagegw_adjustments_total: the request
// parameters internal/frontdoor maps to the nearest supported value, or drops (user).
// TestAdjustedParamsComplete checks this list against internal/frontdoor's source.
var AdjustedParams = []string{"size", "aspect_ratio", "steps", "background", "output_format", "moderation", "user"}

// initClosed creates the series of the error kinds and adjusted parameters (closed sets).
func (m *Metrics) initClosed() {
	for _, k := range ErrorKinds {
		m.Errors.WithLabelValues(string(k), string(k.Fault()))
	}
	for _, p := range AdjustedParams {
		m.Adjustments.WithLabelValues(p)
	}
}

// InitCatalog creates the series of the catalog's listed models (images by the provider type
// of the model's primary route and each operation it supports, megapixels, partial deliveries)
// and of every channel a call can go to (upstream requests with result "ok", upstream
// latency). Calling it again (a reloaded catalog) adds the new ones; nothing is removed.
func (m *Metrics) InitCatalog(c *catalog.Catalog) {
	if m == nil || c == nil {
		return
	}
	for _, e := range c.List() {
		for _, op := range e.Operations {
			m.Images.WithLabelValues(e.Name, e.OwnedBy, string(op))
		}
		m.Megapixels.WithLabelValues(e.Name)
		m.PartialFanouts.WithLabelValues(e.Name)
	}
	for _, r := range c.Pinned() {
		m.Upstream.WithLabelValues(r.Type, r.Channel, "ok")
		m.UpstreamLatency.WithLabelValues(r.Type, r.Channel)
	}
}

// InitRoutes creates the request series of the routes mount registers (frontdoor's Routes):
// requests by route pattern, method and status "200", and request latency by route. mount is
// applied to a router of its own, walked for its (method, pattern) pairs, and dropped. The
// patterns are those internal/server labels requests with (chi's RoutePattern).
func (m *Metrics) InitRoutes(mount func(chi.Router)) {
	if m == nil || mount == nil {
		return
	}
	r := chi.NewRouter()
	mount(r)
	_ = chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		switch method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			return nil // not a label value internal/server emits for a route of its own
		}
		route = routePattern(route)
		m.Requests.WithLabelValues(route, method, "200")
		m.RequestDuration.WithLabelValues(route)
		return nil
	})
}

// routePattern normalises a walked route as chi's Context.RoutePattern does a matched one.
func routePattern(p string) string {
	for strings.Contains(p, "/*/") {
		p = strings.ReplaceAll(p, "/*/", "/")
	}
	if p != "/" {
		p = strings.TrimSuffix(p, "//")
		p = strings.TrimSuffix(p, "/")
	}
	return p
}
