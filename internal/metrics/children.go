package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The request path's metrics are updated through children cached by their label values: a
// vector's WithLabelValues hashes the values and takes a read lock on every call. The labels
// are bounded sets (see the package comment) and these vectors' series are never deleted, so a
// cached child stays the vector's.

// children caches the children of some metric vectors by a comparable key of their labels.
type children[K comparable, V any] struct{ m sync.Map }

// get returns the children for k, made by newChild the first time.
func (c *children[K, V]) get(k K, newChild func(K) V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v, _ := c.m.LoadOrStore(k, newChild(k))
	return v.(V)
}

type upstreamKey struct{ provider, channel, result string }

type upstreamSeries struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// ObserveUpstream counts one upstream call of a provider type on a channel by its result ("ok"
// or an error kind), and its latency.
func (m *Metrics) ObserveUpstream(provider, channel, result string, d time.Duration) {
	s := m.upstream.get(upstreamKey{provider, channel, result}, func(k upstreamKey) *upstreamSeries {
		return &upstreamSeries{calls: m.Upstream.WithLabelValues(k.provider, k.channel, k.result),
			latency: m.UpstreamLatency.WithLabelValues(k.provider, k.channel)}
	})
	s.calls.Inc()
	s.latency.Observe(d.Seconds())
}

type deliveredKey struct{ model, provider, operation string }

// Delivered counts images of a model delivered for an operation, and their megapixels (when
// above 0: the size is known).
func (m *Metrics) Delivered(model, provider, operation string, images int, megapixels float64) {
	m.images.get(deliveredKey{model, provider, operation}, func(k deliveredKey) prometheus.Counter {
		return m.Images.WithLabelValues(k.model, k.provider, k.operation)
	}).Add(float64(images))
	if megapixels > 0 {
		m.megapixels.get(model, func(model string) prometheus.Counter {
			return m.Megapixels.WithLabelValues(model)
		}).Add(megapixels)
	}
}
