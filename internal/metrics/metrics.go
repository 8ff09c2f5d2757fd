// Package metrics defines the gateway's Prometheus collectors. Labels are bounded sets (route
// patterns, model names from the catalog, provider and channel names from config, error kinds):
// never a key, a secret, a prompt or a raw path.
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
	}
	for _, c := range []prometheus.Collector{m.Requests, m.RequestDuration, m.InFlight, m.Images, m.Megapixels, m.Errors,
		m.Upstream, m.UpstreamLatency, m.Adjustments, m.PartialFanouts} {
		f(c)
	}
	return m
}
