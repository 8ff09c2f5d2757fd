package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	siliconflowfake "github.com/imagegw/imagegw/providers/siliconflow/fake"
)

// BenchmarkInFlightFootprint measures what one image request waiting on its upstream costs the
// process, the number limits.max_in_flight (server.DefaultMaxInFlight) is sized from. It holds
// 1000 requests in flight against the SiliconFlow fake (2 s latency), once direct to the fake and
// once through a whole gateway (internal/app), and reports heap (in use, and live after a GC),
// goroutine stacks and goroutines per in-flight request; the difference between the two is the
// gateway's own share.
//
//	go test -run '^$' -bench InFlightFootprint -benchtime 2x ./internal/server/
func BenchmarkInFlightFootprint(b *testing.B) {
	const inflight = 1000
	fake := httptest.NewServer(siliconflowfake.New(siliconflowfake.Options{Latency: 2 * time.Second}))
	defer fake.Close()
	g := gatewaytest.Start(b, gatewaytest.Options{Env: map[string]string{
		"SILICONFLOW_API_KEY": siliconflowfake.DefaultKey, "SILICONFLOW_BASE_URL": fake.URL + "/v1",
		"IMAGEGW_OUTBOUND_ALLOW_HOSTS": strings.TrimPrefix(fake.URL, "http://"), "IMAGEGW_SANDBOX": "false",
	}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inflight, MaxConnsPerHost: inflight}}
	defer client.CloseIdleConnections()

	run := func(b *testing.B, url, key, body string) {
		for b.Loop() {
			runtime.GC()
			var before, peak runtime.MemStats
			runtime.ReadMemStats(&before)
			g0 := runtime.NumGoroutine()
			var wg sync.WaitGroup
			for range inflight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest("POST", url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
					}
				}()
			}
			time.Sleep(1200 * time.Millisecond) // every request is waiting on the upstream
			runtime.ReadMemStats(&peak)
			g1 := runtime.NumGoroutine()
			var live runtime.MemStats // what the requests hold, without the garbage made so far
			runtime.GC()
			runtime.ReadMemStats(&live)
			wg.Wait()
			b.ReportMetric(float64(int64(peak.HeapInuse)-int64(before.HeapInuse))/inflight, "heapB/inflight")
			b.ReportMetric(float64(int64(live.HeapInuse)-int64(before.HeapInuse))/inflight, "liveB/inflight")
			b.ReportMetric(float64(int64(peak.StackInuse)-int64(before.StackInuse))/inflight, "stackB/inflight")
			b.ReportMetric(float64(g1-g0)/inflight, "goroutines/inflight")
		}
	}
	b.Run("direct", func(b *testing.B) {
		run(b, fake.URL+"/v1/images/generations", siliconflowfake.DefaultKey,
			`{"model":"black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","image_size":"512x1024"}`)
	})
	b.Run("gateway", func(b *testing.B) {
		run(b, g.URL+"/v1/images/generations", g.Key,
			`{"model":"siliconflow/black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","size":"512x1024"}`)
	})
}
