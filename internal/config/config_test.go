package config

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

type nopProvider struct{ name string }

func (p nopProvider) Name() string              { return p.name }
func (p nopProvider) Models() []providers.Model { return nil }
func (p nopProvider) Generate(context.Context, *providers.Request) (*providers.Result, error) {
	return nil, fmt.Errorf("not used")
}

func init() {
	if !providers.Registered("cfgtest-upstream") {
		providers.Register("cfgtest-upstream", func(c providers.Config) (providers.Provider, error) { return nopProvider{c.Name}, nil })
	}
}

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "imagegw.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsNeedNoFile(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || !c.Sandbox || c.Billing.Currency != "USD" || c.Images.Dir != "./data/images" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	_, err := Load(write(t, "addr: 127.0.0.1:9000\nlisten: oops\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("want an error naming the unknown field, got %v", err)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Load(write(t, `
addr: nope
log: {level: loud}
billing: {currency: dollars}
providers:
  - {type: nosuch}
  - {name: a, type: cfgtest-upstream}
`), env(nil))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"addr", "log.level", "billing.currency", `unknown provider "nosuch"`, "api_key is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestEnvOverridesAndChannels(t *testing.T) {
	c, err := Load("", env(map[string]string{
		"IMAGEGW_ADDR":                 "0.0.0.0:9999",
		"IMAGEGW_ADMIN_TOKEN":          "admin-secret-token",
		"IMAGEGW_DATABASE_URL":         "postgres://u:dbpass@h/db",
		"IMAGEGW_CURRENCY":             "cny",
		"IMAGEGW_OUTBOUND_ALLOW_HOSTS": "127.0.0.1:9090, 10.0.0.0/8",
		"CFGTEST_UPSTREAM_API_KEY":     "sk-upstream-secret",
		"CFGTEST_UPSTREAM_BASE_URL":    "http://127.0.0.1:9090/x/v1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9999" || c.Billing.Currency != "CNY" || len(c.Outbound.AllowHosts) != 2 {
		t.Fatalf("env not applied: %+v", c)
	}
	if len(c.Providers) != 1 || c.Providers[0].Name != "cfgtest-upstream" || c.Providers[0].APIKey.Value() != "sk-upstream-secret" ||
		c.Providers[0].BaseURL != "http://127.0.0.1:9090/x/v1" {
		t.Fatalf("env channel not added: %+v", c.Providers)
	}
	out := c.Redacted()
	js, _ := json.Marshal(c)
	for _, s := range []string{"admin-secret-token", "dbpass", "sk-upstream-secret"} {
		if strings.Contains(out, s) || strings.Contains(string(js), s) || strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), s) {
			t.Fatalf("secret %q leaked when printing the config", s)
		}
	}
}

func TestPriceOverride(t *testing.T) {
	c, err := Load(write(t, `
models:
  - name: fast
    target: sandbox/sandbox-image
    price: {unit: image, currency: usd, amount: "0.05", tiers: [{quality: hd, amount: "0.08"}]}
  - target: sandbox/sandbox-steps
    price: {unit: per_banana, currency: USD, amount: "x"}
`), env(nil))
	if err == nil || !strings.Contains(err.Error(), "per_banana") || !strings.Contains(err.Error(), `amount "x"`) {
		t.Fatalf("want price errors, got %v", err)
	}
	_ = c
}
