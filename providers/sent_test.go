package providers_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/providers"
)

// post sends a small JSON body to url with a watched context and classifies the failure as an
// adapter does.
func post(t *testing.T, client *http.Client, url string) *providers.Error {
	t.Helper()
	ctx := providers.WatchSend(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"prompt":"a fox"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatalf("POST %s succeeded", url)
	}
	return providers.TransportError(ctx, "p", err)
}

// TestTransportErrorTellsBeforeFromAfterSend: a refused connection, a DNS failure and a failed
// TLS handshake are failures before the request left (safe to send elsewhere); a connection
// reset or a body cut off after the request was written are AfterSend.
func TestTransportErrorTellsBeforeFromAfterSend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()

	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}))
	defer reset.Close()

	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte(`{"images":[`))
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		if conn != nil {
			conn.Close()
		}
	}))
	defer cut.Close()

	dnsFail := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "api.invalid", IsNotFound: true}}
	}}}

	for _, c := range []struct {
		name      string
		client    *http.Client
		url       string
		afterSend bool
	}{
		{"refused", http.DefaultClient, closed, false},
		{"dns", dnsFail, "http://api.invalid/v1", false},
		{"tls handshake", &http.Client{}, tlsSrv.URL, false},
		{"reset after the request", http.DefaultClient, reset.URL, true},
		{"body cut off", http.DefaultClient, cut.URL, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			pe := post(t, c.client, c.url)
			if pe.Kind != providers.KindUpstreamUnavailable || pe.AfterSend != c.afterSend {
				t.Fatalf("kind %s AfterSend %v, want upstream_unavailable and %v (%v)", pe.Kind, pe.AfterSend, c.afterSend, pe)
			}
		})
	}

	// Without a watch, only failures that end a call before sending are known to be before it.
	for _, c := range []struct {
		err       error
		afterSend bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{&net.DNSError{Err: "no such host"}, false},
		{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true},
		{io.ErrUnexpectedEOF, true},
	} {
		if pe := providers.TransportError(context.Background(), "p", c.err); pe.AfterSend != c.afterSend {
			t.Errorf("%v: AfterSend %v, want %v", c.err, pe.AfterSend, c.afterSend)
		}
	}
}
