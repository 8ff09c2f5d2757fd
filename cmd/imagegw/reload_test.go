package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// served is `imagegw serve` running in a process of its own.
type served struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func (s *served) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// waitLog waits until the gateway's log holds want.
func (s *served) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(s.log(), want) {
			return
		}
	}
	t.Fatalf("the gateway never logged %q:\n%s", want, s.log())
}

// serveChild runs `imagegw serve --config path` (this test binary as imagegw) and waits until it
// listens.
func serveChild(t *testing.T, path string) *served {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--config", path, "--no-bootstrap")
	cmd.Env = append(os.Environ(), "IMAGEGW_TEST_RUN_MAIN=1", "IMAGEGW_ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.Write(sc.Bytes())
			s.logs.WriteByte('\n')
			s.mu.Unlock()
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "imagegw listening" {
				addr <- l.Addr
			}
		}
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // an error when it already exited
		if t.Failed() {
			t.Logf("gateway log:\n%s", s.log())
		}
	})
	select {
	case a := <-addr:
		s.url = "http://" + a
	case err := <-s.done:
		t.Fatalf("imagegw serve exited: %v\n%s", err, s.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("imagegw serve did not listen:\n%s", s.log())
	}
	return s
}

// do sends a request to the gateway (see gatewaytest.Do) and returns the status and body.
func (s *served) do(t *testing.T, method, path, auth, body string) (int, string) {
	t.Helper()
	resp, b := gatewaytest.Do(t, method, s.url+path, auth, body)
	return resp.StatusCode, string(b)
}

// TestServeReloadsOnSIGHUP runs the real command: after the configuration file changes, SIGHUP
// makes the gateway serve a new alias at a new price; a broken file is refused with every
// problem logged and the gateway goes on serving the last good configuration; SIGTERM still
// stops it cleanly.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	isolate(t)
	const admin = "sighup-test-admin-token"
	t.Setenv("IMAGEGW_ADMIN_TOKEN", admin)
	path := writeConfig(t, "log: {format: json}\n")
	s := serveChild(t, path)

	status, body := s.do(t, "POST", "/admin/v1/keys", admin, `{"name":"sighup"}`)
	if status != 201 {
		t.Fatalf("create key: %d %s", status, body)
	}
	var k struct{ Key string }
	if err := json.Unmarshal([]byte(body), &k); err != nil || k.Key == "" {
		t.Fatalf("create key: %v %s", err, body)
	}
	gen := func(model string) (int, string) {
		return s.do(t, "POST", "/v1/images/generations", k.Key, `{"model":"`+model+`","prompt":"a fox","size":"64x64"}`)
	}
	if st, b := gen("hup-art"); st != 404 {
		t.Fatalf("hup-art before the reload: %d %s", st, b)
	}

	good := `log: {format: json}
models:
  - {name: hup-art, target: sandbox/sandbox-image, price: {unit: image, currency: USD, amount: "0.07"}}
`
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, `"msg":"configuration reloaded"`)
	req, _ := http.NewRequest("POST", s.url+"/v1/images/generations", strings.NewReader(`{"model":"hup-art","prompt":"a fox","size":"64x64"}`))
	req.Header.Set("Authorization", "Bearer "+k.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.07" {
		t.Fatalf("hup-art after SIGHUP: %d cost %q", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"))
	}

	broken := `log: {format: json}
models:
  - {name: hup-art, target: sandbox/sandbox-image, price: {unit: image, currency: USD, amount: "0.07"}}
  - {name: other, target: nope/x}
providers:
  - {name: sb-x, type: sandbox, options: {latency: soon}}
`
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, "configuration reload refused; the running configuration stays")
	var refused string
	for _, line := range strings.Split(s.log(), "\n") {
		if strings.Contains(line, "configuration reload refused") {
			refused = line
		}
	}
	for _, want := range []string{`target \"nope/x\"`, `\"soon\" is not a non-negative duration`} {
		if !strings.Contains(refused, want) {
			t.Errorf("the refusal log line lacks %s: %s", want, refused)
		}
	}
	if st, b := gen("hup-art"); st != 200 {
		t.Fatalf("hup-art after a refused reload: %d %s", st, b)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("imagegw serve after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("imagegw serve did not stop on SIGTERM")
	}
}
