package ratelimit

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backend label values of imagegw_ratelimit_decisions_total.
const (
	backendLocal    = "local"    // the Local limiter decided
	backendRedis    = "redis"    // Redis decided
	backendFallback = "fallback" // Redis failed and the in-process fallback decided (fail-open)
	backendNone     = "none"     // no decision: fail-closed error
)

// Label values of imagegw_ratelimit_release_retries_total{result}.
const (
	retryReleased = "released" // the retried release went through
	retryFailed   = "failed"   // it failed again and stays queued
	retryExpired  = "expired"  // dropped: the lease has expired by now anyway
)

// Label values of imagegw_ratelimit_leases_dropped_total{reason}.
const (
	dropExpired   = "expired"   // found expired or gone before it could be renewed
	dropAbandoned = "abandoned" // its grant was garbage-collected without Release; released
)

// redisOps are the op label values of the Redis metrics (see Metrics).
var redisOps = [...]string{"admit", "allot", "give_back", "renew", "renew_batch", "release_batch"}

// Metrics are the limiter's Prometheus collectors. A nil *Metrics records nothing.
//
//	imagegw_ratelimit_decisions_total{subject, limit, result, backend}
//	    subject: key|channel|other; limit: none|requests|images|megapixels|concurrency
//	    (the refusing limit); result: allowed|refused|error; backend: local|redis|fallback|none
//	imagegw_ratelimit_redis_errors_total{op}       op: admit|give_back|renew|renew_batch|release_batch
//	imagegw_ratelimit_redis_duration_seconds{op}   latency of each Redis round trip
//	imagegw_ratelimit_fallback_active              1 while the Redis circuit is open
//	imagegw_ratelimit_leases_in_flight{subject}    live leases this process holds and renews
//	imagegw_ratelimit_leases_dropped_total{reason} leases that ended without Release
//	    reason: expired (not renewed in time, e.g. a Redis outage longer than the lease TTL, or
//	    Redis lost them) | abandoned (the grant was garbage-collected unreleased; the limiter
//	    released the lease)
//	imagegw_ratelimit_releases_pending             failed releases queued for a retry
//	imagegw_ratelimit_release_retries_total{result} retried releases, result: released|failed|expired
//
// Op values of the Redis metrics: admit, give_back, renew (a request's own calls) and
// renew_batch, release_batch (batched background calls: the renewal loop's, and every release:
// the releaser's batches and the retries; the count of release_batch observations is the number
// of round trips releases took).
type Metrics struct {
	decisions      *prometheus.CounterVec
	redisErrors    *prometheus.CounterVec
	redisDuration  *prometheus.HistogramVec
	fallbackActive prometheus.Gauge
	inFlight       *prometheus.GaugeVec
	// inFlightBy caches inFlight's children by subject class (key, channel, other): the gauge
	// moves on every lease.
	inFlightBy [3]prometheus.Gauge
	dropped    *prometheus.CounterVec
	pending    prometheus.Gauge
	retries    *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg. Pass a fresh
// prometheus.NewRegistry() in tests.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "decisions_total",
			Help: "Rate limit decisions by subject class, refusing limit, result and deciding backend.",
		}, []string{"subject", "limit", "result", "backend"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "redis_errors_total",
			Help: "Failed or timed-out Redis calls of the rate limiter, by operation.",
		}, []string{"op"}),
		redisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "redis_duration_seconds",
			Help:    "Latency of the rate limiter's Redis round trips, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}, []string{"op"}),
		fallbackActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "fallback_active",
			Help: "1 while Redis is considered down (circuit open) and the failure policy applies.",
		}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "leases_in_flight",
			Help: "Live concurrency leases held (and renewed) by this process, by subject class, the unused leases of its allotments included.",
		}, []string{"subject"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "leases_dropped_total",
			Help: "Concurrency leases that ended without Release: expired before renewal, or abandoned (grant dropped unreleased; released by the limiter).",
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "releases_pending",
			Help: "Lease releases that failed (Redis unreachable) and are queued for a retry.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "ratelimit", Name: "release_retries_total",
			Help: "Retries of failed lease releases, by result: released, failed (queued again) or expired (dropped; the lease expired anyway).",
		}, []string{"result"}),
	}
	for i, class := range [...]string{"key", "channel", "other"} {
		m.inFlightBy[i] = m.inFlight.WithLabelValues(class)
	}
	// The closed label sets exist from startup, zero-valued (dashboards show 0, not no data). The
	// Redis ops too: with the Local limiter alone they stay 0, which is what happened.
	for _, reason := range []string{dropExpired, dropAbandoned} {
		m.dropped.WithLabelValues(reason)
	}
	for _, result := range []string{retryReleased, retryFailed, retryExpired} {
		m.retries.WithLabelValues(result)
	}
	for _, op := range redisOps {
		m.redisErrors.WithLabelValues(op)
		m.redisDuration.WithLabelValues(op)
	}
	for _, c := range []prometheus.Collector{m.decisions, m.redisErrors, m.redisDuration, m.fallbackActive, m.inFlight,
		m.dropped, m.pending, m.retries} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
		}
	}
	return m, nil
}

// InitDecisions creates the zero-valued decision series l makes for the subject classes
// ("key", "channel", "other"): allowed, no refusing limit, by l's backend (local for a *Local,
// redis for a *Redis; its fallback and fail-closed series appear when Redis first fails).
// Pass the classes the configuration admits: a class never admitted gets no series.
func (m *Metrics) InitDecisions(l Limiter, classes ...string) {
	if m == nil {
		return
	}
	var backend string
	switch l.(type) {
	case *Local:
		backend = backendLocal
	case *Redis:
		backend = backendRedis
	default:
		return
	}
	for _, class := range classes {
		switch class {
		case "key", "channel", "other":
			m.decisions.WithLabelValues(class, DimNone.String(), "allowed", backend)
		}
	}
}

func (m *Metrics) decision(class string, d *Decision, backend string) {
	if m == nil {
		return
	}
	result := "allowed"
	if !d.Allowed {
		result = "refused"
	}
	m.decisions.WithLabelValues(class, d.RefusedBy.String(), result, backend).Inc()
}

func (m *Metrics) unavailable(class string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(class, DimNone.String(), "error", backendNone).Inc()
}

func (m *Metrics) leaseHeld(class string, delta float64) {
	if m == nil {
		return
	}
	switch class {
	case "key":
		m.inFlightBy[0].Add(delta)
	case "channel":
		m.inFlightBy[1].Add(delta)
	default:
		m.inFlightBy[2].Add(delta)
	}
}

func (m *Metrics) leaseDropped(reason string) {
	if m == nil {
		return
	}
	m.dropped.WithLabelValues(reason).Inc()
}

func (m *Metrics) releasesPending(delta float64) {
	if m == nil || delta == 0 {
		return
	}
	m.pending.Add(delta)
}

func (m *Metrics) releaseRetry(result string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(result).Inc()
}

func (m *Metrics) redisCall(op string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.redisDuration.WithLabelValues(op).Observe(took.Seconds())
	if err != nil {
		m.redisErrors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) setFallback(active bool) {
	if m == nil {
		return
	}
	v := 0.0
	if active {
		v = 1
	}
	m.fallbackActive.Set(v)
}
