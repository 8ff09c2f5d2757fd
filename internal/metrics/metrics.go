// Package metrics defines the gateway's Prometheus collectors. Labels are bounded sets (route
// patterns, a closed set of HTTP methods, model names from the catalog, provider and channel
// names from config, error kinds): never a key, a secret, a prompt, a raw path or any other
// value a client chooses.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Requests        *prometheus.CounterVec
	RequestDuration *prometheus.HistogramVec
	InFlight        prometheus.Gauge
	Images          *prometheus.CounterVec
	Megapixels      *prometheus.CounterVec
	Errors          *prometheus.CounterVec
	Upstream        *prometheus.CounterVec
	UpstreamLatency *prometheus.HistogramVec
	Adjustments     *prometheus.CounterVec
	PartialFanouts  *prometheus.CounterVec

	// Keys (internal/auth): authentications answered from a cached key past its TTL because the
	// key store failed or timed out.
	KeyStaleServes prometheus.Counter

	// Overload protection (internal/server): image API requests in flight against the bound, and
	// requests shed beyond it.
	APIInFlight      prometheus.Gauge
	APIInFlightLimit prometheus.Gauge
	APIShed          prometheus.Counter

	// Hosted images (internal/imagestore): bytes kept under the size cap, and images evicted
	// (oldest first) to stay under it.
	HostedImageBytes     prometheus.Gauge
	HostedImageEvictions prometheus.Counter

	// Client connections (internal/server): open connections against the cap, connections
	// closed to stay under it (reason "evicted": an idle or trickling connection made room for
	// a new one; "refused": a new connection found none), and request bodies cut for arriving
	// too slowly.
	OpenConns    prometheus.Gauge
	ConnLimit    prometheus.Gauge
	ConnsDropped *prometheus.CounterVec
	BodyTimeouts prometheus.Counter

	// Routing (internal/router, internal/frontdoor): each channel's state per upstream model (1
	// for its current state: closed, open, half_open or disabled; 0 for the others), the
	// breakers' transitions, and the calls moved to another channel (or skipped) by reason.
	ChannelState       *prometheus.GaugeVec
	BreakerTransitions *prometheus.CounterVec
	Failovers          *prometheus.CounterVec

	// Configuration reloads (SIGHUP, POST /admin/v1/reload): attempts by result (ok, error),
	// the generation in force (1 at start, one more per applied reload) and when it was applied.
	ConfigReloads        *prometheus.CounterVec
	ConfigGeneration     prometheus.Gauge
	ConfigLastReloadTime prometheus.Gauge

	// Cached children of the request path's vectors (children.go).
	upstream   children[upstreamKey, *upstreamSeries]
	images     children[deliveredKey, prometheus.Counter]
	megapixels children[string, prometheus.Counter]
}

// New registers the collectors (and the Go and process collectors) on a fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imagegw_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.005, .025, .1, .25, .5, 1, 2.5, 5, 10, 20, 40, 80, 160},
		}, []string{"route"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_http_in_flight_requests", Help: "HTTP requests being served.",
		}),
		Images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_images_total", Help: "Images delivered to clients by model, provider and operation.",
		}, []string{"model", "provider", "operation"}),
		Megapixels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_megapixels_total", Help: "Megapixels (2^20 pixels) delivered by model.",
		}, []string{"model"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_errors_total", Help: "Failed requests by error kind and fault group.",
		}, []string{"kind", "fault"}),
		Upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_upstream_requests_total", Help: "Upstream calls by provider, channel and result (ok or error kind).",
		}, []string{"provider", "channel", "result"}),
		UpstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "imagegw_upstream_duration_seconds", Help: "Upstream call latency by provider and channel.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 20, 40, 80, 160},
		}, []string{"provider", "channel"}),
		Adjustments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_adjustments_total", Help: "Parameters mapped to the nearest supported value, by parameter.",
		}, []string{"param"}),
		PartialFanouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_partial_deliveries_total", Help: "Requests answered with fewer images than asked, by model.",
		}, []string{"model"}),
		KeyStaleServes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegw_auth_stale_serves_total", Help: "Authentications answered from a cached key past limits.key_cache_ttl because the key store failed or timed out (for at most limits.key_stale_for).",
		}),
		APIInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_api_in_flight_requests", Help: "Image API requests (/v1/images/…, not hosted-image GETs) being served, counted against limits.max_in_flight.",
		}),
		APIInFlightLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_api_in_flight_limit", Help: "The bound on image API requests in flight (limits.max_in_flight); 0 when unlimited.",
		}),
		APIShed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegw_api_shed_requests_total", Help: "Image API requests answered 503 overloaded because limits.max_in_flight was reached.",
		}),
		HostedImageBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_hosted_images_bytes", Help: "Bytes of gateway-hosted images kept on disk (capped by images.max_bytes).",
		}),
		HostedImageEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegw_hosted_images_evicted_total", Help: "Hosted images deleted before their TTL, oldest first, to stay under images.max_bytes.",
		}),
		OpenConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_http_open_connections", Help: "Open client connections, counted against limits.max_connections.",
		}),
		ConnLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_http_connection_limit", Help: "The cap on open client connections (limits.max_connections); 0 when unlimited.",
		}),
		ConnsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_http_connections_dropped_total", Help: "Client connections closed at the connection cap: evicted (an idle connection, or one still sending its headers or trickling its body, made room for a new one) or refused (a new connection found none to evict).",
		}, []string{"reason"}),
		ChannelState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagegw_channel_state", Help: "1 for a channel's current state for an upstream model (closed, open, half_open or disabled), 0 for the others.",
		}, []string{"channel", "model", "state"}),
		BreakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_channel_breaker_transitions_total", Help: "Circuit breaker transitions of a channel for an upstream model, by the state left and the state entered.",
		}, []string{"channel", "model", "from", "to"}),
		Failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_upstream_failovers_total", Help: "Calls moved on from a channel to the model's next one, by channel and reason: the failure's error kind (only failures no image can have come from) or circuit_open (skipped without a network call); reason after_send counts failures after the request was sent, which are not moved on (the call is indeterminate).",
		}, []string{"channel", "reason"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagegw_config_reloads_total", Help: "Configuration reloads (SIGHUP or POST /admin/v1/reload) by result: ok (applied) or error (refused; the running configuration stays).",
		}, []string{"result"}),
		ConfigGeneration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_config_generation", Help: "The configuration generation in force: 1 at start, one more per applied reload.",
		}),
		ConfigLastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagegw_config_last_reload_timestamp_seconds", Help: "When the configuration in force was applied (start or last successful reload), in Unix seconds.",
		}),
		BodyTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagegw_http_body_timeouts_total", Help: "Request bodies cut for arriving slower than limits.body_min_rate (after limits.body_read_grace) or not within limits.body_read_timeout.",
		}),
	}
	for _, reason := range []string{"evicted", "refused"} {
		m.ConnsDropped.WithLabelValues(reason)
	}
	m.initClosed()
	for _, result := range []string{"ok", "error"} {
		m.ConfigReloads.WithLabelValues(result)
	}
	for _, c := range []prometheus.Collector{m.Requests, m.RequestDuration, m.InFlight, m.Images, m.Megapixels, m.Errors,
		m.Upstream, m.UpstreamLatency, m.Adjustments, m.PartialFanouts, m.APIInFlight, m.APIInFlightLimit, m.APIShed,
		m.HostedImageBytes, m.HostedImageEvictions, m.OpenConns, m.ConnLimit, m.ConnsDropped, m.BodyTimeouts,
		m.ChannelState, m.BreakerTransitions, m.Failovers, m.ConfigReloads, m.ConfigGeneration, m.ConfigLastReloadTime} {
		f(c)
	}
	f(m.KeyStaleServes)
	return m
}
