package main

import (
	"fmt"
	"io"
	"os"
	"runtime/trace"
	"sort"
	"strings"

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
