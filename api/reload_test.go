package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// TestReloadMatchesTheSpec reloads a gateway started on a configuration file, once after a
// valid change (200) and once after a broken one (422 with every problem), and validates both
// answers against the spec.
func TestReloadMatchesTheSpec(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imagegw.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("models:\n  - {name: art, target: sandbox-image}\n")
	g := gatewaytest.Start(t, gatewaytest.Options{ConfigFile: path})
	router := specRouter(t, g.URL)
	for _, c := range []struct {
		name, config string
		status       int
	}{
		{"applied", "models:\n  - {name: art2, target: sandbox-image}\nlog: {level: warn}\n", 200},
		{"refused", "models:\n  - {name: art, target: nope/x}\nproviders:\n  - {name: sb, type: sandbox, weight: -2}\n", 422},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(c.config)
			h := http.Header{"Authorization": {"Bearer " + gatewaytest.AdminToken}}
			exchange(t, router, "POST", g.URL+"/admin/v1/reload", h, nil, true, c.status)
		})
	}
}
