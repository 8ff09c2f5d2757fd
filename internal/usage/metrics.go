package usage

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	written       prometheus.Counter
	failures      prometheus.Counter
	dropped       prometheus.Counter
	corrupt       prometheus.Counter
	syncs         prometheus.Histogram
	batchDuration *prometheus.HistogramVec
	down          prometheus.Gauge
	downFlag      atomic.Bool

	reg prometheus.Registerer
}

// newMetrics creates the collectors and registers those that do not need the Recorder; bind
// registers the rest. With a nil reg nothing is registered and everything still works.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "events_written_total",
			Help: "Usage events written to the store (an event replayed from the journal after an ambiguous failure may count twice; the ledger keeps it once).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "write_failures_total",
			Help: "Failed usage inserts (the batch stays in the journal and is retried).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "events_dropped_total",
			Help: "Usage events that could not be made durable (the journal write failed, or they came after Close); their requests were refused.",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "outbox_corrupt_lines_total",
			Help: "Journal lines skipped because they do not decode (a torn write after a crash).",
		}),
		syncs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "journal_fsync_seconds",
			Help:    "Time each charge waited for its journal line to be fsync'd before its response (group commit: one fsync covers every charge appended before it started).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "batch_duration_seconds",
			Help:    "Latency of usage inserts, by result (ok, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
		down: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "store_down",
			Help: "1 while usage events wait in the journal because the store failed.",
		}),
	}
	// Both results exist from startup, zero-valued (dashboards show 0, not no data).
	for _, result := range []string{"ok", "error"} {
		m.batchDuration.WithLabelValues(result)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.written, m.failures, m.dropped, m.corrupt, m.syncs, m.batchDuration, m.down} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("usage: register metrics: %w", err)
		}
	}
	return m, nil
}

// bind registers the gauges that read the Recorder's journal. A registration error (a second
// Recorder on one registry) is ignored: the first Recorder's gauges stay.
func (m *metrics) bind(r *Recorder) {
	if m.reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "pending_events",
			Help: "Usage events durable in the local journal and not yet in the store.",
		}, func() float64 { return float64(r.Stats().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "journal_bytes",
			Help: "Bytes of the local usage journal on disk.",
		}, func() float64 { return float64(r.Stats().JournalBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "journal_fsyncs_total",
			Help: "Fsyncs of the usage journal (group commit: charges over fsyncs is the mean group size).",
		}, func() float64 { return float64(r.j.fsyncs.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "journal_ring_fsyncs_total",
			Help: "Fsyncs of the usage journal made through io_uring, as it does while busy or while its fsyncs are slow (averaging over 0.2 ms), so that waiting for the disk does not hold a scheduler slot (0 where io_uring is unavailable).",
		}, func() float64 { return float64(r.j.ringFsyncs.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "imagegw", Subsystem: "usage", Name: "open_requests",
			Help: "Requests journaled as begun and not yet finished (each becomes an indeterminate ledger row if the process dies).",
		}, func() float64 { return float64(r.Stats().Open) }),
	} {
		_ = m.reg.Register(c)
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
