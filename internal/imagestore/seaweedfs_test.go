package imagestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The S3 backend's tests against a real S3-compatible server: SeaweedFS, built and started by
// scripts/seaweedfs.sh. With CI=true the tests build and start it themselves and fail if they
// cannot; elsewhere they skip until `scripts/seaweedfs.sh build` has built it, then start it
// (or use the one already running). The server is left running, like the Postgres and Redis
// the other tests use (other packages' tests may share it): `scripts/seaweedfs.sh stop` stops
// it. Every run uses fresh buckets.

var weed struct {
	once     sync.Once
	endpoint string
	skip     string
	err      error
}

// seaweedFS returns the S3 endpoint of the test SeaweedFS ("http://127.0.0.1:18333"), starting
// it when needed, or skips the test (outside CI, when weed is not built).
func seaweedFS(t testing.TB) string {
	t.Helper()
	weed.once.Do(startSeaweedFS)
	if weed.skip != "" {
		t.Skip(weed.skip)
	}
	if weed.err != nil {
		t.Fatal(weed.err)
	}
	return weed.endpoint
}

func startSeaweedFS() {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		weed.err = err
		return
	}
	script := filepath.Join(root, "scripts", "seaweedfs.sh")
	cache := os.Getenv("IMAGEGW_WEED_CACHE")
	if cache == "" {
		cache = filepath.Join(root, ".cache", "weed")
	}
	ci := os.Getenv("CI") == "true"
	if _, err := os.Stat(filepath.Join(cache, "weed")); err != nil && !ci {
		weed.skip = "SeaweedFS is not built: run scripts/seaweedfs.sh build (once; a few minutes) " +
			"to run the S3 image store tests against a real S3 server; CI=true builds it"
		return
	}
	timeout := 2 * time.Minute
	if ci {
		timeout = 15 * time.Minute // may build weed first
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script, "start")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		weed.err = fmt.Errorf("scripts/seaweedfs.sh start: %v\n%s", err, stderr.String())
		return
	}
	weed.endpoint = strings.TrimSpace(stdout.String())
	if _, err := url.Parse(weed.endpoint); err != nil || !strings.HasPrefix(weed.endpoint, "http://") {
		weed.err = fmt.Errorf("scripts/seaweedfs.sh start printed %q, want the S3 endpoint", weed.endpoint)
	}
}

// seaweedFSURL returns an images URL on a fresh bucket of the test SeaweedFS, with prefix
// and params.
func seaweedFSURL(t testing.TB, prefix string, params ...string) string {
	t.Helper()
	endpoint := seaweedFS(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "imagegw-test-" + hex.EncodeToString(b[:])
	return "s3://" + bucket + "/" + prefix + "?" + strings.Join(append([]string{"endpoint=" + endpoint}, params...), "&")
}

// TestSeaweedFSConformance: the backend conformance suite on a real S3 server (two stores on
// one bucket and prefix, as two replicas).
func TestSeaweedFSConformance(t *testing.T) {
	base := seaweedFSURL(t, "")
	n := 0
	conformance(t, func(t *testing.T) (*Store, *Store) {
		n++
		return replicas(t, strings.Replace(base, "/?", fmt.Sprintf("/run%d/hosted?", n), 1))
	})
}

// TestSeaweedFSPresign: presigned links (signed, and plain ones for anonymous stores) are
// answered by the object store itself, with the image's type.
func TestSeaweedFSPresign(t *testing.T) {
	u := seaweedFSURL(t, "p", "presign=true")
	for _, cred := range []Credentials{{}, {AccessKeyID: testKeyID, SecretAccessKey: testSecret}} {
		s, err := Open(ctx, Options{URL: u, TTL: time.Hour, Credentials: cred})
		if err != nil {
			t.Fatalf("%v: %v", cred, err)
		}
		data := pngBytes(2048)
		name, err := s.Put(ctx, data, "image/png")
		if err != nil {
			t.Fatalf("%v: %v", cred, err)
		}
		link, err := s.Link(ctx, name, "http://gw.invalid/v1/images/files/")
		if err != nil || strings.HasPrefix(link, "http://gw.invalid/") {
			t.Fatalf("%v: link %q, %v", cred, link, err)
		}
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); resp.StatusCode != 200 || !bytes.Equal(got, data) || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("%v: %s answers %d %q (%d bytes)", cred, link, resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
		_ = s.Close()
	}
}

// TestSeaweedFSUnreachable: a store whose object store is down fails at open, saying where.
func TestSeaweedFSUnreachable(t *testing.T) {
	seaweedFS(t) // only with the real-server tests: the point is the error text against a real client stack
	_, err := Open(ctx, Options{URL: "s3://imagegw-down/x?endpoint=http://127.0.0.1:1", TTL: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "s3://imagegw-down/x/ at http://127.0.0.1:1") {
		t.Fatalf("open against a closed port: %v", err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("a closed port is not a missing image")
	}
}
