package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime/metrics"
	"runtime/trace"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// startTrace writes a runtime/trace of the process to path until the returned function is called.
func startTrace(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { trace.Stop(); f.Close() }, nil
}

// printLimiterStats prints the rate limiter's metrics of a gateway (-limiter-stats): the Redis
// round trips by operation (count, errors, mean and the buckets of
// imagegw_ratelimit_redis_duration_seconds), the decisions by backend, and the usage journal's
// fsyncs (imagegw_usage_journal_fsync_seconds), which every charge waits for, and the usage
// writer's inserts into the store (batches, events per batch, mean time per batch).
func printLimiterStats(w io.Writer, setup string, g prometheus.Gatherer) {
	fams, err := g.Gather()
	if err != nil {
		return
	}
	var lines []string
	var written float64
	var batches uint64
	var batchSeconds float64
	for _, f := range fams {
		switch f.GetName() {
		case "imagegw_usage_events_written_total":
			for _, m := range f.GetMetric() {
				written += m.GetCounter().GetValue()
			}
		case "imagegw_usage_batch_duration_seconds":
			for _, m := range f.GetMetric() {
				batches += m.GetHistogram().GetSampleCount()
				batchSeconds += m.GetHistogram().GetSampleSum()
			}
		case "imagegw_ratelimit_redis_duration_seconds", "imagegw_usage_journal_fsync_seconds":
			for _, m := range f.GetMetric() {
				h := m.GetHistogram()
				if h.GetSampleCount() == 0 {
					continue
				}
				var b strings.Builder
				prev := uint64(0)
				for _, bk := range h.GetBucket() {
					fmt.Fprintf(&b, " ≤%gms:%d", bk.GetUpperBound()*1000, bk.GetCumulativeCount()-prev)
					prev = bk.GetCumulativeCount()
				}
				fmt.Fprintf(&b, " >:%d", h.GetSampleCount()-prev)
				what := "redis " + labels(m.GetLabel())
				if f.GetName() == "imagegw_usage_journal_fsync_seconds" {
					what = "journal fsync"
				}
				lines = append(lines, fmt.Sprintf("%s: %d calls, mean %.2f ms;%s", what,
					h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()), b.String()))
			}
		case "imagegw_ratelimit_redis_errors_total", "imagegw_ratelimit_decisions_total", "imagegw_usage_journal_fsyncs_total", "imagegw_usage_journal_ring_fsyncs_total",
			"imagegw_ratelimit_leases_dropped_total", "imagegw_ratelimit_release_retries_total":
			for _, m := range f.GetMetric() {
				if v := m.GetCounter().GetValue(); v > 0 {
					lines = append(lines, fmt.Sprintf("%s{%s} %g", strings.TrimPrefix(strings.TrimPrefix(f.GetName(), "imagegw_ratelimit_"), "imagegw_"), labels(m.GetLabel()), v))
				}
			}
		}
	}
	if batches > 0 {
		lines = append(lines, fmt.Sprintf("usage writer: %d batches, %.0f events each, mean %.2f ms", batches,
			written/float64(batches), 1000*batchSeconds/float64(batches)))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintf(w, "limiter-stats %s: %s\n", setup, l)
	}
}

func labels(ls []*dto.LabelPair) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(s, ",")
}

// schedSampler reads the Go runtime's scheduling latency (how long runnable goroutines waited for
// a P) and stop-the-world pauses over a window: whether a latency tail is the process's own
// queueing for the CPU, the collector's pauses, or neither (then it is outside: the disk, the
// kernel, the host).
type schedSampler struct{ before []metrics.Sample }

var schedMetrics = []string{"/sched/latencies:seconds", "/sched/pauses/total/gc:seconds"}

// readMetrics reads the named runtime metrics.
func readMetrics(names ...string) []metrics.Sample {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	return s
}

func startSched() *schedSampler { return &schedSampler{before: readMetrics(schedMetrics...)} }

// schedStats is a window's share: waits for a P (p99, p99.9, over 1 ms) and GC pauses (count, p99.9).
type schedStats struct {
	waits             uint64
	waitP99, waitP999 float64
	waitsOver1ms      uint64
	pauses            uint64
	pauseMax          float64
}

func (s *schedSampler) stop() schedStats {
	after := readMetrics(schedMetrics...)
	var st schedStats
	if after[0].Value.Kind() != metrics.KindFloat64Histogram {
		return st
	}
	w := delta(s.before[0].Value.Float64Histogram(), after[0].Value.Float64Histogram())
	st.waits, st.waitP99, st.waitP999 = w.total, w.quantile(0.99), w.quantile(0.999)
	st.waitsOver1ms = w.above(1e-3)
	p := delta(s.before[1].Value.Float64Histogram(), after[1].Value.Float64Histogram())
	st.pauses, st.pauseMax = p.total, p.quantile(1)
	return st
}

func (st schedStats) String() string {
	if st.waits == 0 {
		return "sched: n/a"
	}
	return fmt.Sprintf("sched wait p99 %s p99.9 %s, %.2f%% over 1 ms; GC pauses %d, max %s", fmtSec(st.waitP99), fmtSec(st.waitP999),
		100*float64(st.waitsOver1ms)/float64(st.waits), st.pauses, fmtSec(st.pauseMax))
}

func fmtSec(s float64) string { return fmtMS(time.Duration(s * float64(time.Second))) }

// hist is the difference of two readings of one runtime histogram.
type hist struct {
	counts  []uint64
	buckets []float64
	total   uint64
}

func delta(a, b *metrics.Float64Histogram) hist {
	h := hist{counts: make([]uint64, len(b.Counts)), buckets: b.Buckets}
	for i := range b.Counts {
		h.counts[i] = b.Counts[i] - a.Counts[i]
		h.total += h.counts[i]
	}
	return h
}

// quantile is the upper bound of the bucket holding the q-quantile (its lower bound where the
// upper is +Inf).
func (h hist) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(h.total)))
	var n uint64
	for i, c := range h.counts {
		n += c
		if n >= want && c > 0 {
			if math.IsInf(h.buckets[i+1], 1) {
				return h.buckets[i]
			}
			return h.buckets[i+1]
		}
	}
	return h.buckets[len(h.buckets)-1]
}

// above counts the samples in buckets that start at or above x.
func (h hist) above(x float64) uint64 {
	var n uint64
	for i, c := range h.counts {
		if h.buckets[i] >= x {
			n += c
		}
	}
	return n
}
