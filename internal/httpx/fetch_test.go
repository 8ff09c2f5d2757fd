package httpx

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFetchOK(t *testing.T) {
	img := testPNG(t)
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain") // a lie: the type is sniffed
		w.Write(img)
	})
	f := NewFetcher(allowing(Options{}, s))
	data, ct, err := f.Fetch(context.Background(), s.URL+"/x.png?sig=abc&exp=1", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "image/png" || !bytes.Equal(data, img) {
		t.Errorf("got %s, %d bytes; want image/png, %d bytes", ct, len(data), len(img))
	}
}

func TestFetchErrors(t *testing.T) {
	img := testPNG(t)
	big := append(append([]byte{}, img...), make([]byte, 5000)...)
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html":
			io.WriteString(w, "<!doctype html><html><body>login</body></html>")
		case "/empty":
		case "/expired":
			http.Error(w, "expired", http.StatusForbidden)
		case "/big-declared":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		case "/big-chunked":
			for i := 0; i < len(big); i += 100 {
				w.Write(big[i:min(i+100, len(big))])
				w.(http.Flusher).Flush()
			}
		case "/exact":
			w.Write(big[:4096])
		case "/redirect-internal":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam", http.StatusFound)
		}
	})
	f := NewFetcher(allowing(Options{}, s))
	cases := []struct {
		path string
		want error
	}{
		{"/html", ErrNotImage},
		{"/empty", ErrNotImage},
		{"/expired?sig=SECRET", ErrUnexpectedStatus},
		{"/big-declared", ErrTooLarge},
		{"/big-chunked", ErrTooLarge},
		{"/redirect-internal", ErrBlockedAddress},
	}
	for _, tc := range cases {
		_, _, err := f.Fetch(context.Background(), s.URL+tc.path, 4096)
		if !errors.Is(err, tc.want) {
			t.Errorf("Fetch %s: %v, want %v", tc.path, err, tc.want)
		}
	}
	_, _, err := f.Fetch(context.Background(), s.URL+"/expired?sig=SECRET", 4096)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("status error = %#v (%v)", se, err)
	}
	if data, _, err := f.Fetch(context.Background(), s.URL+"/exact", 4096); err != nil || len(data) != 4096 {
		t.Errorf("a body of exactly the cap: %d bytes, %v", len(data), err)
	}
}

func TestFetchRefusesBeforeNetwork(t *testing.T) {
	f := NewFetcher(New(Options{}))
	for u, want := range map[string]error{
		"ftp://example.com/a.png":            ErrBlockedScheme,
		"file:///etc/passwd":                 ErrBlockedScheme,
		"javascript:alert(1)":                ErrBlockedScheme,
		"//example.com/a.png":                ErrBlockedScheme,
		"http://127.0.0.1:9/a.png":           ErrBlockedAddress,
		"http://169.254.169.254/latest/":     ErrBlockedAddress,
		"http://[::ffff:a9fe:a9fe]/latest/":  ErrBlockedAddress,
		"data:text/html;base64,PGgxPg==":     ErrBadDataURI,
		"DATA:image/png;base64,not*base64!!": ErrBadDataURI,
	} {
		_, _, err := f.Fetch(context.Background(), u, 1<<20)
		if !errors.Is(err, want) {
			t.Errorf("Fetch %s: %v, want %v", u, err, want)
		}
	}
	_, _, err := f.Fetch(context.Background(), "http://user:hunter2@127.0.0.1:9/a.png?X-Amz-Signature=SECRET", 1<<20)
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error leaks credentials or signature: %v", err)
	}
}

// rawServer answers every request with the bytes head+body written straight to the connection,
// and returns a client allowed to reach it and its URL.
func rawServer(t *testing.T, head string, body []byte) (*http.Client, string) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString(head)
		buf.Write(body)
		buf.Flush()
	})
	return allowing(Options{}, s), s.URL
}

func TestFetchContentLengthLies(t *testing.T) {
	img := testPNG(t)
	junk := append(append([]byte{}, img...), bytes.Repeat([]byte{0}, 1<<20)...)

	// Declares the PNG's length but sends 1 MB more: only the declared bytes are read.
	c, u := rawServer(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(img)), junk)
	data, ct, err := NewFetcher(c).Fetch(context.Background(), u, 4096)
	if err != nil || ct != "image/png" || !bytes.Equal(data, img) {
		t.Errorf("short Content-Length: %d bytes %s, %v", len(data), ct, err)
	}

	// Declares more than it sends: a truncated body is an error, not a short image.
	c, u = rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n", img)
	if _, _, err := NewFetcher(c).Fetch(context.Background(), u, 4096); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("long Content-Length: %v, want io.ErrUnexpectedEOF", err)
	}

	// No length at all, more than the cap: refused after reading cap+1 bytes.
	c, u = rawServer(t, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", junk)
	if _, _, err := NewFetcher(c).Fetch(context.Background(), u, 4096); !errors.Is(err, ErrTooLarge) {
		t.Errorf("no Content-Length: %v, want ErrTooLarge", err)
	}
}

type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestReadLimitedNeverReadsPastCap(t *testing.T) {
	for _, max := range []int64{0, 1, 511, 512, 4096, 100_000} {
		r := &countingReader{}
		if _, err := readLimited(r, -1, max); !errors.Is(err, ErrTooLarge) {
			t.Errorf("max %d: %v, want ErrTooLarge", max, err)
		}
		if r.n > max+1 {
			t.Errorf("max %d: read %d bytes, want at most %d", max, r.n, max+1)
		}
		r = &countingReader{}
		if b, err := readLimited(r, max, max); err != nil || int64(len(b)) != max || r.n != max {
			t.Errorf("max %d with Content-Length %d: %d bytes (read %d), %v", max, max, len(b), r.n, err)
		}
		r = &countingReader{}
		if _, err := readLimited(r, max+1, max); !errors.Is(err, ErrTooLarge) || r.n != 0 {
			t.Errorf("declared over the cap: read %d bytes, %v", r.n, err)
		}
	}
}

func TestFetchGzipBomb(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(testPNG(t))
	zw.Write(make([]byte, 4<<20))
	zw.Close()
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(z.Bytes())
	})
	_, _, err := NewFetcher(allowing(Options{}, s)).Fetch(context.Background(), s.URL, 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("a %d-byte gzip body inflating to 4 MB: %v, want ErrTooLarge", z.Len(), err)
	}
}

func TestFetchTimeoutAndCancel(t *testing.T) {
	img := testPNG(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		// Headers and half the body, then stall.
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		w.Write(img[:len(img)/2])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	f := NewFetcher(allowing(Options{}, s))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, _, err := f.Fetch(ctx, s.URL, 1<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled mid-body: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := f.Fetch(ctx, s.URL, 1<<20); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline mid-body: %v, want context.DeadlineExceeded", err)
	}
	start := time.Now()
	_, _, err := NewFetcher(allowing(Options{Timeout: 100 * time.Millisecond}, s)).Fetch(context.Background(), s.URL, 1<<20)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("client Timeout mid-body: %v after %v", err, time.Since(start))
	}
}
