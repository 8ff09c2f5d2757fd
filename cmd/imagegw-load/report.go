package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/money"
)

// report prints the table, the ratios and the exactness check.
func report(w io.Writer, o *options, inflight int, ms []map[string]*measurement, notes []string) {
	has := func(sc string) bool { return slices.Contains(o.Scenarios, sc) }
	fmt.Fprintf(w, "\n## imagegw-load: %d run(s), %s, GOMAXPROCS %d, %d-byte image", o.Runs, time.Now().Format("2006-01-02 15:04"),
		runtime.GOMAXPROCS(0), o.ImageBytes)
	if has("large") {
		fmt.Fprintf(w, " (large: %d-byte image, %d-byte answer)", o.LargeBytes, largeAnswerBytes(o.LargeBytes))
	}
	if o.Runs > 1 {
		fmt.Fprint(w, "; medians (max req/s: median, range)")
	}
	fmt.Fprint(w, "\n\n")

	head := []string{"setup"}
	if has("max") {
		head = append(head, fmt.Sprintf("max req/s (%d workers, %s), CPU per request", o.Workers, o.Duration))
	}
	if has("rate") {
		head = append(head, fmt.Sprintf("%s req/s offered for %s", commas(o.Rate), o.RateDuration))
	}
	if has("inflight") {
		head = append(head, fmt.Sprintf("%s in flight, %s upstream (%s)", commas(inflight), o.Delay, o.Duration))
	}
	if has("large") {
		head = append(head, fmt.Sprintf("large: ~%s b64_json answers, req/s (%d workers, %s)", mb(uint64(largeAnswerBytes(o.LargeBytes))), o.LargeWorkers, o.Duration))
	}
	row(w, head...)
	row(w, strings.Split(strings.Repeat("---,", len(head)-1)+"---", ",")...)

	var errs []string
	for _, name := range o.Setups {
		cells := []string{setupLabels[name]}
		if has("max") {
			rs := results(ms, name, "max")
			rps := rpsOf(rs)
			c := commas(int(median(rps) + 0.5))
			if len(rps) > 1 {
				c += fmt.Sprintf(" (%s–%s)", commas(int(slices.Min(rps)+0.5)), commas(int(slices.Max(rps)+0.5)))
			}
			if cpu := cpuOf(rs); len(cpu) > 0 {
				c += ", " + fmtCPU(time.Duration(median(cpu)))
			}
			cells = append(cells, c+failedNote(rs))
		}
		if has("rate") {
			rs := results(ms, name, "rate")
			var c string
			if allServed(rs) {
				c = "all served"
			} else {
				c = fmt.Sprintf("%s req/s served", commas(int(median(rpsOf(rs))+0.5)))
			}
			p50, p99 := latencies(ms, name)
			if name != "direct" && hasDirect(ms) {
				c += fmt.Sprintf(", added p50 %s, p99 %s", signedMS(p50), signedMS(p99))
			} else {
				c += fmt.Sprintf(", p50 %s, p99 %s", fmtMS(p50), fmtMS(p99))
			}
			cells = append(cells, c+failedNote(rs))
		}
		if has("inflight") {
			rs := results(ms, name, "inflight")
			heap := median(heapOf(rs))
			c := fmt.Sprintf("%s req/s, heap +%s", commas(int(median(rpsOf(rs))+0.5)), mb(uint64(heap)))
			if rss := median(rssOf(rs)); rss > 0 {
				c += ", peak RSS " + mb(uint64(rss))
			}
			cells = append(cells, c+failedNote(rs))
		}
		if has("large") {
			rs := results(ms, name, "large")
			rps := rpsOf(rs)
			c := commas(int(median(rps) + 0.5))
			if len(rps) > 1 {
				c += fmt.Sprintf(" (%s–%s)", commas(int(slices.Min(rps)+0.5)), commas(int(slices.Max(rps)+0.5)))
			}
			cells = append(cells, c+failedNote(rs))
		}
		row(w, cells...)
		for _, sc := range o.Scenarios {
			for r, res := range results(ms, name, sc) {
				if res.FirstError != "" {
					errs = append(errs, fmt.Sprintf("%s, %s, run %d: %d failed, first: %s", name, sc, r+1, res.Failed, res.FirstError))
				}
			}
		}
	}

	fmt.Fprintln(w)
	ratios(w, o, ms)
	exactness(w, o, ms)

	fmt.Fprintln(w, "\nNotes:")
	fmt.Fprintln(w, "- One process: load generator, fake upstream and the setup under test share the same cores; scenario by scenario, each setup runs on a fresh instance of its own.")
	if has("max") {
		fmt.Fprintln(w, "- CPU per request: the process's CPU time (user and system, load generator and fake upstream included) over the max window, per response. On shared cores it moves less than req/s: the bare proxy's ÷ a setup's is what the max ratio would be if both kept the cores equally busy.")
	}
	if has("rate") {
		fmt.Fprintln(w, "- Latency is measured from when each request was due (open loop); \"added\" is the setup's percentile minus direct's in the same run.")
	}
	if has("inflight") {
		fmt.Fprintln(w, "- heap: peak heap in use of the whole process (load generator and fake upstream included) over its heap before the scenario, after a GC.")
		fmt.Fprintln(w, "- peak RSS: of the whole process during the scenario, counted from after a GC that returned freed memory to the OS (so an earlier setup's pages do not count).")
	}
	if o.FailPause > 0 {
		fmt.Fprintf(w, "- A closed-loop worker whose request failed (e.g. a 503 from overload protection) waits %s before its next one.\n", o.FailPause)
	}
	for _, n := range notes {
		fmt.Fprintln(w, "- "+n)
	}
	for _, e := range errs {
		fmt.Fprintln(w, "- failures: "+e)
	}
}

// ratios prints max req/s and in-flight req/s over the bare proxy's and the lean gateway's,
// from the medians.
func ratios(w io.Writer, o *options, ms []map[string]*measurement) {
	var cols []string
	hasMax, hasIn, hasRate := slices.Contains(o.Scenarios, "max"), slices.Contains(o.Scenarios, "inflight"), slices.Contains(o.Scenarios, "rate")
	hasLarge := slices.Contains(o.Scenarios, "large")
	has := func(s string) bool { return slices.Contains(o.Setups, s) }
	if hasMax && has("proxy") {
		cols = append(cols, "max req/s ÷ bare proxy")
	}
	if hasMax && has("lean") {
		cols = append(cols, "max req/s ÷ lean")
	}
	cpu := func(name string) float64 { return median(cpuOf(results(ms, name, "max"))) }
	hasCPU := hasMax && has("proxy") && cpu("proxy") > 0
	if hasCPU {
		cols = append(cols, "bare proxy's CPU/request ÷ this one's")
	}
	if hasIn && has("proxy") {
		cols = append(cols, "in-flight req/s ÷ bare proxy")
	}
	if hasRate && has("lean") && has("direct") {
		cols = append(cols, "added p99 − lean's")
	}
	if hasIn && has("direct") {
		cols = append(cols, "heap over direct")
	}
	rss := func(name string) float64 { return median(rssOf(results(ms, name, "inflight"))) }
	hasRSS := hasIn && has("proxy") && rss("proxy") > 0
	if hasRSS {
		cols = append(cols, "in-flight peak RSS ÷ bare proxy")
	}
	if hasLarge && has("proxy") {
		cols = append(cols, "large req/s ÷ bare proxy")
	}
	if len(cols) == 0 {
		return
	}
	row(w, append([]string{"ratios"}, cols...)...)
	row(w, strings.Split(strings.Repeat("---,", len(cols))+"---", ",")...)
	med := func(name, sc string) float64 { return median(rpsOf(results(ms, name, sc))) }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	_, leanP99 := latencies(ms, "lean")
	for _, name := range o.Setups {
		if name == "direct" {
			continue
		}
		cells := []string{name}
		if hasMax && has("proxy") {
			cells = append(cells, ratio(med(name, "max"), med("proxy", "max")))
		}
		if hasMax && has("lean") {
			cells = append(cells, ratio(med(name, "max"), med("lean", "max")))
		}
		if hasCPU {
			cells = append(cells, ratio(cpu("proxy"), cpu(name)))
		}
		if hasIn && has("proxy") {
			cells = append(cells, ratio(med(name, "inflight"), med("proxy", "inflight")))
		}
		if hasRate && has("lean") && has("direct") {
			_, p99 := latencies(ms, name)
			cells = append(cells, signedMS(p99-leanP99))
		}
		if hasIn && has("direct") {
			d := median(heapOf(results(ms, name, "inflight"))) - median(heapOf(results(ms, "direct", "inflight")))
			sign := "+"
			if d < 0 {
				sign, d = "−", -d
			}
			cells = append(cells, sign+mb(uint64(d)))
		}
		if hasRSS {
			cells = append(cells, ratio(rss(name), rss("proxy")))
		}
		if hasLarge && has("proxy") {
			cells = append(cells, ratio(med(name, "large"), med("proxy", "large")))
		}
		row(w, cells...)
	}
	fmt.Fprintln(w)
}

// exactness compares, for every gateway setup and run, the X-Imagegw-Cost headers the load
// generator saw with the ledger read after the app was closed.
func exactness(w io.Writer, o *options, ms []map[string]*measurement) {
	header := false
	for r, byName := range ms {
		for _, name := range o.Setups {
			m := byName[name]
			if m == nil || m.ledger == nil {
				continue
			}
			if !header {
				fmt.Fprintln(w, "Exactness: X-Imagegw-Cost headers seen by the load generator vs. the ledger (SumUsage for the key, after closing the app):")
				fmt.Fprintln(w)
				row(w, "setup", "run", "responses", "with cost header", "no response", "sum of headers", "ledger requests", "ledger cost", "equal")
				row(w, "---", "---", "---", "---", "---", "---", "---", "---", "---")
				header = true
			}
			sum := money.Amount(m.costs.sum.Load())
			eq := "yes"
			if sum != m.ledger.Cost {
				eq = fmt.Sprintf("**no** (ledger − headers = %s)", m.ledger.Cost-sum)
			}
			if lost := m.costs.lost.Load(); lost > 0 && sum != m.ledger.Cost {
				eq += fmt.Sprintf("; %d requests got no response, the ledger may count them", lost)
			}
			row(w, name, fmt.Sprint(r+1), commas(int(m.costs.responses.Load())), commas(int(m.costs.withCost.Load())),
				commas(int(m.costs.lost.Load())), sum.String(), commas(int(m.ledger.Requests)), m.ledger.Cost.String(), eq)
		}
	}
	if header {
		fmt.Fprintln(w)
	}
	for r, byName := range ms {
		for _, name := range o.Setups {
			if m := byName[name]; m != nil && m.ledger != nil && m.ledger.Fallbacks > 0 {
				fmt.Fprintf(w, "Run %d, %s: %s of %s rate-limit decisions were made by the per-process fallback (Redis failed or passed rate_limit.redis_timeout).\n",
					r+1, name, commas(int(m.ledger.Fallbacks)), commas(int(m.ledger.Decisions)))
			}
		}
	}
}

// largeAnswerBytes is about how long the fake upstream's large answer is: the base64 of a PNG of
// n bytes plus the JSON around it.
func largeAnswerBytes(n int) int { return (n+2)/3*4 + 48 }

func row(w io.Writer, cells ...string) {
	fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
}

func results(ms []map[string]*measurement, name, sc string) []result {
	var out []result
	for _, byName := range ms {
		if m := byName[name]; m != nil {
			if r, ok := m.results[sc]; ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func hasDirect(ms []map[string]*measurement) bool { return len(results(ms, "direct", "rate")) > 0 }

// latencies returns the median over runs of the rate scenario's p50 and p99, each minus
// direct's of the same run when direct was measured.
func latencies(ms []map[string]*measurement, name string) (p50, p99 time.Duration) {
	var a, b []float64
	for _, byName := range ms {
		m := byName[name]
		if m == nil {
			continue
		}
		r, ok := m.results["rate"]
		if !ok {
			continue
		}
		x, y := r.P50, r.P99
		if d := byName["direct"]; d != nil && name != "direct" {
			if dr, ok := d.results["rate"]; ok {
				x, y = x-dr.P50, y-dr.P99
			}
		}
		a, b = append(a, float64(x)), append(b, float64(y))
	}
	return time.Duration(median(a)), time.Duration(median(b))
}

func allServed(rs []result) bool {
	for _, r := range rs {
		if r.OK != r.Offered {
			return false
		}
	}
	return len(rs) > 0
}

func failedNote(rs []result) string {
	n := 0
	for _, r := range rs {
		n += r.Failed
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" · **%s failed**", commas(n))
}

func rpsOf(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.RPS()
	}
	return out
}

// cpuOf is each run's process CPU per request, leaving out runs where it is unknown.
func cpuOf(rs []result) []float64 {
	var out []float64
	for _, r := range rs {
		if c := r.CPUPerRequest(); c > 0 {
			out = append(out, float64(c))
		}
	}
	return out
}

func heapOf(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = float64(r.HeapPeak) - float64(r.HeapBase)
	}
	return out
}

func rssOf(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = float64(r.RSSPeak)
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// commas formats n with thousands separators.
func commas(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// fmtMS formats a latency: milliseconds with two decimals below 10 ms, else rounded.
// fmtCPU prints a CPU time per request, "–" when unknown.
func fmtCPU(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func fmtMS(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 10000:
		return fmt.Sprintf("%.1f s", f/1000)
	case f >= 10:
		return fmt.Sprintf("%.0f ms", f)
	}
	return fmt.Sprintf("%.2f ms", f)
}

func signedMS(d time.Duration) string {
	if d < 0 {
		return "−" + fmtMS(-d)
	}
	return "+" + fmtMS(d)
}

func mb(b uint64) string { return fmt.Sprintf("%d MB", (b+(1<<19))>>20) }
