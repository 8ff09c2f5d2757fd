package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/benchcpu"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/store"
)

// BenchmarkLeanGenerate is one image generation through the whole gateway in its lean setup
// (SQLite, no budget, in-process limiter, the access log on), against a minimal
// OpenAI-compatible upstream answering with a 1 KB b64_json PNG, as imagegw-load's lean setup
// is built. "handler" calls the server's root handler directly (the gateway's own work and its
// upstream call); "loopback" goes through a real keep-alive connection. allocs/op counts the
// whole process (the upstream's and the client's allocations too, which do not change), and so
// do user-µs/op and cpu-µs/op (the process's CPU time per request: ns/op is mostly the usage
// journal's fsync, a wait rather than work).
//
//	go test -run '^$' -bench LeanGenerate -benchmem -count 6 ./internal/app/
func BenchmarkLeanGenerate(b *testing.B) {
	up := httptest.NewServer(minimalUpstream(b, 1024))
	defer up.Close()
	host := strings.TrimPrefix(up.URL, "http://")
	vars := map[string]string{
		"IMAGEGW_ADDR":                 "127.0.0.1:0",
		"IMAGEGW_DATA_DIR":             b.TempDir(),
		"IMAGEGW_SANDBOX":              "false",
		"OPENAI_COMPATIBLE_API_KEY":    benchUpstreamKey,
		"OPENAI_COMPATIBLE_BASE_URL":   up.URL + "/v1",
		"IMAGEGW_OUTBOUND_ALLOW_HOSTS": host,
	}
	c, err := config.Load("", func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	c.Limits.MaxInFlight = 6000
	for i := range c.Providers {
		c.Providers[i].Models = []string{"flux-schnell"}
	}
	c.Models = append(c.Models, config.ModelConfig{Target: "openai-compatible/flux-schnell",
		Price: &config.Price{Unit: "image", Currency: c.Billing.Currency, Amount: "0.001"}})
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	log, err := app.NewLoggerTo(c.Log, zapcore.AddSync(io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, c, log)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	secret, err := auth.Create(ctx, a.Store, &store.Key{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"model":"openai-compatible/flux-schnell","prompt":"a lighthouse","size":"512x512","response_format":"b64_json"}`

	b.Run("handler", func(b *testing.B) {
		h := a.Server.Handler()
		b.ReportAllocs()
		b.SetParallelism(16) // the usage journal commits in groups
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest("POST", "/v1/images/generations", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
		})
	})

	b.Run("loopback", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- a.Server.Serve(sctx, ln) }()
		defer func() { stop(); <-served }()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		url := "http://" + ln.Addr().String() + "/v1/images/generations"
		b.ReportAllocs()
		b.SetParallelism(16)
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("POST", url, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+secret)
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
					return
				}
			}
		})
	})
}

// reportCPU starts measuring the process's CPU time; the function it returns reports it per
// operation: user-µs/op in user space (the Go code: steadier), cpu-µs/op with the kernel's
// time added (syscalls, the journal's fsyncs among them).
func reportCPU(b *testing.B) func() {
	b.ResetTimer()
	start := benchcpu.Now()
	return func() {
		b.StopTimer()
		if user, total := benchcpu.Since(start); user > 0 && b.N > 0 {
			b.ReportMetric(float64(user.Microseconds())/float64(b.N), "user-µs/op")
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
}

const benchUpstreamKey = "sk-bench-upstream"

// minimalUpstream answers every images request with one precomputed b64_json PNG of about n
// bytes, doing as little as it can (imagegw-load's fake upstream, in short).
func minimalUpstream(b *testing.B, n int) http.Handler {
	side := 1
	for (side+1)*(side+1)*3 < n {
		side++
	}
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 131)
	}
	var p bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		b.Fatal(err)
	}
	answer, _ := json.Marshal(map[string]any{"created": 1700000000,
		"data": []map[string]string{{"b64_json": base64.StdEncoding.EncodeToString(p.Bytes())}}})
	length := strconv.Itoa(len(answer))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+benchUpstreamKey {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		_, _ = w.Write(answer)
	})
}
