package providertest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// Harness is what the conformance suite needs from an adapter's test.
type Harness struct {
	// Provider is the adapter under test, configured against its fake. Its channel's
	// MaxResponseBytes must be MaxResponseBytes below (the suite sends a bigger body).
	Provider providers.Provider
	// Script is the fault script wrapping the fake's handler.
	Script *Script
	// Request returns a fresh valid request the fake answers successfully.
	Request func() *providers.Request
	// Secret is the API key the provider was configured with; it must appear in no error.
	Secret string
	// MaxResponseBytes is the provider's configured response cap.
	MaxResponseBytes int64
	// Faults are the provider's own error catalogue: scripted upstream answers and the kind each
	// must become (for example SiliconFlow's bare-string 401 → KindUpstreamAuth).
	Faults []FaultCase
	// Logs, when set, is what the provider's logger wrote (see NewLogs); the suite checks that
	// no secret reached it.
	Logs *Logs
}

// FaultCase is one scripted upstream failure and the kind the adapter must report.
type FaultCase struct {
	Name  string
	Fault Fault
	Kind  providers.Kind
	// RetryAfter, when set, is the wait the error must carry.
	RetryAfter time.Duration
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Provider == nil || h.Script == nil || h.Request == nil {
		t.Fatal("providertest: Harness needs Provider, Script and Request")
	}
	call := func(ctx context.Context) (*providers.Result, error) {
		req := h.Request()
		res, err := providers.Do(ctx, h.Provider, req)
		// An adapter only reads its request: the front door lends it its own (see Provider).
		if want := h.Request(); !reflect.DeepEqual(req, want) {
			t.Errorf("the adapter changed its request: %+v, was %+v", *req, *want)
		}
		return res, err
	}
	var seen []error
	check := func(t *testing.T, err error, want ...providers.Kind) {
		t.Helper()
		if err == nil {
			t.Fatalf("want an error of kind %v, got success", want)
		}
		seen = append(seen, err)
		var pe *providers.Error
		if !errors.As(err, &pe) {
			t.Fatalf("error is not a *providers.Error: %T %v", err, err)
		}
		for _, k := range want {
			if pe.Kind == k {
				return
			}
		}
		t.Fatalf("error kind = %s, want one of %v (error: %v)", pe.Kind, want, err)
	}

	t.Run("success", func(t *testing.T) {
		h.Script.Clear()
		res, err := call(context.Background())
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		if len(res.Images) == 0 && len(res.Descriptions) == 0 {
			t.Fatal("success carried no image")
		}
		for i, im := range res.Images {
			if !im.HasBytes() && im.URL == "" {
				t.Fatalf("image %d has neither bytes nor a URL", i)
			}
		}
	})

	t.Run("cancellation", func(t *testing.T) {
		h.Script.Clear()
		h.Script.Push(Fault{Delay: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := call(ctx)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("a canceled call took %v to return", d)
		}
		check(t, err, providers.KindCanceled)
	})

	t.Run("deadline", func(t *testing.T) {
		h.Script.Clear()
		h.Script.Push(Fault{Delay: 10 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := call(ctx)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("a call past its deadline took %v to return", d)
		}
		check(t, err, providers.KindUpstreamTimeout)
	})

	t.Run("slow drip past the deadline", func(t *testing.T) {
		h.Script.Clear()
		h.Script.Push(Fault{Drip: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := call(ctx)
		check(t, err, providers.KindUpstreamTimeout)
	})

	generic := []FaultCase{
		{Name: "html 502 page", Fault: Fault{HTML: true, Status: 502}, Kind: providers.KindUpstreamUnavailable},
		{Name: "empty 503", Fault: Fault{Status: 503, ContentType: "text/plain"}, Kind: providers.KindUpstreamUnavailable},
		{Name: "429 with retry-after", Fault: Fault{Status: 429, Body: "{}", Header: http.Header{"Retry-After": {"7"}}}, Kind: providers.KindUpstreamRateLimited, RetryAfter: 7 * time.Second},
		{Name: "malformed json", Fault: Fault{Malformed: true}, Kind: providers.KindUpstreamBadResponse},
		{Name: "huge body", Fault: Fault{Huge: max(h.MaxResponseBytes, 1<<20) + 1<<20}, Kind: providers.KindUpstreamBadResponse},
	}
	for _, fc := range append(generic, h.Faults...) {
		t.Run(fc.Name, func(t *testing.T) {
			h.Script.Clear()
			h.Script.Push(fc.Fault)
			_, err := call(context.Background())
			check(t, err, fc.Kind)
			var pe *providers.Error
			errors.As(err, &pe)
			if fc.RetryAfter > 0 && pe.RetryAfter != fc.RetryAfter {
				t.Fatalf("RetryAfter = %v, want %v", pe.RetryAfter, fc.RetryAfter)
			}
			if fc.Fault.Body != "" && len(fc.Fault.Body) > 12 && strings.Contains(pe.Message, fc.Fault.Body) {
				t.Fatalf("the upstream body reached the client-facing message: %q", pe.Message)
			}
			if strings.Contains(strings.ToLower(pe.Message), "<html") {
				t.Fatalf("an HTML page reached the client-facing message: %q", pe.Message)
			}
		})
	}

	t.Run("hostile upstream echoes the key", func(t *testing.T) {
		if h.Secret == "" {
			t.Skip("no secret configured")
		}
		for _, f := range EchoFaults(h.Secret) {
			h.Script.Clear()
			h.Script.Push(f)
			_, err := call(context.Background())
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("HTTP %d %s %s: want a *providers.Error, got %T %v", f.Status, f.ContentType, f.Body, err, err)
			}
			seen = append(seen, err)
			for field, v := range map[string]string{"Error()": err.Error(), "Message": pe.Message, "Param": pe.Param, "Code": pe.Code} {
				if Leaks(v, h.Secret) {
					t.Errorf("HTTP %d %s %s: the key reached the error's %s: %q", f.Status, f.ContentType, f.Body, field, v)
				}
			}
			if pe.Message == "" {
				t.Errorf("HTTP %d %s %s: no client-facing message", f.Status, f.ContentType, f.Body)
			}
		}
	})

	t.Run("redirects are not followed", func(t *testing.T) {
		var hits atomic.Int32
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"created":1,"data":[{"url":"https://attacker.example/x.png"}],"images":[{"url":"https://attacker.example/x.png"}]}`)
		}))
		defer target.Close()
		location := target.URL + "/v1/images/generations?key=" + url.QueryEscape(h.Secret)
		for _, status := range []int{301, 302, 303, 307, 308} {
			h.Script.Clear()
			h.Script.Push(Fault{Status: status, Body: `{}`, Header: http.Header{"Location": {location}}})
			_, err := call(context.Background())
			check(t, err, providers.KindUpstreamBadResponse)
			if strings.Contains(err.Error(), target.Listener.Addr().String()) {
				t.Errorf("HTTP %d: the redirect's target reached the error: %v", status, err)
			}
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("the redirect's target was called %d times", n)
		}
	})

	t.Run("truncated body", func(t *testing.T) {
		h.Script.Clear()
		h.Script.Push(Fault{Truncate: true})
		_, err := call(context.Background())
		check(t, err, providers.KindUpstreamBadResponse, providers.KindUpstreamUnavailable)
		// The fake read the whole request and began its answer: the upstream may have made the
		// images, so the call must not look like one that never left (no failover).
		var pe *providers.Error
		if errors.As(err, &pe) && pe.Kind == providers.KindUpstreamUnavailable && !pe.AfterSend {
			t.Fatalf("a body cut off after the request was sent is not AfterSend: %v", err)
		}
	})

	t.Run("connection reset", func(t *testing.T) {
		h.Script.Clear()
		h.Script.Push(Fault{Reset: true})
		_, err := call(context.Background())
		check(t, err, providers.KindUpstreamUnavailable)
	})

	t.Run("recovers after faults", func(t *testing.T) {
		h.Script.Clear()
		if _, err := call(context.Background()); err != nil {
			t.Fatalf("request after the fault script failed: %v", err)
		}
	})

	t.Run("no secret in any error", func(t *testing.T) {
		if h.Secret == "" {
			t.Skip("no secret configured")
		}
		for _, err := range seen {
			var pe *providers.Error
			if Leaks(err.Error(), h.Secret) || (errors.As(err, &pe) && Leaks(pe.Message+pe.Param+pe.Code, h.Secret)) {
				t.Fatalf("an error contains the upstream secret: %v", err)
			}
		}
		if h.Logs != nil {
			for _, line := range strings.Split(h.Logs.String(), "\n") {
				if Leaks(line, h.Secret) {
					t.Fatalf("a log line contains the upstream secret: %s", line)
				}
			}
		}
	})
}
