package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// BenchmarkLeanPath is the cost of the server's own layers on a real loopback connection with
// keep-alive: the listener and connection tracking, the request-body deadline and the
// middleware, on a GET without a body (healthz) and on a POST whose small JSON body the handler
// reads. Run it before and after a change to the server's plumbing:
//
//	go test -run '^$' -bench LeanPath -benchtime 20000x -count 6 ./internal/server/
func BenchmarkLeanPath(b *testing.B) {
	s := New(Options{Mount: func(r chi.Router) {
		r.Post("/v1/echo", func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			if n == 0 {
				w.WriteHeader(http.StatusBadRequest)
			}
			_, _ = w.Write([]byte(`{"ok":true}`))
		})
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	url := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	body := `{"model":"m","prompt":"` + strings.Repeat("a lighthouse ", 40) + `"}`

	do := func(b *testing.B, method, path, body string) {
		for b.Loop() {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, url+path, rd)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("healthz", func(b *testing.B) { do(b, http.MethodGet, "/healthz", "") })
	b.Run("post-body", func(b *testing.B) { do(b, http.MethodPost, "/v1/echo", body) })
}
