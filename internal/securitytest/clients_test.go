package securitytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/store"
)

// A client's request id is a label: five requests sending one id are five ledger events with
// five gateway ids, and another key reusing the id keeps its own event.
func TestClientRequestIDCannotMergeOrDropEvents(t *testing.T) {
	s := newSuite(t, options{})
	other := s.g.NewKey(t, &store.Key{Name: "other"})
	ids := map[string]bool{}
	for i := 0; i < 5; i++ {
		resp, body := s.generate("ok", "X-Request-Id", "dup-1")
		if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.01" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Client-Request-Id") != "dup-1" || resp.Header.Get("X-Request-Id") == "dup-1" {
			t.Fatalf("request %d: X-Request-Id %q, X-Client-Request-Id %q", i, resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Client-Request-Id"))
		}
		ids[resp.Header.Get("X-Request-Id")] = true
	}
	resp, body := s.post("/v1/images/generations", other, `{"model":"`+hostileModel+`","prompt":"ok"}`, "X-Client-Request-Id", "dup-1")
	if resp.StatusCode != 200 {
		t.Fatalf("other key: %d %s", resp.StatusCode, body)
	}
	if len(ids) != 5 {
		t.Fatalf("5 requests got %d distinct request ids", len(ids))
	}
	// A forged id that is not a plain token is not echoed (it could split headers or logs).
	resp, _ = s.generate("ok", "X-Request-Id", "a b\tc")
	if v := resp.Header.Get("X-Client-Request-Id"); v != "" {
		t.Errorf("a malformed client id was echoed: %q", v)
	}

	waitLedger(t, s, func(evs []store.UsageEvent) bool {
		n := 0
		for _, e := range evs {
			if e.ClientRequestID == "dup-1" {
				n++
			}
		}
		return n == 6
	})
}

// waitLedger polls the ledger until ok holds for it.
func waitLedger(t *testing.T, s *suite, ok func([]store.UsageEvent) bool) []store.UsageEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := s.g.App.Store.ListUsage(context.Background(), store.UsageFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ok(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, e := range evs {
				fmt.Fprintf(&b, "\n  %s client=%q key=%s %s cost=%s", e.RequestID, e.ClientRequestID, e.KeyID, e.Status, e.Cost)
			}
			t.Fatalf("the ledger never got there:%s", b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hostileBody is an endless-looking JSON body of n bytes: prefix, then filler.
// The transport may still be writing it after the response came back, so sent is atomic.
type hostileBody struct {
	prefix, filler string
	n, off         int64
	sent           atomic.Int64
}

func (b *hostileBody) Read(p []byte) (int, error) {
	if b.off >= b.n {
		return 0, io.EOF
	}
	i := 0
	for i < len(p) && b.off < b.n {
		if b.off < int64(len(b.prefix)) {
			p[i] = b.prefix[b.off]
		} else {
			p[i] = b.filler[(b.off-int64(len(b.prefix)))%int64(len(b.filler))]
		}
		i++
		b.off++
	}
	b.sent.Store(b.off)
	return i, nil
}

// heapPeak samples the live heap until stop is closed and returns the highest value seen.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return out
}

// Six concurrent 64 MB hostile JSON bodies cost the gateway a bounded amount of memory: on a
// key limited to one request at a time and one a minute they are turned away before their
// bodies are read; on an unlimited key each is refused at its first unknown field, or at the
// 256 KB cap of a value, without the rest being read.
func TestHostileBodiesStayCheap(t *testing.T) {
	s := newSuite(t, options{})
	limited := s.g.NewKey(t, &store.Key{Name: "limited", RPM: intp(1), Concurrency: intp(1)})
	const size = 64 << 20
	for _, tc := range []struct {
		name, key, prefix, filler string
		want                      []int
		// bound is what the heap may grow by, for all six together: a small fraction of one
		// body, or (for image references, which may legally be a 25 MB image each) a small
		// multiple of what one request may legally carry.
		bound int64
	}{
		{"unknown fields, limited key", limited, `{"model":"` + hostileModel + `","prompt":"ok",`, `"zzzzzzzz":1,`, []int{400, 429}, 16 << 20},
		{"unknown fields", "", `{"model":"` + hostileModel + `","prompt":"ok",`, `"zzzzzzzz":1,`, []int{400}, 16 << 20},
		{"one huge prompt", "", `{"model":"` + hostileModel + `","prompt":"`, "a", []int{413}, 16 << 20},
		{"one huge image reference", "", `{"model":"` + hostileModel + `","prompt":"x","image":"data:image/png;base64,`, "AAAA", []int{413}, 6 * 3 * 34 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			stop := make(chan struct{})
			peak := heapPeak(stop)
			var wg sync.WaitGroup
			var sent atomic.Int64
			statuses := make([]int, 6)
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := &hostileBody{prefix: tc.prefix, filler: tc.filler, n: size}
					req, _ := http.NewRequest("POST", s.g.URL+"/v1/images/generations", body)
					req.ContentLength = size
					req.Header.Set("Content-Type", "application/json")
					key := tc.key
					if key == "" {
						key = s.g.Key
					}
					req.Header.Set("Authorization", "Bearer "+key)
					resp, err := s.client.Do(req)
					sent.Add(body.sent.Load())
					if err != nil {
						statuses[i] = -1 // the server closed the connection after answering
						return
					}
					statuses[i] = resp.StatusCode
					resp.Body.Close()
				}()
			}
			wg.Wait()
			close(stop)
			grew := int64(<-peak) - int64(before.HeapInuse)
			t.Logf("6 × 64 MB: statuses %v, %d MB sent by the clients, heap grew by at most %.1f MB", statuses, sent.Load()>>20, float64(grew)/(1<<20))
			if grew > tc.bound {
				t.Errorf("the heap grew by %d MB, want under %d MB", grew>>20, tc.bound>>20)
			}
			for _, st := range statuses {
				ok := st == -1
				for _, w := range tc.want {
					ok = ok || st == w
				}
				if !ok {
					t.Errorf("status %d, want one of %v", st, tc.want)
				}
			}
		})
	}
}

func intp(v int) *int { return &v }
