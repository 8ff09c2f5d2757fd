package usage

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of imagegw_usage_outbox_appends_total.
const (
	reasonStoreDown = "store_down" // the store failed or is down
	reasonQueueFull = "queue_full" // Record found the queue full
)

type metrics struct {
	written       prometheus.Counter
	failures      prometheus.Counter
	dropped       prometheus.Counter
	corrupt       prometheus.Counter
	outboxAppends *prometheus.CounterVec
	batchDuration *prometheus.HistogramVec
	down          prometheus.Gauge
	downFlag      atomic.Bool

	reg        prometheus.Registerer
	queueDepth prometheus.Collector
	outboxSize prometheus.Collector
}

// newMetrics creates the collectors and registers those that do not need the Recorder; bind
// registers the rest. With a nil reg nothing is registered and everything still works.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "events_written_total",
			Help: "Usage events written to the store (an event replayed from the outbox after an ambiguous failure may count twice; the ledger keeps it once).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "write_failures_total",
			Help: "Failed usage inserts (each sends its batch to the outbox).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "events_dropped_total",
			Help: "Usage events lost: recorded after Close, or refused by both the store and the outbox.",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "outbox_corrupt_lines_total",
			Help: "Outbox lines skipped because they do not decode (a torn write after a crash).",
		}),
		outboxAppends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "outbox_appends_total",
			Help: "Usage events appended to the local outbox, by reason (store_down, queue_full).",
		}, []string{"reason"}),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "batch_duration_seconds",
			Help:    "Latency of usage inserts, by result (ok, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		down: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "store_down",
			Help: "1 while usage events go to the outbox because the store failed.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.written, m.failures, m.dropped, m.corrupt, m.outboxAppends, m.batchDuration, m.down} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("usage: register metrics: %w", err)
		}
	}
	return m, nil
}

// bind registers the gauges that read the Recorder's queue and outbox. A registration error
// (a second Recorder on one registry) is ignored: the first Recorder's gauges stay.
func (m *metrics) bind(r *Recorder) {
	m.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "imagegw", Subsystem: "usage", Name: "queue_depth",
		Help: "Usage events waiting in memory for the writer.",
	}, func() float64 { return float64(len(r.queue)) })
	m.outboxSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "imagegw", Subsystem: "usage", Name: "outbox_events",
		Help: "Usage events waiting in the local outbox for the store.",
	}, func() float64 { _, _, n := r.outbox.state(); return float64(n) })
	if m.reg != nil {
		_ = m.reg.Register(m.queueDepth)
		_ = m.reg.Register(m.outboxSize)
	}
}

func (m *metrics) setDown(down bool) {
	m.downFlag.Store(down)
	if down {
		m.down.Set(1)
	} else {
		m.down.Set(0)
	}
}

func (m *metrics) storeDown() bool { return m.downFlag.Load() }
