package faultproxy_test

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/faultproxy"
)

// echoServer is a line echo server; it counts the bytes it received.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	bytes atomic.Int64
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						s.bytes.Add(int64(n))
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func start(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func setMode(t *testing.T, p *faultproxy.Proxy, m faultproxy.Mode) {
	t.Helper()
	if err := p.SetMode(m); err != nil {
		t.Fatalf("SetMode(%v): %v", m, err)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back within d.
func roundTrip(c net.Conn, msg string, d time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// dialRoundTrip connects and sends one byte. A reset can come so fast that the connect
// already reports it, so either step may fail.
func dialRoundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = roundTrip(c, "x", 2*time.Second)
	return err
}

func mustEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got, err := roundTrip(c, msg, 2*time.Second)
	if err != nil || got != msg {
		t.Fatalf("echo %q: got %q, %v", msg, got, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitGoroutines waits until the goroutine count is back to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPass(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	c := dial(t, p.Addr())
	mustEcho(t, c, "hello\n")
	mustEcho(t, c, "again\n")
	if p.Conns() != 1 || p.Accepted() != 1 {
		t.Fatalf("Conns=%d Accepted=%d, want 1 and 1", p.Conns(), p.Accepted())
	}
	if p.Mode() != faultproxy.Pass || p.Target() != e.addr() {
		t.Fatalf("Mode=%v Target=%s", p.Mode(), p.Target())
	}
}

func TestRefuse(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	old := dial(t, p.Addr())
	mustEcho(t, old, "before\n")

	setMode(t, p, faultproxy.Refuse)
	_, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: %v, want connection refused", err)
	}
	// Existing connections are not touched by Refuse.
	mustEcho(t, old, "still\n")

	setMode(t, p, faultproxy.Pass)
	c := dial(t, p.Addr())
	mustEcho(t, c, "after\n")
}

func TestReset(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	old := dial(t, p.Addr())
	mustEcho(t, old, "before\n")

	setMode(t, p, faultproxy.Reset)
	if _, err := roundTrip(old, "x", 2*time.Second); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("existing connection after Reset: %v, want a reset", err)
	}
	// New connections are accepted and reset at once.
	if err := dialRoundTrip(p.Addr()); err == nil || isTimeout(err) {
		t.Fatalf("new connection during Reset: %v, want a reset", err)
	}
	if p.Conns() != 0 {
		t.Fatalf("Conns=%d during Reset", p.Conns())
	}

	setMode(t, p, faultproxy.Pass)
	mustEcho(t, dial(t, p.Addr()), "after\n")
}

func TestBlackhole(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	old := dial(t, p.Addr())
	mustEcho(t, old, "before\n")
	before := e.bytes.Load()

	setMode(t, p, faultproxy.Blackhole)
	if _, err := roundTrip(old, "held\n", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("existing connection in Blackhole: %v, want a timeout", err)
	}
	// New connections are accepted but get nothing either.
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "new\n", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection in Blackhole: %v, want a timeout", err)
	}
	if got := e.bytes.Load(); got != before {
		t.Fatalf("server received %d bytes during the partition", got-before)
	}

	// Healing delivers what was held, on both connections.
	setMode(t, p, faultproxy.Pass)
	for _, cc := range []struct {
		c   net.Conn
		msg string
	}{{old, "held\n"}, {c, "new\n"}} {
		_ = cc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(cc.c).ReadString('\n')
		if err != nil || line != cc.msg {
			t.Fatalf("after heal: %q, %v; want %q", line, err, cc.msg)
		}
		mustEcho(t, cc.c, "more\n")
	}
}

func TestBlackholeThenCut(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	old := dial(t, p.Addr())
	mustEcho(t, old, "before\n")
	setMode(t, p, faultproxy.Blackhole)
	p.CutExisting()
	if _, err := roundTrip(old, "x", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("after CutExisting: %v, want a reset", err)
	}
	setMode(t, p, faultproxy.Pass)
	mustEcho(t, dial(t, p.Addr()), "after\n")
}

func TestCutExisting(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	mustEcho(t, a, "a\n")
	mustEcho(t, b, "b\n")
	p.CutExisting()
	for _, c := range []net.Conn{a, b} {
		if _, err := roundTrip(c, "x", 2*time.Second); err == nil || isTimeout(err) {
			t.Fatalf("after CutExisting: %v, want a reset", err)
		}
	}
	if p.Mode() != faultproxy.Pass {
		t.Fatalf("mode changed to %v", p.Mode())
	}
	mustEcho(t, dial(t, p.Addr()), "new\n")
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, addr)
	if err := dialRoundTrip(p.Addr()); err == nil || isTimeout(err) {
		t.Fatalf("target down: %v, want a reset", err)
	}
}

func TestSetModeErrors(t *testing.T) {
	e := startEcho(t)
	p := start(t, e.addr())
	if err := p.SetMode(faultproxy.Mode(42)); err == nil {
		t.Fatal("unknown mode accepted")
	}
	p.Close()
	if err := p.SetMode(faultproxy.Pass); err == nil {
		t.Fatal("SetMode after Close accepted")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}

// TestNoLeaks closes a proxy in every mode with connections open and checks that every
// goroutine it started has returned.
func TestNoLeaks(t *testing.T) {
	for _, m := range []faultproxy.Mode{faultproxy.Pass, faultproxy.Refuse, faultproxy.Reset, faultproxy.Blackhole} {
		t.Run(m.String(), func(t *testing.T) {
			e := startEcho(t)
			base := runtime.NumGoroutine()
			p, err := faultproxy.Start(e.addr())
			if err != nil {
				t.Fatal(err)
			}
			var conns []net.Conn
			for i := 0; i < 5; i++ {
				c := dial(t, p.Addr())
				mustEcho(t, c, "x\n")
				conns = append(conns, c)
			}
			setMode(t, p, m)
			if m == faultproxy.Blackhole {
				conns = append(conns, dial(t, p.Addr())) // waiting to dial the target
				_, _ = io.WriteString(conns[0], "held\n")
				time.Sleep(20 * time.Millisecond)
			}
			p.Close()
			for _, c := range conns {
				c.Close()
			}
			waitGoroutines(t, base)
		})
	}
}

// TestConcurrent flips modes while clients talk through the proxy (run with -race).
func TestConcurrent(t *testing.T) {
	e := startEcho(t)
	base := runtime.NumGoroutine()
	p, err := faultproxy.Start(e.addr())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				for j := 0; j < 5; j++ {
					if got, err := roundTrip(c, "ping\n", 50*time.Millisecond); err == nil && got == "ping\n" {
						ok.Add(1)
					}
				}
				c.Close()
			}
		}()
	}
	modes := []faultproxy.Mode{faultproxy.Pass, faultproxy.Refuse, faultproxy.Reset, faultproxy.Blackhole}
	for i := 0; i < 60; i++ {
		m := modes[rand.IntN(len(modes))]
		if i%2 == 0 {
			m = faultproxy.Pass
		}
		setMode(t, p, m)
		if i%7 == 0 {
			p.CutExisting()
		}
		_ = p.Conns()
		time.Sleep(5 * time.Millisecond)
	}
	setMode(t, p, faultproxy.Pass)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	p.Close()
	if ok.Load() == 0 {
		t.Fatal("no round trip succeeded")
	}
	waitGoroutines(t, base)
}

// TestRedis runs a PING through the proxy to a real Redis and resets it. Redis is the one of
// IMAGEGW_TEST_REDIS_URL or 127.0.0.1:6379; the test skips when it is unreachable, unless CI
// is "true".
func TestRedis(t *testing.T) {
	addr := "127.0.0.1:6379"
	if v := os.Getenv("IMAGEGW_TEST_REDIS_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			t.Fatalf("IMAGEGW_TEST_REDIS_URL %q: want redis://host:port/…", v)
		}
		addr = u.Host
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		msg := "faultproxy: Redis at " + addr + " is unreachable (" + err.Error() + "); start one with: " +
			"redis-server --daemonize yes --port 6379 --save \"\" --appendonly no (or point IMAGEGW_TEST_REDIS_URL at one)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	} else {
		c.Close()
	}
	p := start(t, addr)
	c := dial(t, p.Addr())
	ping := func() (string, error) {
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := io.WriteString(c, "PING\r\n"); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	if got, err := ping(); err != nil || got != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", got, err)
	}
	setMode(t, p, faultproxy.Blackhole)
	if _, err := ping(); !isTimeout(err) {
		t.Fatalf("PING in Blackhole: %v, want a timeout", err)
	}
	setMode(t, p, faultproxy.Reset)
	if _, err := ping(); err == nil || isTimeout(err) {
		t.Fatalf("PING after Reset: %v, want a reset", err)
	}
}
