package billing

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/money"
)

// Metrics are billing's Prometheus collectors. A nil *Metrics records nothing.
//
//	imagegw_billing_cost_total{model, currency}        settled cost, in currency units
//	imagegw_billing_free_images_total{model}           delivered images paid from free quotas
//	imagegw_billing_budget_rejections_total{model}     requests refused for lack of budget
//	imagegw_billing_holds_open                         unexpired holds (all processes), per sweep
//	imagegw_billing_holds_swept_total                  expired holds deleted by the sweeper
//	imagegw_billing_sweep_errors_total                 failed sweeps
//
// Amounts in metrics are floats for Prometheus only; no money is computed from them.
type Metrics struct {
	cost        *prometheus.CounterVec
	freeImages  *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	holdsOpen   prometheus.Gauge
	swept       prometheus.Counter
	sweepErrors prometheus.Counter
}

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
		holdsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "holds_open",
			Help: "Unexpired budget holds in the store (all gateway processes), as of the last sweep.",
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "holds_swept_total",
			Help: "Expired budget holds deleted by the sweeper (their request never settled).",
		}),
		sweepErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "billing", Name: "sweep_errors_total",
			Help: "Hold sweeps that failed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.cost, m.freeImages, m.rejections, m.holdsOpen, m.swept, m.sweepErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("billing: register metrics: %w", err)
		}
	}
	return m, nil
}

// Charged counts a settled cost.
func (m *Metrics) Charged(model, currency string, cost money.Amount) {
	if m == nil || cost <= 0 {
		return
	}
	m.cost.WithLabelValues(model, currency).Add(float64(cost) / money.Scale)
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
