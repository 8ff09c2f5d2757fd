package deploy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// TestMetricsExistFromStartup scrapes /metrics of a fresh gateway that has served nothing: every
// metric family a dashboard panel or a rule uses must already have a series (zero-valued), so
// panels show 0, not "No data", and rate() and absent()-style alerts work before a first error.
func TestMetricsExistFromStartup(t *testing.T) {
	c := usedByDeploy(t)
	a := freshGateway(t)
	srv := httptest.NewServer(a.Server.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	// Families with at least one sample: "name{…} v" or "name v" lines (histograms' series are
	// name_bucket, name_sum and name_count).
	has := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		has[name] = true
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok {
				has[base] = true
			}
		}
	}
	var names []string
	for fam := range c.used {
		names = append(names, fam)
	}
	sort.Strings(names)
	for _, fam := range names {
		if !has[fam] {
			t.Errorf("%s (%s) is used by deploy/ but a fresh gateway's /metrics has no series of it: a panel shows \"No data\" until it is first set; initialise its label values at start", fam, c.s[fam].source)
		}
	}
}
