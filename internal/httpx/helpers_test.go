package httpx

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
)

// testPNG returns a small valid PNG.
func testPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.NRGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// server starts an httptest server that is closed when the test ends.
func server(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// allowing returns a client that allows exactly the given servers' addresses.
func allowing(o Options, servers ...*httptest.Server) *http.Client {
	for _, s := range servers {
		o.AllowHosts = append(o.AllowHosts, s.Listener.Addr().String())
	}
	return New(o)
}

// noIPv6 reports whether err says the machine cannot open IPv6 sockets at all (then the
// dialer's control function never runs and IPv6 cases cannot be exercised end to end).
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT)
}
