//go:build linux

package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/metrics"
)

// floodChildEnv makes the test binary the gateway process of the flood tests (see TestMain);
// its value is the RLIMIT_NOFILE the gateway runs with.
const floodChildEnv = "IMAGEGW_TEST_FLOOD_CHILD"

// floodProbeEnv makes the test binary the probing client of the flood tests; its value is the
// gateway's address.
const floodProbeEnv = "IMAGEGW_TEST_FLOOD_PROBE"

func TestMain(m *testing.M) {
	if n, err := strconv.ParseUint(os.Getenv(floodChildEnv), 10, 64); err == nil {
		runFloodChild(n)
		return
	}
	if addr := os.Getenv(floodProbeEnv); addr != "" {
		runFloodProbes(addr)
		return
	}
	os.Exit(m.Run())
}

// floodLogFilter passes only the http.Server's own log lines (accept errors) to the child's
// stderr, where the parent looks for "too many open files".
type floodLogFilter struct{ zapcore.Core }

func (f floodLogFilter) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.LoggerName != "http" {
		return ce
	}
	return f.Core.Check(e, ce)
}

// floodGrace is the child's BodyReadGrace (its BodyMinRate is 1,000 bytes/s).
const floodGrace = time.Second

// runFloodChild is the gateway of the flood tests: a process whose RLIMIT_NOFILE is nofile
// (1,024, the setting) serving with the default connection cap, a handler that reads
// its body (a request with a valid key) and one that refuses without reading (no key). It
// prints its address and cap, serves until its stdin closes, then prints its connection
// counters.
func runFloodChild(nofile uint64) {
	lim := syscall.Rlimit{Cur: nofile, Max: nofile}
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err == nil && cur.Max < lim.Max {
		lim = syscall.Rlimit{Cur: cur.Max, Max: cur.Max}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	m := metrics.New()
	log := zap.New(floodLogFilter{zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.Lock(os.Stderr), zap.DebugLevel)})
	s := New(Options{Metrics: m, Logger: log, BodyMinRate: 1000, BodyReadGrace: floodGrace, Mount: func(r chi.Router) {
		r.Post("/v1/images/generations", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer ok" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				w.WriteHeader(http.StatusBadRequest)
			}
		})
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Printf("addr %s cap %d nofile %d\n", ln.Addr(), s.o.MaxConns, lim.Cur)
	if err := s.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	fmt.Printf("evicted %v refused %v body_timeouts %v\n", value(m.ConnsDropped.WithLabelValues("evicted")),
		value(m.ConnsDropped.WithLabelValues("refused")), value(m.BodyTimeouts))
	os.Exit(0)
}

// runFloodProbes is the monitoring client of the flood tests, a process of its own as a kubelet
// is: it probes /healthz at addr on fresh connections 9 times, 200 ms apart, and prints each
// probe's latency in nanoseconds, or the error that ends it.
//
// Probing from a goroutine of the test process made probes fail: under -race on a loaded
// machine the request waited up to a second for the CPU behind the 1,100 attackers' goroutines,
// and the gateway rightly took a connection that had sent nothing for slowHeaderAge after it
// was accepted for a slowloris and evicted it. The timeout is only a hang check: a probe waits
// its turn in the accept queue, seconds on a loaded machine.
func runFloodProbes(addr string) {
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	for i := range 9 {
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		resp, err := probe.Get("http://" + addr + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			fmt.Printf("probe %d: %v\n", i, err)
			break
		}
		fmt.Println(time.Since(start).Nanoseconds())
	}
	os.Exit(0)
}

// floodResult is what a flood observed.
type floodResult struct {
	probes        []time.Duration // sorted
	n408, evicted int             // outcomes of the bodies trickled with a key
	dials         int64
}

func (r floodResult) median() time.Duration { return r.probes[len(r.probes)/2] }

// flood starts the gateway child with RLIMIT_NOFILE nofile, opens conns connections to it that
// trickle (a third their headers, a third a body with no key, a third a body with a key that the
// handler reads: a byte every 200 ms), and probes /healthz across the bodies' grace
// (runFloodProbes). With reconnect, an attacker whose connection is cut (or refused) connects
// again at once, the way a slowloris tool keeps its count. It fails the test when a probe
// fails, when a trickled body is never cut or gets anything but a 408, or when the gateway runs
// out of file descriptors.
func flood(t *testing.T, nofile uint64, conns int, reconnect bool) floodResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", floodChildEnv, nofile))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	childOut := bufio.NewReader(stdout)
	var stderr strings.Builder
	var stderrMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		stderrMu.Lock()
		defer stderrMu.Unlock()
		return stderr.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopChild := sync.OnceFunc(func() {
		stdin.Close()
		if line, err := childOut.ReadString('\n'); err == nil {
			t.Logf("gateway: %s", strings.TrimSpace(line))
		}
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		stderrMu.Lock()
		defer stderrMu.Unlock()
		if strings.Contains(stderr.String(), "too many open files") {
			t.Errorf("the gateway ran out of file descriptors:\n%s", stderr.String())
		}
	})
	defer stopChild()
	var addr string
	var limit, childNofile int
	line, err := childOut.ReadString('\n')
	if _, perr := fmt.Sscanf(line, "addr %s cap %d nofile %d", &addr, &limit, &childNofile); err != nil || perr != nil {
		t.Fatalf("gateway: %q (%v, %v)", line, err, perr)
	}
	// 80 %, leaving at least 64 descriptors.
	if want := map[int]int{1024: 819, 256: 192}[childNofile]; want != 0 && limit != want {
		t.Errorf("default cap with RLIMIT_NOFILE %d = %d, want %d", childNofile, limit, want)
	}
	t.Logf("gateway: RLIMIT_NOFILE %d, connection cap %d; %d trickling connections, reconnecting: %v", childNofile, limit, conns, reconnect)

	type outcome struct {
		status int           // the response's status; 0: closed without one; -1: never cut
		at     time.Duration // from just before the request was sent to the cut
	}
	outcomes := make(chan outcome, 1<<20)
	var dials, cuts atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopFlood := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopFlood()
	attack := func(kind int) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			dials.Add(1)
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			// Before the write: the gateway cannot start reading the body earlier.
			start := time.Now()
			switch kind {
			case 0: // slowloris headers
				_, err = io.WriteString(c, "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			case 1: // a trickled body without a key
				_, err = io.WriteString(c, "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
			case 2: // a trickled body with a key: the handler reads it
				_, err = io.WriteString(c, "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ok\r\nContent-Length: 1000000\r\n\r\n{")
			}
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
				br := bufio.NewReader(c)
				o := outcome{}
				resp, rerr := http.ReadResponse(br, nil)
				var ne net.Error
				switch {
				case rerr == nil:
					o.status = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
				case errors.As(rerr, &ne) && ne.Timeout():
					o.status = -1
				}
				o.at = time.Since(start)
				select {
				case <-stop: // cut by the test's own end
				default:
					if kind == 2 {
						outcomes <- o
						if o.status == http.StatusRequestTimeout {
							cuts.Add(1)
						}
					}
				}
			}()
			tick := time.NewTicker(200 * time.Millisecond)
		trickle:
			for err == nil {
				select {
				case <-stop:
					break trickle
				case <-closed:
					break trickle
				case <-tick.C:
					_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					_, err = c.Write([]byte("a"))
				}
			}
			tick.Stop()
			c.Close()
			<-closed
			if !reconnect {
				<-stop
				return
			}
		}
	}
	for i := range conns {
		wg.Add(1)
		go attack(i % 3)
	}
	waitFor(t, func() bool { return dials.Load() >= int64(conns) })
	time.Sleep(200 * time.Millisecond)

	// Probes on fresh connections while the flood trickles, across the cut of the first bodies.
	probes := exec.Command(os.Args[0], "-test.run=^$")
	probes.Env = append(os.Environ(), floodProbeEnv+"="+addr)
	out, err := probes.Output()
	if err != nil {
		t.Fatalf("probes: %v\n%s", err, out)
	}
	var res floodResult
	for line := range strings.Lines(string(out)) {
		ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil {
			t.Fatal(strings.TrimSpace(line))
		}
		res.probes = append(res.probes, time.Duration(ns))
	}
	if len(res.probes) != 9 {
		t.Fatalf("%d probes, want 9:\n%s", len(res.probes), out)
	}
	slices.Sort(res.probes)

	// A body cut by the min-rate deadline is counted only while the flood runs: give the first
	// cut time to come (n408 is checked below).
	for deadline := time.Now().Add(30 * time.Second); cuts.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}

	// Every body trickled with a key is cut: a 408, or its connection evicted. The 408 cannot
	// come before the grace (the gateway sets the first deadline to its first read of the body
	// + the grace, and only ever moves it later; a quarter of slack as in TestBodyStallGets408).
	// It has no upper bound: the time from the write includes the wait in the accept queue
	// (seconds under load, as the probes show); the hang check is the 15 s read deadline.
	stopFlood()
	close(outcomes)
	for o := range outcomes {
		switch {
		case o.status == http.StatusRequestTimeout:
			res.n408++
			if o.at < floodGrace*3/4 {
				t.Errorf("a trickled body was cut after %v, before the %v grace", o.at, floodGrace)
			}
		case o.status == 0:
			res.evicted++
		case o.status == -1:
			t.Errorf("a trickled body was never cut")
		default:
			t.Errorf("a trickled body got status %d after %v", o.status, o.at)
		}
	}
	res.dials = dials.Load()
	stopChild()
	t.Logf("healthz under the flood: min %v median %v max %v; %d attacker connections; bodies trickled with a key: %d got 408, %d evicted",
		res.probes[0], res.median(), res.probes[len(res.probes)-1], res.dials, res.n408, res.evicted)
	if res.n408 == 0 {
		t.Error("no trickled body was cut by the min-rate deadline: the flood did not exercise it")
	}
	return res
}

// TestConnFloodKeepsHealthz is the connection flood, end to end across two processes:
// a gateway whose RLIMIT_NOFILE is 1,024 (a child process: this test binary re-run) takes 1,100
// trickling connections, and /healthz must still answer 200 on fresh connections within 100 ms,
// the process must never run out of descriptors (no "too many open files" from accept), and
// the trickled bodies must be cut once the min-rate grace has passed.
//
// The 100 ms bound is the issue's; the test takes the median of 9 probes spread over the flood,
// so one probe that a loaded CI machine (or -race) delays cannot fail it alone, while a server
// that queues probes behind the flood (the failure the bound is about: seconds, or never)
// fails every probe. Every probe must also succeed.
func TestConnFloodKeepsHealthz(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the flood opens 1,100 connections")
	}
	nofile, conns := floodSize(t)
	if res := flood(t, nofile, conns, false); res.median() > 100*time.Millisecond {
		t.Errorf("healthz median %v under the flood, want within 100ms (all: %v)", res.median(), res.probes)
	}
}

// TestConnFloodReconnectingAttackers is the harder flood: the 1,100 attackers connect again as
// soon as the gateway cuts them, the way a slowloris tool keeps its count, so some 300 of them
// are always waiting in the kernel's accept queue (the gateway holds 819) and the listener
// cycles thousands of connections a second. Every probe must still be served: it waits its turn
// in the accept queue and, once accepted, is not evicted (young connections are not), and the
// process must never run out of descriptors. Its latency is the accept queue's: the attackers
// ahead of it over the rate at which slow connections are cut. On a 2-CPU machine shared with
// the attackers that was about 100 ms (about 0.5 s under -race, where the eviction scan is
// slow); it is logged, not asserted (the probe client's 30 s timeout is the hang check).
func TestConnFloodReconnectingAttackers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the flood opens thousands of connections")
	}
	nofile, conns := floodSize(t)
	flood(t, nofile, conns, true)
}

// floodSize is the flood (1,100 connections to a gateway with 1,024 descriptors) when
// this process may open enough files for its side, else a smaller one of the same shape (the
// gateway's cap + 50 against a 256-descriptor gateway).
func floodSize(t *testing.T) (nofile uint64, conns int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("RLIMIT_NOFILE: %v", err)
	}
	switch {
	case lim.Cur >= 1100+200:
		return 1024, 1100
	case lim.Cur >= 256+200:
		t.Logf("this process may open %d files: a 256-descriptor gateway and %d connections instead of the issue's 1,100", lim.Cur, 192+50)
		return 256, 192 + 50
	}
	t.Skipf("this process may open %d files; the flood needs 456", lim.Cur)
	return 0, 0
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
