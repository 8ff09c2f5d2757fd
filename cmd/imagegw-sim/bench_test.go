package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

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

// BenchmarkInFlightMemory holds 400 requests in flight at once (the upstream takes 1 s each) and
// reports the heap and goroutines per in-flight request, gateway and simulator together.
func BenchmarkInFlightMemory(b *testing.B) {
	const inflight = 400
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sim := &http.Server{Handler: Handler("http://"+ln.Addr().String(), time.Second)}
	go sim.Serve(ln)
	defer sim.Close()
	env := map[string]string{}
	for _, kv := range Env(ln.Addr().String()) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	g := gatewaytest.Start(b, gatewaytest.Options{Env: env})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inflight, MaxConnsPerHost: inflight}}
	body := `{"model":"siliconflow/black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","size":"512x1024"}`
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, peak runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var wg sync.WaitGroup
		for j := 0; j < inflight; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", g.URL+"/v1/images/generations", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+g.Key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		time.Sleep(600 * time.Millisecond) // all requests are waiting on the upstream
		runtime.ReadMemStats(&peak)
		g1 := runtime.NumGoroutine()
		wg.Wait()
		b.ReportMetric(float64(peak.HeapInuse-before.HeapInuse)/inflight, "heapB/inflight")
		b.ReportMetric(float64(g1-g0)/inflight, "goroutines/inflight")
	}
}
