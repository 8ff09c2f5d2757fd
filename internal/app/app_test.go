package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// post POSTs the JSON body to url with the API key key.
func post(t *testing.T, url, key, body string) (*http.Response, []byte) {
	t.Helper()
	return gatewaytest.Do(t, "POST", url, key, body)
}

// TestAccessLogNeverHoldsTheSecret checks the access log line's fields and that no secret, from
// the API key to the admin token, reaches any log line.
func TestAccessLogNeverHoldsTheSecret(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	g := gatewaytest.Start(t, gatewaytest.Options{Logger: zap.New(core)})
	resp, body := post(t, g.URL+"/v1/images/generations", g.Key, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	post(t, g.URL+"/v1/images/generations", g.Key, `{"model":"sandbox-image","prompt":"x [sandbox:fail=upstream_auth]"}`)
	var line map[string]any
	for _, e := range logs.FilterMessage("request").All() {
		if e.ContextMap()["status"] == int64(200) {
			line = e.ContextMap()
		}
	}
	if line == nil {
		t.Fatal("no access log line for the request")
	}
	for _, k := range []string{"request_id", "route", "status", "latency_ms", "model", "provider", "key_id"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, line)
		}
	}
	if line["request_id"] != resp.Header.Get("X-Request-Id") || line["route"] != "/v1/images/generations" || line["model"] != "sandbox-image" {
		t.Errorf("access log line %v", line)
	}
	for _, e := range logs.All() {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(b)+e.Message, g.Key) || strings.Contains(string(b), gatewaytest.AdminToken) {
			t.Fatalf("a log line holds a secret: %s %s", e.Message, b)
		}
	}
}

// TestShutdownDrainsInFlightRequests starts slow requests, stops the gateway, and checks that every
// one of them still gets its images.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := gatewaytest.StartContext(t, ctx, gatewaytest.Options{})
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, g.URL+"/v1/images/generations", g.Key, `{"model":"sandbox-image","prompt":"slow [sandbox:latency=800ms]","size":"64x64"}`)
			statuses[i] = resp.StatusCode
		}()
	}
	time.Sleep(300 * time.Millisecond) // the requests are in flight
	cancel()
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Fatalf("request %d ended with %d during shutdown", i, s)
		}
	}
	// New connections are refused once the server has stopped.
	g.Wait(t)
	if _, err := http.Get(g.URL + "/healthz"); err == nil {
		t.Fatal("the server still accepts connections after shutdown")
	}
}

func TestAdminKeysAPI(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	admin := func(method, path, body string) (int, map[string]any) {
		resp, b := gatewaytest.Do(t, method, g.URL+path, gatewaytest.AdminToken, body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	st, created := admin("POST", "/admin/v1/keys", `{"name":"app","models":["sandbox-image"],"expires_in":"720h","budget":"25.00","budget_period":"monthly","rpm":60,"ipm":120,"mppm":500,"concurrency":4}`)
	if st != 201 || created["key"] == nil || created["budget"] != "25" || created["rpm"] != float64(60) || created["status"] != "active" {
		t.Fatalf("create: %d %v", st, created)
	}
	secret, id := created["key"].(string), created["id"].(string)
	if resp, body := post(t, g.URL+"/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x","size":"64x64"}`); resp.StatusCode != 200 {
		t.Fatalf("the new key does not work: %d %s", resp.StatusCode, body)
	}
	if resp, _ := post(t, g.URL+"/v1/images/generations", secret, `{"model":"sandbox-steps","prompt":"x","size":"64x64"}`); resp.StatusCode != 403 {
		t.Fatalf("a model outside the key's list: %d", resp.StatusCode)
	}
	_, list := admin("GET", "/admin/v1/keys", "")
	for _, k := range list["data"].([]any) {
		if k.(map[string]any)["key"] != nil {
			t.Fatal("the list shows a secret")
		}
	}
	st, upd := admin("PATCH", "/admin/v1/keys/"+id, `{"name":"renamed","budget":null,"expires_at":null}`)
	if st != 200 || upd["name"] != "renamed" || upd["budget"] != nil || upd["expires_at"] != nil {
		t.Fatalf("update: %d %v", st, upd)
	}
	if st, e := admin("PATCH", "/admin/v1/keys/"+id, `{"rpm":-1}`); st != 400 {
		t.Fatalf("negative rpm accepted: %d %v", st, e)
	}
	if st, e := admin("PATCH", "/admin/v1/keys/"+id, `{"colour":"red"}`); st != 400 {
		t.Fatalf("unknown field accepted: %d %v", st, e)
	}
	st, rev := admin("DELETE", "/admin/v1/keys/"+id, "")
	if st != 200 || rev["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", st, rev)
	}
	// Revoked through this process: refused at once, saying why.
	resp, body := post(t, g.URL+"/v1/images/generations", secret, `{"model":"sandbox-image","prompt":"x"}`)
	if resp.StatusCode != 401 || !strings.Contains(string(body), "revoked") {
		t.Fatalf("revoked key: %d %s", resp.StatusCode, body)
	}
	if st, _ := admin("GET", "/admin/v1/keys/key_nope", ""); st != 404 {
		t.Fatalf("unknown key: %d", st)
	}
}

func TestAdminAPIOffWithoutToken(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{"IMAGEGW_ADMIN_TOKEN": ""}, Configure: nil})
	req, _ := http.NewRequest("GET", g.URL+"/admin/v1/keys", nil)
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("admin API answered %d without a configured token", resp.StatusCode)
	}
}

// TestMetricsExposed checks /metrics after real traffic: request, image, upstream, error and
// billing series with bounded labels, and no secret.
func TestMetricsExposed(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	post(t, g.URL+"/v1/images/generations", g.Key, `{"model":"sandbox-image","prompt":"x","n":2,"size":"64x64"}`)
	post(t, g.URL+"/v1/images/generations", g.Key, `{"model":"sandbox-image","prompt":"x [sandbox:fail=upstream_timeout]"}`)
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`imagegw_http_requests_total{method="POST",route="/v1/images/generations",status="200"} 1`,
		`imagegw_images_total{model="sandbox-image",operation="generate",provider="sandbox"} 2`,
		`imagegw_upstream_requests_total{channel="sandbox",provider="sandbox",result="ok"} 1`,
		`imagegw_upstream_requests_total{channel="sandbox",provider="sandbox",result="upstream_timeout"} 1`,
		`imagegw_errors_total{fault="provider",kind="upstream_timeout"} 1`,
		`imagegw_billing_cost_total{currency="USD",model="sandbox-image"} 0.02`,
		`imagegw_http_in_flight_requests`,
		`imagegw_usage_pending_events`, `imagegw_usage_journal_bytes`, `imagegw_billing_holds_open`,
		`imagegw_ratelimit_fallback_active`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, g.Key) {
		t.Fatal("/metrics holds a key")
	}
}
