package billing_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/providers"
)

// TestInitModels: every model's cost (in the deployment's currency), free-image and rejection
// series exist, zero-valued, before the model is first used.
func TestInitModels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := billing.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitModels("EUR", map[string]*providers.Model{"a": {}, "b": {}})
	m.InitModels("EUR", map[string]*providers.Model{"b": {}}) // idempotent
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			var ls []string
			for _, l := range s.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			if v := s.GetCounter().GetValue(); v != 0 {
				t.Errorf("%s{%s} = %v, want 0", mf.GetName(), strings.Join(ls, ","), v)
			}
			got[mf.GetName()] = append(got[mf.GetName()], strings.Join(ls, ","))
		}
	}
	for name, want := range map[string]string{
		"imagegw_billing_cost_total":              "currency=EUR,model=a currency=EUR,model=b",
		"imagegw_billing_free_images_total":       "model=a model=b",
		"imagegw_billing_budget_rejections_total": "model=a model=b",
	} {
		if g := strings.Join(got[name], " "); g != want {
			t.Errorf("%s series: %q, want %q", name, g, want)
		}
	}
	var nilM *billing.Metrics
	nilM.InitModels("EUR", map[string]*providers.Model{"a": {}}) // a nil *Metrics records nothing
}
