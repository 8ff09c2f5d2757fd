package billing

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// Metrics are billing's Prometheus collectors. A nil *Metrics records nothing.
//
//	imagegw_billing_cost_total{model, currency}        settled cost, in currency units
//	imagegw_billing_free_images_total{model}           delivered images paid from free quotas
//	imagegw_billing_budget_rejections_total{model}     requests refused for lack of budget
//	imagegw_billing_holds_open                         budget holds open in this process (live)
//	imagegw_billing_held                               their amount, in currency units (live)
//	imagegw_billing_reserved                           what this process's budget slices reserve (live)
//	imagegw_billing_slice_claims_total{result}         claims of budget slices: granted, refused, refused_cached, error
//	imagegw_billing_hold_waits_total                   holds that waited for a claim (the slice ran out first)
//	imagegw_billing_slices_swept_total                 expired slices (any process's) deleted
//	imagegw_billing_sweep_errors_total                 failed sweeps
//
// Amounts in metrics are floats for Prometheus only; no money is computed from them.
type Metrics struct {
	cost        *prometheus.CounterVec
	freeImages  *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	claims      *prometheus.CounterVec
	holdWaits   prometheus.Counter
	sweptTotal  prometheus.Counter
	sweepErrors prometheus.Counter
	reg         prometheus.Registerer
	// costs caches cost's children by model and currency (Charged runs on every paid request;
	// WithLabelValues hashes the labels and takes the vector's lock).
	costs sync.Map
}

type costKey struct{ model, currency string }

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "cost_total",
			Help: "Settled cost by public model and currency, in currency units.",
		}, []string{"model", "currency"}),
		freeImages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "free_images_total",
			Help: "Delivered images paid from free quotas, by public model.",
		}, []string{"model"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "budget_rejections_total",
			Help: "Requests refused because the key's budget could not hold their worst-case cost, by public model.",
		}, []string{"model"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "slice_claims_total",
			Help: "Claims of budget slices from the store, by result (granted, refused, refused_cached, error).",
		}, []string{"result"}),
		holdWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "hold_waits_total",
			Help: "Budget holds that waited for a slice claim from the store because this process's slice ran out before its early refill came back (a key's first request, a burst above its recent rate, or a slow store). Near zero in the steady state.",
		}),
		sweptTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "slices_swept_total",
			Help: "Expired budget slices (of any process) deleted by the sweeper.",
		}),
		sweepErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "sweep_errors_total",
			Help: "Slice sweeps that failed.",
		}),
		reg: reg,
	}
	for _, r := range []string{"granted", "refused", "refused_cached", "error"} {
		m.claims.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.cost, m.freeImages, m.rejections, m.claims, m.holdWaits, m.sweptTotal, m.sweepErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("billing: register metrics: %w", err)
		}
	}
	return m, nil
}

// InitModels creates the zero-valued series of models (by public name, as Engine.Validate
// takes them): cost in currency (the deployment's), free images and budget rejections, so
// dashboards show 0 rather than no data before a model is first used. Calling it again (a
// reloaded catalog) adds the new models; nothing is removed.
func (m *Metrics) InitModels(currency string, models map[string]*providers.Model) {
	if m == nil {
		return
	}
	for name := range models {
		m.cost.WithLabelValues(name, currency)
		m.freeImages.WithLabelValues(name)
		m.rejections.WithLabelValues(name)
	}
}

// Charged counts a settled cost.
func (m *Metrics) Charged(model, currency string, cost money.Amount) {
	if m == nil || cost <= 0 {
		return
	}
	k := costKey{model, currency}
	c, ok := m.costs.Load(k)
	if !ok {
		c, _ = m.costs.LoadOrStore(k, m.cost.WithLabelValues(model, currency))
	}
	c.(prometheus.Counter).Add(float64(cost) / money.Scale)
}

// FreeImages counts delivered images paid from a free quota.
func (m *Metrics) FreeImages(model string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.freeImages.WithLabelValues(model).Add(float64(n))
}

// Rejected counts a request refused for lack of budget.
func (m *Metrics) Rejected(model string) {
	if m == nil {
		return
	}
	m.rejections.WithLabelValues(model).Inc()
}

// ObserveEscrow registers live gauges of e's holds and reservations.
func (m *Metrics) ObserveEscrow(e *Escrow) error {
	if m == nil {
		return nil
	}
	gauge := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "imagegw", Subsystem: "billing", Name: name, Help: help},
			func() float64 { return f(e.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("holds_open", "Budget holds open in this process (requests in flight on keys with a budget).",
			func(s Stats) float64 { return float64(s.Holds) }),
		gauge("held", "What the open holds reserve, in currency units.",
			func(s Stats) float64 { return float64(s.Held) / money.Scale }),
		gauge("reserved", "What this process's live budget slices reserve, used or not, in currency units.",
			func(s Stats) float64 { return float64(s.Reserved) / money.Scale }),
	} {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("billing: register metrics: %w", err)
		}
	}
	return nil
}

func (m *Metrics) claim(result string) {
	if m != nil {
		m.claims.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) holdWaited() {
	if m != nil {
		m.holdWaits.Inc()
	}
}

func (m *Metrics) swept(n int) {
	if m != nil && n > 0 {
		m.sweptTotal.Add(float64(n))
	}
}

func (m *Metrics) sweepFailed() {
	if m != nil {
		m.sweepErrors.Inc()
	}
}
