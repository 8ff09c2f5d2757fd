package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// This file holds a small PromQL scanner: enough of the language to find the metric selectors
// (with the label names of their matchers and the function they are passed to), the grouping
// labels and the functions of an expression, without pulling the Prometheus server into go.mod.

// selector is one vector selector of an expression.
type selector struct {
	name   string   // metric or recording-rule name
	labels []string // label names of its matchers
	fn     string   // innermost function or aggregation it is an argument of ("" at top level)
}

// promExpr is what scanPromQL finds in an expression.
type promExpr struct {
	selectors []selector
	grouping  []string // labels of by, without, on, ignoring, group_left and group_right
	functions []string
	aggs      []aggregation
}

// aggregation is one by or without clause.
type aggregation struct {
	without bool
	labels  []string
	parent  string // the innermost named call around the aggregation
}

// labels returns every label name the expression can carry: its matchers' and groupings'.
func (e promExpr) labels() []string {
	out := slices.Clone(e.grouping)
	for _, s := range e.selectors {
		out = append(out, s.labels...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var (
	promAggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
		"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio")
	promFunctions = set("abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
		"clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv",
		"exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
		"histogram_stddev", "histogram_stdvar", "histogram_sum", "hour", "idelta", "increase", "irate",
		"label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear",
		"rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sort_by_label",
		"sort_by_label_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time",
		"min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
		"stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time", "mad_over_time",
		"acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh",
		"deg", "rad", "pi")
	promLabelLists = set("by", "without", "on", "ignoring", "group_left", "group_right")
	promKeywords   = set("and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end")
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// scanPromQL scans expr. Grafana variables ($job, ${job}, $__rate_interval) are accepted where
// a value or a duration goes.
func scanPromQL(expr string) (promExpr, error) {
	var out promExpr
	var stack []string // enclosing calls: function name, or "" for a plain parenthesis
	i, n := 0, len(expr)
	skipSpace := func() {
		for i < n && strings.IndexByte(" \t\r\n", expr[i]) >= 0 {
			i++
		}
	}
	ident := func() string {
		start := i
		for i < n && isIdent(expr[i]) {
			i++
		}
		return expr[start:i]
	}
	str := func() error { // at a quote
		q := expr[i]
		for i++; i < n; i++ {
			if expr[i] == '\\' && q != '`' {
				i++
				continue
			}
			if expr[i] == q {
				i++
				return nil
			}
		}
		return fmt.Errorf("unterminated string in %q", expr)
	}
	// matchers reads {name op "value", …} and returns the label names.
	matchers := func() ([]string, error) {
		i++ // {
		var names []string
		for {
			skipSpace()
			if i < n && expr[i] == '}' {
				i++
				return names, nil
			}
			if i >= n || !isIdentStart(expr[i]) {
				return nil, fmt.Errorf("bad label matcher at %d in %q", i, expr)
			}
			names = append(names, ident())
			skipSpace()
			op := ""
			for _, o := range []string{"=~", "!~", "!=", "="} {
				if strings.HasPrefix(expr[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("bad label matcher operator at %d in %q", i, expr)
			}
			i += len(op)
			skipSpace()
			if i >= n || strings.IndexByte("\"'`", expr[i]) < 0 {
				return nil, fmt.Errorf("label matcher value is not a string at %d in %q", i, expr)
			}
			if err := str(); err != nil {
				return nil, err
			}
			skipSpace()
			if i < n && expr[i] == ',' {
				i++
			}
		}
	}
	labelList := func(kind string) error { // at (
		i++
		var labels []string
		for {
			skipSpace()
			switch {
			case i >= n:
				return fmt.Errorf("unterminated label list in %q", expr)
			case expr[i] == ')':
				i++
				out.grouping = append(out.grouping, labels...)
				if kind == "by" || kind == "without" {
					out.aggs = append(out.aggs, aggregation{without: kind == "without", labels: labels, parent: top(stack)})
				}
				return nil
			case expr[i] == ',':
				i++
			case isIdentStart(expr[i]):
				labels = append(labels, ident())
			default:
				return fmt.Errorf("bad label list at %d in %q", i, expr)
			}
		}
	}
	for {
		skipSpace()
		if i >= n {
			break
		}
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := str(); err != nil {
				return out, err
			}
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return out, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == '{': // a selector without a metric name
			names, err := matchers()
			if err != nil {
				return out, err
			}
			out.selectors = append(out.selectors, selector{labels: names, fn: top(stack)})
		case c == '(':
			stack = append(stack, "")
			i++
		case c == ')':
			if len(stack) == 0 {
				return out, fmt.Errorf("unbalanced ) in %q", expr)
			}
			stack = stack[:len(stack)-1]
			i++
		case c == '$': // a Grafana variable
			i++
			if i < n && expr[i] == '{' {
				end := strings.IndexByte(expr[i:], '}')
				if end < 0 {
					return out, fmt.Errorf("unterminated variable in %q", expr)
				}
				i += end + 1
			} else {
				ident()
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < n && expr[i+1] >= '0' && expr[i+1] <= '9':
			for i < n && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			word := ident()
			skipSpace()
			next := byte(0)
			if i < n {
				next = expr[i]
			}
			switch {
			case promLabelLists[word]:
				if next == '(' {
					if err := labelList(word); err != nil {
						return out, err
					}
				} else if word != "group_left" && word != "group_right" {
					return out, fmt.Errorf("%s without a label list in %q", word, expr)
				}
			case promAggregations[word]:
				out.functions = append(out.functions, word)
				// The aggregation's own parenthesis is the next bare one (after an optional by/without).
				if next == '(' {
					stack = append(stack, word)
					i++
				} else {
					// sum by (x) (…): remember it for the parenthesis after the label list.
					pendingAgg := word
					w := ident()
					if !promLabelLists[w] {
						return out, fmt.Errorf("%s followed by %q in %q", pendingAgg, w, expr)
					}
					skipSpace()
					if err := labelList(w); err != nil {
						return out, err
					}
					skipSpace()
					if i >= n || expr[i] != '(' {
						return out, fmt.Errorf("%s %s (…) without its argument in %q", pendingAgg, w, expr)
					}
					stack = append(stack, pendingAgg)
					i++
				}
			case promKeywords[word]:
			case next == '(':
				if !promFunctions[word] {
					return out, fmt.Errorf("unknown function %s in %q", word, expr)
				}
				out.functions = append(out.functions, word)
				stack = append(stack, word)
				i++
			default:
				sel := selector{name: word, fn: top(stack)}
				if next == '{' {
					names, err := matchers()
					if err != nil {
						return out, err
					}
					sel.labels = names
				}
				out.selectors = append(out.selectors, sel)
			}
		default: // operators and commas
			i++
		}
	}
	if len(stack) > 0 {
		return out, fmt.Errorf("unbalanced ( in %q", expr)
	}
	return out, nil
}

// top is the innermost named call in stack.
func top(stack []string) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] != "" {
			return stack[i]
		}
	}
	return ""
}

func TestScanPromQL(t *testing.T) {
	e, err := scanPromQL(`histogram_quantile(0.99, sum by (route, le) (rate(imagegw_http_request_duration_seconds_bucket{job=~"$job", route!~"/healthz|/readyz"}[$__rate_interval])))
		/ on (route) group_left sum without (instance) (up) > 0.5 and max(x:y:z{a="}b"}) offset 5m`)
	if err != nil {
		t.Fatal(err)
	}
	want := []selector{
		{name: "imagegw_http_request_duration_seconds_bucket", labels: []string{"job", "route"}, fn: "rate"},
		{name: "up", fn: "sum"},
		{name: "x:y:z", labels: []string{"a"}, fn: "max"},
	}
	if fmt.Sprint(e.selectors) != fmt.Sprint(want) {
		t.Errorf("selectors = %v, want %v", e.selectors, want)
	}
	if got := strings.Join(e.grouping, ","); got != "route,le,route,instance" {
		t.Errorf("grouping = %s", got)
	}
	if got := strings.Join(e.functions, ","); got != "histogram_quantile,sum,rate,sum,max" {
		t.Errorf("functions = %s", got)
	}
	wantAggs := []aggregation{{labels: []string{"route", "le"}, parent: "histogram_quantile"}, {without: true, labels: []string{"instance"}}}
	if fmt.Sprint(e.aggs) != fmt.Sprint(wantAggs) {
		t.Errorf("aggregations = %v, want %v", e.aggs, wantAggs)
	}
	if e, _ := scanPromQL(`rate(sum(x) by (le, job)[5m:])`); fmt.Sprint(e.aggs) != fmt.Sprint([]aggregation{{labels: []string{"le", "job"}, parent: "rate"}}) {
		t.Errorf("trailing by: aggregations = %v", e.aggs)
	}
	for _, bad := range []string{`rate(x[5m]`, `nosuch_fn(x)`, `sum by route (x)`, `x{a}`, `x{a="b}`, `sum(x))`} {
		if _, err := scanPromQL(bad); err == nil {
			t.Errorf("scanPromQL(%q): no error", bad)
		}
	}
}
