package metrics_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/metrics/metricstest"
	"github.com/imagegw/imagegw/providers"
	_ "github.com/imagegw/imagegw/providers/sandbox"
)

// TestErrorKindsComplete: ErrorKinds is every Kind constant of package providers, so every error
// kind has its zero-valued series from startup.
func TestErrorKindsComplete(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("../../providers/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Kind" {
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					want = append(want, s)
				}
			}
			return true
		})
	}
	if len(want) == 0 {
		t.Fatal("found no Kind constants in providers: update this test")
	}
	var got []string
	for _, k := range metrics.ErrorKinds {
		got = append(got, string(k))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("metrics.ErrorKinds = %v, want every providers.Kind %v", got, want)
	}

	m := metrics.New()
	got = metricstest.Series(t, m.Registry, "imagegw_errors_total")
	if len(got) != len(want) {
		t.Fatalf("fresh imagegw_errors_total series: %v, want one per kind", got)
	}
	for _, k := range metrics.ErrorKinds {
		if s := "fault=" + string(k.Fault()) + ",kind=" + string(k); !slices.Contains(got, s) {
			t.Errorf("no fresh series %s", s)
		}
	}
}

// TestAdjustedParamsComplete: every parameter internal/frontdoor adjusts is in AdjustedParams.
func TestAdjustedParamsComplete(t *testing.T) {
	files, err := filepath.Glob("../frontdoor/*.go")
	if err != nil {
		t.Fatal(err)
	}
	// Adjustment{"steps", …}, []Adjustment{{"size", …}}, and the rows of the table of dropped
	// fields: {ar.Background, providers.ParamBackground, "background", …}.
	lit := regexp.MustCompile(`Adjustment\{\{?"([a-z_]+)"`)
	row := regexp.MustCompile(`\{ar\.\w+, providers\.Param\w+, "([a-z_]+)"`)
	found := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{lit, row} {
			for _, m := range re.FindAllSubmatch(b, -1) {
				found[string(m[1])] = true
			}
		}
	}
	if len(found) < 3 {
		t.Fatalf("found only %v adjusted params in internal/frontdoor: update this test", found)
	}
	for p := range found {
		if !slices.Contains(metrics.AdjustedParams, p) {
			t.Errorf("internal/frontdoor adjusts %q, missing from metrics.AdjustedParams", p)
		}
	}
	if got := metricstest.Series(t, metrics.New().Registry, "imagegw_adjustments_total"); len(got) != len(metrics.AdjustedParams) {
		t.Errorf("fresh imagegw_adjustments_total series: %v", got)
	}
}

// TestInitRoutes: the initialised request series carry the route patterns and methods
// internal/server labels served requests with (chi's RoutePattern), status 200.
func TestInitRoutes(t *testing.T) {
	mount := func(r chi.Router) {
		r.Route("/v1", func(r chi.Router) {
			r.Get("/images/files/{name}", func(http.ResponseWriter, *http.Request) {})
			r.Group(func(r chi.Router) {
				r.Use(func(next http.Handler) http.Handler { return next })
				r.Get("/models", func(http.ResponseWriter, *http.Request) {})
				r.Get("/models/*", func(http.ResponseWriter, *http.Request) {})
				r.Post("/images/generations", func(http.ResponseWriter, *http.Request) {})
			})
		})
	}
	m := metrics.New()
	m.InitRoutes(mount)
	init := metricstest.Series(t, m.Registry, "imagegw_http_requests_total")
	want := []string{
		"method=GET,route=/v1/images/files/{name},status=200",
		"method=GET,route=/v1/models,status=200",
		"method=GET,route=/v1/models/*,status=200",
		"method=POST,route=/v1/images/generations,status=200",
	}
	if !slices.Equal(init, want) {
		t.Fatalf("initialised series %v, want %v", init, want)
	}
	if got := metricstest.Series(t, m.Registry, "imagegw_http_request_duration_seconds"); len(got) != 4 {
		t.Errorf("initialised latency series %v, want one per route", got)
	}

	// Served requests land on the initialised series: no new ones.
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			next.ServeHTTP(w, req)
			m.Requests.WithLabelValues(chi.RouteContext(req.Context()).RoutePattern(), req.Method, "200").Inc()
		})
	})
	mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, rq := range [][2]string{{"GET", "/v1/images/files/a.png"}, {"GET", "/v1/models"}, {"GET", "/v1/models/x/y"}, {"POST", "/v1/images/generations"}} {
		req, _ := http.NewRequest(rq[0], srv.URL+rq[1], nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := metricstest.Series(t, m.Registry, "imagegw_http_requests_total"); !slices.Equal(got, want) {
		t.Errorf("series after serving %v, want %v", got, want)
	}
}

// TestInitCatalog: listed models get image, megapixel and partial-delivery series, and every
// channel its upstream "ok" and latency series.
func TestInitCatalog(t *testing.T) {
	p, err := providers.New("sandbox", providers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Build([]catalog.Channel{{Name: "sb", Type: "sandbox", Provider: p}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.InitCatalog(cat)
	m.InitCatalog(cat) // idempotent
	if len(cat.List()) == 0 {
		t.Fatal("empty sandbox catalog")
	}
	var images []string
	for _, e := range cat.List() {
		for _, op := range e.Operations {
			images = append(images, "model="+e.Name+",operation="+string(op)+",provider=sandbox")
		}
	}
	sort.Strings(images)
	if got := metricstest.Series(t, m.Registry, "imagegw_images_total"); !slices.Equal(got, images) {
		t.Errorf("images series %v, want %v", got, images)
	}
	for _, name := range []string{"imagegw_megapixels_total", "imagegw_partial_deliveries_total"} {
		if got := metricstest.Series(t, m.Registry, name); len(got) != len(cat.List()) {
			t.Errorf("%s series %v, want one per listed model", name, got)
		}
	}
	if got := metricstest.Series(t, m.Registry, "imagegw_upstream_requests_total"); !slices.Equal(got, []string{"channel=sb,provider=sandbox,result=ok"}) {
		t.Errorf("upstream series %v", got)
	}
	if got := metricstest.Series(t, m.Registry, "imagegw_upstream_duration_seconds"); !slices.Equal(got, []string{"channel=sb,provider=sandbox"}) {
		t.Errorf("upstream latency series %v", got)
	}
	var nilM *metrics.Metrics
	nilM.InitCatalog(cat) // a nil *Metrics records nothing
}
