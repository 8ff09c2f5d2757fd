// Package metricstest reads what a Prometheus registry gathers, for the tests of the packages
// that register metrics: a metric's series, and the sum of its samples.
package metricstest

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Series lists name's series in g as "k=v,k=v" label strings, sorted.
func Series(t testing.TB, g prometheus.Gatherer, name string) []string {
	t.Helper()
	var out []string
	for _, m := range gather(t, g, name) {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out = append(out, strings.Join(ls, ","))
	}
	sort.Strings(out)
	return out
}

// Sum adds up name's series in g whose labels include labels, given as name, value pairs: a
// counter's or gauge's value, a histogram's or summary's sample count. It is 0 when no series
// matches.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metricstest.Sum(%s): labels %q are not name, value pairs", name, labels)
	}
	var sum float64
next:
	for _, m := range gather(t, g, name) {
		for i := 0; i < len(labels); i += 2 {
			if !hasLabel(m, labels[i], labels[i+1]) {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.GetSummary() != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		}
	}
	return sum
}

// gather returns name's series in g.
func gather(t testing.TB, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
