package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const hostileKey = "sk-proj-Zx81mQe4LrT0vbN5sKp2WdYh"

func TestUpstreamText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Model does not exist. Please check it carefully.", "Model does not exist. Please check it carefully."},
		{"Incorrect API key provided: " + hostileKey + ".", "Incorrect API key provided: [redacted]."},
		{"Authorization: Bearer abc.def.ghi was refused", "Authorization: Bearer [redacted] was refused"},
		{`{"api_key":"hunter2hunter2"}`, `{"api_key":"[redacted]"}`},
		{"token=abc&x=1", "token=[redacted]&x=1"},
		{"another key sk-other-account-key here", "another key [redacted] here"},
		{"uuid key 0c7e8a52-4b1d-4f7a-9e3c-5d2b6a1f8e90 refused", "uuid key [redacted] refused"},
		{"base64 QWxhZGRpbjpvcGVuIHNlc2FtZQ2xvdWRz end", "base64 [redacted] end"},
		{"content_policy_violation_for_this_request_id stays", "content_policy_violation_for_this_request_id stays"},
		{"line\nbreak\tand\x00nul", "line break and nul"},
	} {
		if got := UpstreamText(tc.in, hostileKey); got != tc.want {
			t.Errorf("UpstreamText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("word ", 1000)
	if got := UpstreamText(long, ""); len(got) > MaxUpstreamText+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("a long text was not clipped: %d bytes", len(got))
	}
	// The secret URL-encoded.
	if got := UpstreamText("k="+url.QueryEscape("pass word+/=!"), "pass word+/=!"); got != "k=[redacted]" {
		t.Errorf("URL-encoded secret: %q", got)
	}
	// A short secret (below the redactor's minimum) is still removed when given explicitly.
	if got := UpstreamText("k=abc12 x", "abc12"); strings.Contains(got, "abc12") {
		t.Errorf("short secret kept: %q", got)
	}
}

func TestScrubError(t *testing.T) {
	e := &Error{Kind: KindInvalidRequest, Provider: "p", Message: "bad " + hostileKey, Param: hostileKey,
		Code: "x" + hostileKey, Err: errors.New("upstream said " + url.PathEscape(hostileKey))}
	err := ScrubError(e, hostileKey)
	if strings.Contains(err.Error(), hostileKey) || e.Param != "" || e.Code != "" || e.Message != "bad [redacted]" {
		t.Fatalf("after ScrubError: %+v (%v)", e, err)
	}
	// A clean error keeps its cause (errors.Is still works).
	clean := &Error{Kind: KindUpstreamTimeout, Message: "slow", Err: context.DeadlineExceeded}
	if err := ScrubError(clean, hostileKey); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a clean cause was replaced: %v", err)
	}
	if ScrubError(nil, hostileKey) != nil {
		t.Fatal("nil became an error")
	}
	plain := errors.New(hostileKey)
	if ScrubError(plain, hostileKey) != plain {
		t.Fatal("a non-*Error was changed")
	}
}

func TestRequestID(t *testing.T) {
	for v, want := range map[string]string{
		"req_8f7e6d5c4b3a":                     "req_8f7e6d5c4b3a",
		"b4a7b49c-203c-43c9-88ce-9e636e77ace8": "b4a7b49c-203c-43c9-88ce-9e636e77ace8",
		hostileKey:                             "",
		"id " + hostileKey:                     "",
		"not an id!":                           "",
		strings.Repeat("a", 129):               "",
	} {
		if got := RequestID(v, hostileKey); got != want {
			t.Errorf("RequestID(%q) = %q, want %q", v, got, want)
		}
	}
}

// redirectTarget is where a hostile upstream redirects to, counting the calls it gets.
func redirectTarget(t *testing.T) (*httptest.Server, *atomic.Int32) {
	hits := new(atomic.Int32)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"data":[{"url":"https://attacker.example/x.png"}]}`)
	}))
	t.Cleanup(target.Close)
	return target, hits
}

func TestCheckedClientsDoNotFollowRedirects(t *testing.T) {
	target, hits := redirectTarget(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/v1/images/generations", http.StatusTemporaryRedirect)
	}))
	defer origin.Close()

	base := &http.Client{}
	cfg, err := Config{APIKey: hostileKey, HTTP: base}.Check("test", origin.URL)
	if err != nil {
		t.Fatal(err)
	}
	if base.CheckRedirect != nil {
		t.Fatal("Check changed the caller's client")
	}
	ctx := context.Background()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, origin.URL+"/v1/images/generations", strings.NewReader(`{"prompt":"x"}`))
	req.Header.Set("Authorization", "Bearer "+hostileKey)
	_, err = cfg.HTTP.Do(req)
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("err = %v, want ErrRedirect", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect's target was called %d times", n)
	}
	e := TransportError(ctx, "test", err)
	if e.Kind != KindUpstreamBadResponse || strings.Contains(e.Error(), target.URL) || strings.Contains(e.Error(), hostileKey) {
		t.Fatalf("TransportError = %v (%s)", e, e.Kind)
	}
}

// TestSendDoesNotFollowRedirects: Send answers a redirect as the checked client's Do does (an
// ErrRedirect in a *url.Error, the target never called), whatever the client's own policy, and
// passes a 3xx without a Location through as the answer it is (as Do does).
func TestSendDoesNotFollowRedirects(t *testing.T) {
	target, hits := redirectTarget(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bare" {
			w.WriteHeader(http.StatusFound) // no Location: not a redirect to follow
			return
		}
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		http.Redirect(w, r, target.URL+"/v1/images/generations", code)
	}))
	defer origin.Close()

	ctx := context.Background()
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, c := range []*http.Client{{}, NoRedirects(&http.Client{})} { // a plain client would follow it
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, origin.URL+"/v1?code="+strconv.Itoa(code), strings.NewReader(`{"prompt":"x"}`))
			resp, err := Send(c, req)
			var ue *url.Error
			if resp != nil || !errors.Is(err, ErrRedirect) || !errors.As(err, &ue) || ue.Op != "Post" {
				t.Fatalf("%d: Send = %v, %v; want a *url.Error (Op Post) with ErrRedirect", code, resp, err)
			}
			if e := TransportError(ctx, "test", err); e.Kind != KindUpstreamBadResponse || strings.Contains(e.Error(), target.URL) {
				t.Fatalf("%d: TransportError = %v (%s)", code, e, e.Kind)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect's target was called %d times", n)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, origin.URL+"/bare", strings.NewReader(`{}`))
	resp, err := Send(&http.Client{}, req)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("a 302 without Location: %v, %v; want the answer", resp, err)
	}
	resp.Body.Close()

	// A refused connection comes back as Do reports it: a *url.Error naming the URL, no password.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, strings.Replace(deadURL, "http://", "http://user:secret@", 1)+"/v1", nil)
	_, err = Send(&http.Client{}, req)
	var ue *url.Error
	if !errors.As(err, &ue) || strings.Contains(err.Error(), "secret") || TransportError(ctx, "test", err).Kind != KindUpstreamUnavailable {
		t.Fatalf("a refused connection: %v", err)
	}
}

// TestNoRedirectsTimeout: the client's Timeout bounds each exchange, body included, whether the
// call's context has no deadline, a later one (the Timeout comes first) or an earlier one (which
// then bounds it alone).
func TestNoRedirectsTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "12345")
		w.(http.Flusher).Flush()
		select { // the rest of the body never comes
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer s.Close()
	c := NoRedirects(&http.Client{Timeout: 200 * time.Millisecond})
	for _, tc := range []struct {
		name     string
		deadline time.Duration // 0: none
		want     time.Duration
	}{{"no deadline", 0, 200 * time.Millisecond}, {"later deadline", time.Hour, 200 * time.Millisecond},
		{"earlier deadline", 50 * time.Millisecond, 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
			resp, err := c.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline", err)
			}
			if took < tc.want || took > tc.want+2*time.Second {
				t.Fatalf("the exchange took %v, want about %v", took, tc.want)
			}
		})
	}
}
