package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/iouring"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

const stackChildEnv = "IMAGEGW_TEST_STACK_CHILD"

// TestRequestFitsInAGoroutinesFirstStack: an image request, from its connection's goroutine
// through authentication, admission, the journal, the upstream call and its wait, the answer's
// decoding, billing and the response, never needs more than the 8 KB stack a goroutine starts
// with. Past it, the runtime doubles the stack to 16 KB, and the connection's goroutine keeps
// 16 KB for every request in flight (40 MB more at 5,000 in flight, and as much again in the
// GC's heap goal; see the in-flight scenario of cmd/imagegw-load).
//
// The gateway runs in a child process (the upstream fake in this one) with
// debug.SetMaxStack(8 KB) once it is warm: a goroutine whose stack would grow past that crashes
// the child with the traceback of the call that did not fit, each frame with its sp and fp.
// Frames grow in a change without anyone noticing; this is where it shows. Keep what a request
// does after its upstream answered (and anything rare) in functions of their own, out of the
// line of the frames it waits in.
func TestRequestFitsInAGoroutinesFirstStack(t *testing.T) {
	if raceBuild {
		t.Skip("the race detector makes every frame larger: this runs without it (make test does)")
	}
	if urls := strings.Fields(os.Getenv(stackChildEnv)); len(urls) == 2 {
		stackChild(t, urls[0], urls[1])
		return
	}
	oa := httptest.NewServer(fake.New(fake.Options{}))
	defer oa.Close()
	compat := httptest.NewServer(fake.NewCompatible(fake.Options{}))
	defer compat.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRequestFitsInAGoroutinesFirstStack$", "-test.v", "-test.count=1")
	// gcshrinkstackoff: the long-lived goroutines, grown in the warm-up, keep their stacks (the GC
	// would halve an idle one, and its next deep call would then grow it past the limit).
	cmd.Env = append(os.Environ(), stackChildEnv+"="+oa.URL+" "+compat.URL, "GODEBUG=gcshrinkstackoff=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the gateway's requests do not fit an 8 KB stack (%v); the goroutine that overflowed:\n%s", err, overflowed(out))
	}
	if !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the child ran no test:\n%s", out)
	}
}

func stackChild(t *testing.T, oa, compat string) {
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		for _, u := range []string{oa, compat} {
			c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, strings.TrimPrefix(u, "http://"))
		}
		c.Providers = append(c.Providers,
			config.ChannelConfig{Name: "oa", Type: "openai", BaseURL: oa + "/v1", APIKey: config.Secret(fake.DefaultKey)},
			config.ChannelConfig{Name: "compat", Type: "openai-compatible", BaseURL: compat + "/v1", APIKey: config.Secret(fake.DefaultCompatibleKey)})
		c.Models = append(c.Models, config.ModelConfig{Target: "compat/dall-e-3",
			Price: &config.Price{Unit: "image", Currency: c.Billing.Currency, Amount: "0.004"}})
	}})
	// Requests as users send them: OpenAI's price tiers by size and quality (dall-e-3), a size
	// the upstream chooses and reports, billed at what it made (gpt-image-1 "auto"), a channel
	// priced in config, and hosted images (url) besides base64.
	bodies := []string{
		`{"model":"oa/dall-e-3","prompt":"a lighthouse","size":"1024x1792","quality":"hd","response_format":"b64_json"}`,
		`{"model":"oa/gpt-image-1","prompt":"a lighthouse","size":"auto","quality":"auto"}`,
		`{"model":"compat/dall-e-3","prompt":"a lighthouse","size":"1024x1024","response_format":"b64_json"}`,
		`{"model":"compat/dall-e-3","prompt":"a lighthouse","size":"1024x1024","response_format":"url"}`,
	}
	// New connections for the warm-up, whose goroutines end with them: every long-lived
	// goroutine of the gateway (the ledger's writer, the journal's filler) has its stack grown
	// before the limit is set, and every connection after it starts with a new one.
	warm := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	generate := func(c *http.Client, body string) error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, g.URL+"/v1/images/generations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+g.Key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Imagegw-Cost") == "" || resp.Header.Get("X-Imagegw-Cost") == "0" {
			return fmt.Errorf("%s: %d %q %s", body, resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), b)
		}
		return nil
	}
	for _, body := range bodies {
		if err := generate(warm, body); err != nil {
			t.Fatal(err)
		}
	}
	// The ledger's writer inserts the warm-up's charges, down into SQLite, before the limit.
	if err := g.App.Recorder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := debug.SetMaxStack(8 << 10)
	defer debug.SetMaxStack(old)
	for _, body := range bodies {
		for range 2 { // one at a time: each charge's own fsync
			if err := generate(client, body); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup // together: charges waiting on another's fsync
		errs := make(chan error, 6)
		for range 6 {
			wg.Go(func() { errs <- generate(client, body) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Bursts until the journal is busy (an fsync covered several charges), so that a charge's
	// fsync goes through io_uring and its leader waits in the poller: a deeper path than
	// fdatasync's, taken only under load.
	r, err := iouring.New()
	if err != nil {
		if runtime.GOOS == "linux" && os.Getenv("CI") == "true" { // CI's kernel has it: a failing New is a bug
			t.Fatalf("io_uring unavailable on CI's Linux: %v", err)
		}
		t.Logf("no io_uring here (%v): the journal's busy path is fdatasync, as above", err)
		return
	}
	_ = r.Close()
	for round := 0; ringFsyncs(t, g) == 0; round++ {
		if round == 50 {
			t.Fatal("50 bursts of 32 requests and no fsync through io_uring: the journal never counted as busy")
		}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 32 {
			wg.Go(func() { errs <- generate(client, bodies[2]) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ringFsyncs reads imagegw_usage_journal_ring_fsyncs_total from the gateway's registry, between
// bursts, without the stack limit (a Gather runs collectors on goroutines of its own, and the
// process collector's frames alone are 4 KB).
func ringFsyncs(t *testing.T, g *gatewaytest.Gateway) float64 {
	defer debug.SetMaxStack(debug.SetMaxStack(1 << 30))
	mfs, err := g.App.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "imagegw_usage_journal_ring_fsyncs_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no imagegw_usage_journal_ring_fsyncs_total in the registry")
	return 0
}

// overflowed is the part of a crashed child's output that says what overflowed: the runtime's
// message and the goroutine that was running, with each frame's size (fp - sp).
func overflowed(out []byte) string {
	s := string(out)
	i := strings.Index(s, "runtime: goroutine stack exceeds")
	if i < 0 {
		return s
	}
	s = s[i:]
	if j := strings.Index(s, "\n\ngoroutine "); j > 0 {
		if k := strings.Index(s[j+2:], "\n\n"); k > 0 {
			s = s[:j+2+k]
		}
	}
	frame := regexp.MustCompile(`fp=0x([0-9a-f]+) sp=0x([0-9a-f]+)`)
	return frame.ReplaceAllStringFunc(s, func(m string) string {
		var fp, sp uint64
		p := frame.FindStringSubmatch(m)
		fmt.Sscanf(p[1], "%x", &fp)
		fmt.Sscanf(p[2], "%x", &sp)
		return fmt.Sprintf("%s (frame %d bytes)", m, fp-sp)
	})
}
