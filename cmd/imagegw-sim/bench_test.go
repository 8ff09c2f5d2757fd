package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	siliconflowfake "github.com/imagegw/imagegw/providers/siliconflow/fake"
)

// The gateway's overhead, measured in one run against the same upstream (the SiliconFlow fake
// in the simulator) three ways: direct to the upstream, through a bare httputil.ReverseProxy, and
// through the gateway (auth, validation, translation, metering, response encoding).
//
//	go test -run '^$' -bench . -benchmem ./cmd/imagegw-sim/

func benchPost(b *testing.B, client *http.Client, target, key, body string) {
	b.Helper()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", target, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkOverhead(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sim := &http.Server{Handler: Handler("http://"+ln.Addr().String(), 0)}
	go sim.Serve(ln)
	defer sim.Close()
	env := map[string]string{}
	for _, kv := range Env(ln.Addr().String()) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	g := gatewaytest.Start(b, gatewaytest.Options{Env: env})
	upstream, _ := url.Parse("http://" + ln.Addr().String())
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(upstream))
	defer proxy.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

	native := `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","image_size":"512x1024"}`
	b.Run("direct", func(b *testing.B) {
		benchPost(b, client, "http://"+ln.Addr().String()+"/siliconflow/v1/images/generations", siliconflowfake.DefaultKey, native)
	})
	b.Run("reverseproxy", func(b *testing.B) {
		benchPost(b, client, proxy.URL+"/siliconflow/v1/images/generations", siliconflowfake.DefaultKey, native)
	})
	b.Run("gateway-url", func(b *testing.B) {
		benchPost(b, client, g.URL+"/v1/images/generations", g.Key,
			`{"model":"siliconflow/black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","size":"512x1024"}`)
	})
	b.Run("gateway-b64", func(b *testing.B) {
		benchPost(b, client, g.URL+"/v1/images/generations", g.Key,
			`{"model":"siliconflow/black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","size":"512x1024","response_format":"b64_json"}`)
	})
}
