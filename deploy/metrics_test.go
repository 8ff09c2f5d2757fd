package deploy_test

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/ratelimit"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/usage"
)

// metricInfo describes one metric family the code registers.
type metricInfo struct {
	kind   string // counter, gauge, histogram, summary or untyped
	labels []string
	source string
}

// schema is every metric family the gateway's packages register, by name.
type schema map[string]*metricInfo

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

// recordingRegisterer registers on a real registry and remembers the collectors.
type recordingRegisterer struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recordingRegisterer) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

type nopWriter struct{}

func (nopWriter) InsertUsage(context.Context, []store.UsageEvent) error { return nil }

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*variableLabels: \{([^}]*)\}\}$`)

// describe adds the families of c to s.
func (s schema) describe(t *testing.T, source string, c prometheus.Collector) {
	t.Helper()
	kind := "untyped"
	switch c.(type) {
	case *prometheus.CounterVec:
		kind = "counter"
	case *prometheus.GaugeVec:
		kind = "gauge"
	case *prometheus.HistogramVec:
		kind = "histogram"
	case *prometheus.SummaryVec:
		kind = "summary"
	default: // a single metric: ask it
		ch := make(chan prometheus.Metric)
		go func() { c.Collect(ch); close(ch) }()
		for m := range ch {
			var pb dto.Metric
			if err := m.Write(&pb); err != nil {
				t.Fatalf("%s: write metric: %v", source, err)
			}
			switch {
			case pb.Counter != nil:
				kind = "counter"
			case pb.Gauge != nil:
				kind = "gauge"
			case pb.Histogram != nil:
				kind = "histogram"
			case pb.Summary != nil:
				kind = "summary"
			}
		}
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := descRE.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("%s: cannot read the descriptor %s (has prometheus.Desc.String changed?)", source, d)
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		s.add(t, m[1], &metricInfo{kind: kind, labels: labels, source: source})
	}
}

func (s schema) add(t *testing.T, name string, mi *metricInfo) {
	t.Helper()
	if old, ok := s[name]; ok && old.source != mi.source {
		t.Errorf("metric %s is registered by both %s and %s", name, old.source, mi.source)
	}
	slices.Sort(mi.labels)
	s[name] = mi
}

// codeSchema collects the metric families by constructing the collectors the way the gateway
// does: internal/metrics.New (its fields, and the Go and process collectors it registers),
// ratelimit.NewMetrics, billing.NewMetrics (with the escrow's gauges) and the usage recorder's
// metrics.
func codeSchema(t *testing.T) schema {
	t.Helper()
	s := schema{}
	m := metrics.New()
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if !v.Type().Field(i).IsExported() { // caches of the collectors' children, not collectors
			continue
		}
		if c, ok := v.Field(i).Interface().(prometheus.Collector); ok && v.Type().Field(i).Name != "Registry" {
			s.describe(t, "internal/metrics", c)
		}
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if _, ok := s[f.GetName()]; ok {
			continue
		}
		var labels []string
		for _, lp := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		s.add(t, f.GetName(), &metricInfo{kind: strings.ToLower(f.GetType().String()), labels: labels, source: "Go and process collectors"})
	}

	rr := &recordingRegisterer{reg: prometheus.NewRegistry()}
	if _, err := ratelimit.NewMetrics(rr); err != nil {
		t.Fatal(err)
	}
	for _, c := range rr.collectors {
		s.describe(t, "internal/ratelimit", c)
	}

	br := &recordingRegisterer{reg: prometheus.NewRegistry()}
	bm, err := billing.NewMetrics(br)
	if err != nil {
		t.Fatal(err)
	}
	if err := bm.ObserveEscrow(billing.NewEscrow(billing.EscrowOptions{})); err != nil {
		t.Fatal(err)
	}
	for _, c := range br.collectors {
		s.describe(t, "internal/billing", c)
	}

	ur := &recordingRegisterer{reg: prometheus.NewRegistry()}
	rec, err := usage.Open(context.Background(), nopWriter{}, usage.Options{Dir: t.TempDir(), Registerer: ur})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range ur.collectors {
		s.describe(t, "internal/usage", c)
	}
	return s
}

// series resolves a series name as PromQL sees it (x_bucket, x_sum, x_count of a histogram x)
// to its family, the labels the series carries and whether it counts (may go into rate).
func (s schema) series(name string) (fam string, labels []string, counter bool, ok bool) {
	if mi, found := s[name]; found {
		switch mi.kind {
		case "histogram":
			return "", nil, false, false // only its _bucket, _sum and _count are series
		case "summary":
			return name, append(slices.Clone(mi.labels), "quantile"), false, true
		}
		return name, mi.labels, mi.kind == "counter", true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, cut := strings.CutSuffix(name, suf)
		if !cut {
			continue
		}
		mi, found := s[base]
		if !found || mi.kind != "histogram" && (mi.kind != "summary" || suf == "_bucket") {
			continue
		}
		labels := slices.Clone(mi.labels)
		if suf == "_bucket" {
			labels = append(labels, "le")
		}
		return base, labels, true, true
	}
	return "", nil, false, false
}

// checker checks PromQL expressions against the schema and the recording rules.
type checker struct {
	s        schema
	recorded map[string][]string // recording rule → the labels its series carry
	used     map[string]bool     // families referenced
}

var (
	counterFuncs = set("rate", "irate", "increase", "resets")
	gaugeFuncs   = set("deriv", "delta", "idelta", "predict_linear")
)

// check returns the problems of expr and the labels its result can carry.
func (c *checker) check(expr string) (labels []string, problems []string) {
	e, err := scanPromQL(expr)
	if err != nil {
		return nil, []string{err.Error()}
	}
	labels = append(labels, targetLabels...)
	for _, sel := range e.selectors {
		if sel.name == "" {
			problems = append(problems, "a selector without a metric name")
			continue
		}
		var have []string
		isCounter := false
		switch fam, ls, counter, ok := c.s.series(sel.name); {
		case ok:
			c.used[fam] = true
			have, isCounter = ls, counter
		case c.isRecorded(sel.name):
			have = c.recorded[sel.name]
		case sel.name == "up":
			have = nil
		default:
			problems = append(problems, fmt.Sprintf("metric %s is not registered by the code", sel.name))
			continue
		}
		have = append(slices.Clone(have), targetLabels...)
		for _, l := range sel.labels {
			if !slices.Contains(have, l) && l != "__name__" {
				problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", sel.name, l, have))
			}
		}
		if counterFuncs[sel.fn] && !c.isRecorded(sel.name) && !isCounter {
			problems = append(problems, fmt.Sprintf("%s(%s): not a counter", sel.fn, sel.name))
		}
		if gaugeFuncs[sel.fn] && isCounter {
			problems = append(problems, fmt.Sprintf("%s(%s): a counter; use rate or increase", sel.fn, sel.name))
		}
		labels = append(labels, have...)
	}
	for _, a := range e.aggs {
		if a.parent == "histogram_quantile" && slices.Contains(a.labels, "le") == a.without {
			problems = append(problems, "histogram_quantile over an aggregation that drops le")
		}
	}
	for _, g := range e.grouping {
		if !slices.Contains(labels, g) {
			problems = append(problems, fmt.Sprintf("groups by %q, which none of its metrics carries", g))
		}
	}
	slices.Sort(labels)
	return slices.Compact(labels), problems
}

func newChecker(t *testing.T) *checker {
	t.Helper()
	c := &checker{s: codeSchema(t), recorded: map[string][]string{}, used: map[string]bool{}}
	// Recording rules first: the dashboard and alerts may use them.
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			labels, problems := c.check(r.Expr)
			for _, p := range problems {
				t.Errorf("rules.yml: record %s: %s", r.Record, p)
			}
			// A rule that aggregates carries its grouping labels (less le once quantiles are
			// taken); one that does not (a ratio of rules) carries its inputs' labels.
			if e, _ := scanPromQL(r.Expr); len(e.grouping) > 0 {
				labels = slices.DeleteFunc(slices.Clone(e.grouping), func(l string) bool {
					return l == "le" && slices.Contains(e.functions, "histogram_quantile")
				})
			}
			c.recorded[r.Record] = labels
		}
	}
	return c
}

func (c *checker) isRecorded(name string) bool { _, ok := c.recorded[name]; return ok }

var legendRE = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
var annotationLabelRE = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

// TestMetricNames checks that every metric the dashboard and the rules query is one the code
// registers, with the labels they use, and that the dashboard shows every family of the
// gateway's own packages (a new metric needs a panel).
func TestMetricNames(t *testing.T) {
	c := newChecker(t)

	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			labels, problems := c.check(r.Expr)
			for _, p := range problems {
				t.Errorf("rules.yml: alert %s: %s", r.Alert, p)
			}
			for _, text := range r.Annotations {
				for _, m := range annotationLabelRE.FindAllStringSubmatch(text, -1) {
					if !slices.Contains(labels, m[1]) {
						t.Errorf("rules.yml: alert %s: annotation uses $labels.%s, which its expression does not carry", r.Alert, m[1])
					}
				}
			}
		}
	}

	d := loadDashboard(t)
	c.used = map[string]bool{} // from here on: what the dashboard shows
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			labels, problems := c.check(tg.Expr)
			for _, pr := range problems {
				t.Errorf("grafana: panel %q: %s", p.Title, pr)
			}
			for _, m := range legendRE.FindAllStringSubmatch(tg.LegendFormat, -1) {
				if !slices.Contains(labels, m[1]) {
					t.Errorf("grafana: panel %q: legend {{%s}} is not a label of %s", p.Title, m[1], tg.Expr)
				}
			}
		}
	}
	labelValuesRE := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.queryString()
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("grafana: variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		if _, labels, _, ok := c.s.series(m[1]); !ok {
			t.Errorf("grafana: variable %s: metric %s is not registered by the code", v.Name, m[1])
		} else if !slices.Contains(append(labels, targetLabels...), m[2]) {
			t.Errorf("grafana: variable %s: %s has no label %q", v.Name, m[1], m[2])
		}
	}

	var missing []string
	for name, mi := range c.s {
		if strings.HasPrefix(name, "imagegw_") && !c.used[name] {
			missing = append(missing, name+" ("+mi.source+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("grafana: no panel shows %s; add one to deploy/grafana/imagegw.json", m)
	}
}

// TestMetricsServed checks that the metric families the deploy files use are registered on the
// registry a real gateway serves at /metrics (not only constructible by their packages).
func TestMetricsServed(t *testing.T) {
	c := usedByDeploy(t)
	a := freshGateway(t)

	if registered(a.Metrics.Registry, "imagegw_deploy_test_no_such_metric") || !registered(a.Metrics.Registry, "imagegw_http_requests_total") {
		t.Fatal("the registration probe does not work")
	}
	var names []string
	for fam := range c.used {
		names = append(names, fam)
	}
	sort.Strings(names)
	for _, fam := range names {
		if !registered(a.Metrics.Registry, fam) {
			t.Errorf("%s (%s) is used by deploy/ but the gateway does not serve it at /metrics: internal/app does not register it", fam, c.s[fam].source)
		}
	}
}

// usedByDeploy is a checker that has read every expression of the rules and the dashboard: its
// used field names every metric family deploy/ uses.
func usedByDeploy(t *testing.T) *checker {
	t.Helper()
	c := newChecker(t)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			c.check(r.Expr)
		}
	}
	for _, p := range loadDashboard(t).panels() {
		for _, tg := range p.Targets {
			c.check(tg.Expr)
		}
	}
	return c
}

// freshGateway wires a gateway on the embedded defaults (closed when the test ends).
func freshGateway(t *testing.T) *app.App {
	t.Helper()
	cfg, err := config.Load("", envFunc(map[string]string{"IMAGEGW_DATA_DIR": t.TempDir()}, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, zap.NewNop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.Close() })
	return a
}

// registered reports whether reg has a metric family named name: a probe with that name and a
// help text of its own is refused exactly when one is.
func registered(reg *prometheus.Registry, name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "deploy_test probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}
