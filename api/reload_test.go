package api_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// TestReloadMatchesTheSpec reloads a gateway started on a configuration file, once after a
// valid change (200) and once after a broken one (422 with every problem), and validates both
// answers against the spec.
func TestReloadMatchesTheSpec(t *testing.T) {
	doc := loadSpec(t)
	path := filepath.Join(t.TempDir(), "imagegw.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("models:\n  - {name: art, target: sandbox-image}\n")
	g := gatewaytest.Start(t, gatewaytest.Options{ConfigFile: path})
	doc.Servers = openapi3.Servers{{URL: g.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, config string
		status       int
	}{
		{"applied", "models:\n  - {name: art2, target: sandbox-image}\nlog: {level: warn}\n", 200},
		{"refused", "models:\n  - {name: art, target: nope/x}\nproviders:\n  - {name: sb, type: sandbox, weight: -2}\n", 422},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(c.config)
			req, _ := http.NewRequest("POST", g.URL+"/admin/v1/reload", nil)
			req.Header.Set("Authorization", "Bearer "+gatewaytest.AdminToken)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("the spec has no route for the reload: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Fatalf("request does not match the spec: %v", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
				Options: &openapi3filter.Options{IncludeResponseStatus: true}}
			out.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Fatalf("response does not match the spec: %v\n%s", err, body)
			}
		})
	}
}
