package imagestore

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	testKeyID  = "AKIAIMAGEGWTEST0001"
	testSecret = "wJalrXUtnFEMI/K7MDENG/imagegwTESTSECRETKEY"
)

func TestParseURL(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		raw  string
		want Location
	}{
		{"file:///var/lib/imagegw/images", Location{Scheme: "file", Dir: "/var/lib/imagegw/images"}},
		{"file://localhost/srv/images", Location{Scheme: "file", Dir: "/srv/images"}},
		{"file:data/images", Location{Scheme: "file", Dir: "data/images"}},
		{"file:./data/images", Location{Scheme: "file", Dir: "./data/images"}},
		{"s3://bucket", Location{Scheme: "s3", Bucket: "bucket", Region: "us-east-1"}},
		{"s3://bucket/", Location{Scheme: "s3", Bucket: "bucket", Region: "us-east-1"}},
		{"s3://bucket/a/b/?region=eu-west-1", Location{Scheme: "s3", Bucket: "bucket", Prefix: "a/b/", Region: "eu-west-1"}},
		{"s3://imgs/hosted?endpoint=http://127.0.0.1:8333&presign=true&path_style=true",
			Location{Scheme: "s3", Bucket: "imgs", Prefix: "hosted/", Endpoint: "http://127.0.0.1:8333", Region: "us-east-1", Presign: true, PathStyle: &yes}},
		{"s3://r2/x?endpoint=https://acct.r2.cloudflarestorage.com/&region=auto&path_style=false",
			Location{Scheme: "s3", Bucket: "r2", Prefix: "x/", Endpoint: "https://acct.r2.cloudflarestorage.com", Region: "auto", PathStyle: &no}},
	} {
		got, err := ParseURL(c.raw)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		g, w := *got, c.want
		g.PathStyle, w.PathStyle = nil, nil
		if g != w || (got.PathStyle == nil) != (c.want.PathStyle == nil) || got.PathStyle != nil && *got.PathStyle != *c.want.PathStyle {
			t.Errorf("%s: %+v, want %+v", c.raw, *got, c.want)
		}
	}
	for raw, want := range map[string]string{
		"":                                     "scheme",
		"/var/lib/images":                      "scheme",
		"gs://bucket":                          `scheme "gs"`,
		"file://data/images":                   "names no host",
		"file:///x?y=1":                        "is a directory",
		"s3://":                                "names its bucket",
		"s3:///prefix":                         "names its bucket",
		"s3://b?endpoint=ftp://h":              "endpoint",
		"s3://b?endpoint=http://h/path":        "endpoint",
		"s3://b?presign=maybe":                 "presign",
		"s3://b?regoin=x":                      `unknown parameter "regoin"`,
		"s3://b?region=a&region=b":             "given 2 times",
		"s3://" + testKeyID + ":SECRETX@b/p":   "credentials do not go in the URL",
		"s3://b/p?secret_key=SECRETX":          "credentials do not go in the URL",
		"s3://b/p?endpoint=http://u:SECRETX@h": "endpoint",
	} {
		_, err := ParseURL(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", raw, err, want)
			continue
		}
		if strings.Contains(err.Error(), "SECRETX") {
			t.Errorf("%q: the error repeats a credential: %v", raw, err)
		}
	}
}

// openFake opens a store on the fake with the given credentials.
func openFake(t *testing.T, f *fakeS3, u string, cred Credentials) (*Store, error) {
	t.Helper()
	s, err := Open(ctx, Options{URL: u, TTL: time.Hour, Credentials: cred})
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// anonymousFake opens a store without credentials on a new fake, at bucketAndPrefix with params.
func anonymousFake(t *testing.T, bucketAndPrefix string, params ...string) (*fakeS3, *Store) {
	t.Helper()
	f := newFakeS3(t)
	s, err := openFake(t, f, f.url(bucketAndPrefix, params...), Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

// TestS3Credentials: requests are signed with AWS_ACCESS_KEY_ID's key; a wrong or missing
// credential fails at open, and no error, String or log text holds the secret.
func TestS3Credentials(t *testing.T) {
	f := newFakeS3(t)
	f.key = testKeyID
	u := f.url("images/p")
	for _, cred := range []Credentials{{}, {AccessKeyID: "AKIAOTHERKEY00000000", SecretAccessKey: testSecret}} {
		_, err := openFake(t, f, u, cred)
		if err == nil || !strings.Contains(err.Error(), "bucket check") || !strings.Contains(err.Error(), "Access Denied") {
			t.Fatalf("open with %v: %v, want access denied", cred, err)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Fatalf("the error holds the secret: %v", err)
		}
	}
	if _, err := openFake(t, f, u, Credentials{AccessKeyID: testKeyID}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("a key ID without a secret: %v", err)
	}
	cred := Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	s, err := openFake(t, f, u, cred)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{s.String(), fmt.Sprintf("%v %+v %#v", cred, cred, cred)} {
		if strings.Contains(text, testSecret) || strings.Contains(text, testKeyID) {
			t.Fatalf("%q shows a credential", text)
		}
	}
	if !strings.Contains(s.String(), "s3://images/p/ at "+f.srv.URL) || !strings.Contains(s.String(), "AKIA…") {
		t.Errorf("String() = %q", s.String())
	}
	name, err := s.Put(ctx, pngBytes(64), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if resp := do(s, http.MethodGet, name); resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if got := f.keys("images"); len(got) != 1 || got[0] != "p/"+name {
		t.Fatalf("keys %v, want [p/%s]", got, name)
	}
	// The object carries its type, caching and expiry.
	f.mu.Lock()
	h := f.buckets["images"]["p/"+name].header
	f.mu.Unlock()
	if h.Get("Content-Type") != "image/png" || h.Get("Cache-Control") != "private, max-age=3600, immutable" || h.Get("X-Amz-Meta-Imagegw-Expires") == "" {
		t.Errorf("object headers %v", h)
	}
}

// TestS3Anonymous: without credentials no request is signed (the fake fails the test on a
// signed one) and presign=true links the plain object URL.
func TestS3Anonymous(t *testing.T) {
	f, s := anonymousFake(t, "pub/x", "presign=true")
	if f.count("PUT bucket") != 1 {
		t.Errorf("the missing bucket was not created: %v", f.calls)
	}
	if !strings.Contains(s.String(), "(anonymous)") || !s.Presigned() {
		t.Errorf("String() = %q, presigned %v", s.String(), s.Presigned())
	}
	data := pngBytes(128)
	name, err := s.Put(ctx, data, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	link, err := s.Link(ctx, name, "http://gw/v1/images/files/")
	if err != nil || link != f.srv.URL+"/pub/x/"+name {
		t.Fatalf("link %q, %v", link, err)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("the plain object URL answers %d", resp.StatusCode)
	}
	// A second store finds the bucket.
	if _, err := openFake(t, f, f.url("pub/y"), Credentials{}); err != nil || f.count("PUT bucket") != 1 {
		t.Fatalf("second open: %v; %v", err, f.calls)
	}
}

// TestS3Presign: with credentials, presign=true links a SigV4 URL valid for the TTL that the
// object store answers without the gateway.
func TestS3Presign(t *testing.T) {
	f := newFakeS3(t)
	f.key = testKeyID
	s, err := openFake(t, f, f.url("imgs", "presign=true"), Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	data := pngBytes(256)
	name, err := s.Put(ctx, data, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	link, err := s.Link(ctx, name, "http://gw/v1/images/files/")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(link)
	if err != nil || u.Path != "/imgs/"+name || u.Query().Get("X-Amz-Expires") != "3600" || u.Query().Get("X-Amz-Signature") == "" {
		t.Fatalf("presigned URL %s", link)
	}
	if strings.Contains(link, testSecret) {
		t.Fatal("the presigned URL holds the secret")
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("the presigned URL answers %d", resp.StatusCode)
	}
	// A TTL above SigV4's 7 days is capped.
	s.ttl = 30 * 24 * time.Hour
	if link, err := s.Link(ctx, name, ""); err != nil || !strings.Contains(link, "X-Amz-Expires=604800") {
		t.Fatalf("link with a 30-day TTL: %s, %v", link, err)
	}
}

// TestS3ServeStreams: a GET is one request to the object store, and its bytes reach the client
// as they arrive (the gateway holds no whole image); a HEAD is one HEAD.
func TestS3ServeStreams(t *testing.T) {
	f, s := anonymousFake(t, "imgs")
	name, err := s.Put(ctx, pngBytes(10), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	const half = 64 << 10
	release := make(chan struct{})
	f.fault = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, name) {
			return false
		}
		f.mu.Lock()
		f.calls["GET object"]++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", fmt.Sprint(2*half))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("X-Amz-Meta-Imagegw-Expires", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
		_, _ = w.Write(bytes.Repeat([]byte{1}, half))
		w.(http.Flusher).Flush()
		<-release
		_, _ = w.Write(bytes.Repeat([]byte{2}, half))
		return true
	}
	gw := httptest.NewServer(s)
	defer gw.Close()
	resp, err := http.Get(gw.URL + "/v1/images/files/" + name)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, half)
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); got <- err }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the first half did not arrive before the object store sent the rest: the body is buffered")
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != half || resp.ContentLength != 2*half || rest[0] != 2 {
		t.Fatalf("rest: %d bytes, %v; content length %d", len(rest), err, resp.ContentLength)
	}
	if f.count("GET object") != 1 || f.count("HEAD object") != 0 {
		t.Errorf("calls %v, want one GET", f.calls)
	}
	f.fault = nil
	if resp := do(s, http.MethodHead, name); resp.StatusCode != 200 || f.count("HEAD object") != 1 || f.count("GET object") != 1 {
		t.Errorf("HEAD: %d; calls %v", resp.StatusCode, f.calls)
	}
}

// TestS3Unavailable: an object store that fails answers 503 with Retry-After (not 404: the
// image may well exist), and a failed put is an error.
func TestS3Unavailable(t *testing.T) {
	f, s := anonymousFake(t, "imgs")
	name, err := s.Put(ctx, pngBytes(10), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	f.fault = func(w http.ResponseWriter, r *http.Request) bool {
		s3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied.")
		return true
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		if resp := do(s, m, name); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s with the store failing: %d, Retry-After %q", m, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if _, err := s.Put(ctx, pngBytes(10), "image/png"); err == nil || !strings.Contains(err.Error(), "s3 put") {
		t.Errorf("put with the store failing: %v", err)
	}
	if _, err := s.Sweep(ctx); err == nil {
		t.Error("sweep with the store failing: no error")
	}
}

// TestS3ExpiryFromMetadata: an object is refused once the expiry stored with it passes, even
// when a later TTL (a config change) would keep it; Sweep goes by age and the current TTL.
func TestS3ExpiryFromMetadata(t *testing.T) {
	f := newFakeS3(t)
	short, err := Open(ctx, Options{URL: f.url("imgs"), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	long, err := Open(ctx, Options{URL: f.url("imgs"), TTL: 10 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	name, err := short.Put(ctx, pngBytes(10), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	long.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if resp := do(long, http.MethodGet, name); resp.StatusCode != 404 {
		t.Fatalf("past its stored expiry: %d", resp.StatusCode)
	}
	if n, err := long.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep under the longer TTL = %d, %v; want 0 (by age)", n, err)
	}
	if n, err := short.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep now = %d, %v", n, err)
	}
}

// TestS3SweepPagesAndLeavesOthers: Sweep pages through the listing, deletes only expired
// images under its prefix, and leaves other objects alone (a shared prefix or bucket).
func TestS3SweepPagesAndLeavesOthers(t *testing.T) {
	f, s := anonymousFake(t, "bkt/img")
	for range 5 {
		if _, err := s.Put(ctx, pngBytes(10), "image/png"); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	for _, k := range []string{"img/README", "img/sub/" + strings.Repeat("a", 32) + ".png", "other/" + strings.Repeat("b", 32) + ".png", "imgx/" + strings.Repeat("c", 32) + ".png"} {
		f.buckets["bkt"][k] = &fakeObject{data: []byte("x"), header: http.Header{}, modified: time.Now()}
	}
	f.mu.Unlock()
	f.age("bkt", 3*time.Hour)
	if n, err := s.Sweep(ctx); err != nil || n != 5 {
		t.Fatalf("sweep = %d, %v; want 5", n, err)
	}
	if f.count("LIST") < 4 {
		t.Errorf("listed in %d pages, want at least 4 of 2", f.count("LIST"))
	}
	want := []string{"img/README", "img/sub/" + strings.Repeat("a", 32) + ".png", "imgx/" + strings.Repeat("c", 32) + ".png", "other/" + strings.Repeat("b", 32) + ".png"}
	if got := f.keys("bkt"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("left %v, want %v", got, want)
	}
}
