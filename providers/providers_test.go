package providers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

type stub struct{ name string }

func (s stub) Name() string                                        { return s.name }
func (s stub) Models() []Model                                     { return nil }
func (s stub) Generate(context.Context, *Request) (*Result, error) { return &Result{}, nil }

func TestRegistry(t *testing.T) {
	Register("test-stub", func(c Config) (Provider, error) { return stub{c.Name}, nil })
	defer func() {
		if recover() == nil {
			t.Fatal("a second registration under one name did not panic")
		}
	}()
	p, err := New("test-stub", Config{})
	if err != nil || p.Name() != "test-stub" {
		t.Fatalf("New: %v %v", p, err)
	}
	if _, err := New("no-such", Config{}); err == nil || !strings.Contains(err.Error(), `unknown provider "no-such"`) {
		t.Fatalf("unknown provider: %v", err)
	}
	Register("test-stub", func(Config) (Provider, error) { return nil, nil })
}

func TestDoRefusesWhatTheProviderLacks(t *testing.T) {
	_, err := Do(context.Background(), stub{"s"}, &Request{Operation: OpUpscale})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindUnsupported || pe.Param != "model" {
		t.Fatalf("got %v", err)
	}
	if Supports(stub{}, OpEdit) || !Supports(stub{}, OpGenerate) || len(OperationsOf(stub{})) != 1 {
		t.Fatal("Supports is wrong")
	}
}

func TestConfigCheck(t *testing.T) {
	c, err := Config{APIKey: "sk-secret"}.Check("yunyx", "https://api.example.com/v1")
	if err != nil || c.Name != "yunyx" || c.BaseURL != "https://api.example.com/v1" || c.HTTP == nil || c.Logger == nil {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "an API key is required (OPENAI_COMPATIBLE_API_KEY)"},
		{Config{APIKey: "sk-secret", Options: map[string]string{"x": "1"}}, `unknown option "x" (known: layout)`},
		{Config{APIKey: "sk-secret", BaseURL: "ftp://user:sk-secret@h/"}, "not an absolute http(s) URL"},
	} {
		_, err := tc.cfg.Check("openai-compatible", "", "layout")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "sk-secret") {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for s, k := range map[int]Kind{401: KindUpstreamAuth, 403: KindUpstreamAuth, 429: KindUpstreamRateLimited, 504: KindUpstreamTimeout,
		408: KindUpstreamTimeout, 500: KindUpstreamUnavailable, 503: KindUpstreamUnavailable, 400: KindInvalidRequest, 404: KindModelNotFound, 302: KindUpstreamBadResponse} {
		if got := StatusKind(s); got != k {
			t.Errorf("StatusKind(%d) = %s, want %s", s, got, k)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if e := TransportError(ctx, "p", context.Canceled); e.Kind != KindCanceled {
		t.Fatal(e)
	}
	dl, cancel2 := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel2()
	<-dl.Done()
	if e := TransportError(dl, "p", errors.New("read: i/o timeout")); e.Kind != KindUpstreamTimeout {
		t.Fatal(e)
	}
	if e := TransportError(context.Background(), "p", errors.New("connection reset")); e.Kind != KindUpstreamUnavailable || e.Kind.Fault() != FaultProvider {
		t.Fatal(e)
	}
	if KindOf(errors.New("x")) != KindInternal || KindContentPolicy.Fault() != FaultCaller || KindQuotaExceeded.Fault() != FaultPolicy {
		t.Fatal("fault groups are wrong")
	}
	for v, want := range map[string]time.Duration{
		"7": 7 * time.Second, "": 0, "-3": 0, "soon": 0, " 12 ": 12 * time.Second,
		// A hostile upstream's waits are clamped, never overflowed.
		"1000000000": MaxRetryAfter, "9223372036": MaxRetryAfter, "99999999999999999999999": MaxRetryAfter,
		time.Now().Add(1000 * time.Hour).UTC().Format(http.TimeFormat): MaxRetryAfter,
	} {
		if got := ParseRetryAfter(http.Header{"Retry-After": {v}}); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
}

func TestParseSizeAndParams(t *testing.T) {
	if s, err := ParseSize(" 1024X768 "); err != nil || s != (Size{1024, 768}) {
		t.Fatalf("%v %v", s, err)
	}
	for _, bad := range []string{"", "x", "0x1", "-1x5", "axb", "1x"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	p, err := ParseParams([]string{"seed", "negative_prompt"})
	if err != nil || !p.Has(ParamSeed|ParamNegativePrompt) || p.Has(ParamSteps) || strings.Join(p.Names(), ",") != "negative_prompt,seed" {
		t.Fatalf("%v %v", p.Names(), err)
	}
	if _, err := ParseParams([]string{"colour"}); err == nil {
		t.Fatal("unknown param accepted")
	}
}
