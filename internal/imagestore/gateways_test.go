package imagestore_test

import (
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/imagestore"
	sffake "github.com/imagegw/imagegw/providers/siliconflow/fake"
)

// generate asks g for one image as a URL and returns the URL.
func generate(t *testing.T, g *gatewaytest.Gateway, body string) string {
	t.Helper()
	resp, b := gatewaytest.Do(t, http.MethodPost, g.URL+"/v1/images/generations", g.Key, body)
	var out struct {
		Data []struct {
			URL string `json:"url"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != 200 || len(out.Data) != 1 || out.Data[0].URL == "" {
		t.Fatalf("generate: %d %s", resp.StatusCode, b)
	}
	return out.Data[0].URL
}

// fetchPNG GETs u and returns its bytes, checking it is a PNG.
func fetchPNG(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, %v", u, resp.StatusCode, err)
	}
	if _, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %q, not a PNG: %v", u, resp.Header.Get("Content-Type"), err)
	}
	return b
}

// TestTwoGatewaysShareS3: two gateways on one images_url (SeaweedFS), as two replicas behind a
// load balancer: the URL one of them answers is served by the other; with presign=true the
// URL is the object store's own.
func TestTwoGatewaysShareS3(t *testing.T) {
	const body = `{"model":"sandbox-image","prompt":"a red fox","size":"64x64","response_format":"url"}`
	env := map[string]string{"IMAGEGW_IMAGES_URL": imagestore.SeaweedFSURL(t, "hosted")}
	a := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	b := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	if k := a.App.Images.Kind(); k != "s3" {
		t.Fatalf("the gateway's image store is %q, want s3", k)
	}

	link := generate(t, a, body)
	path, ok := strings.CutPrefix(link, a.URL)
	if !ok || !strings.HasPrefix(path, "/v1/images/files/") {
		t.Fatalf("url %s: want one under %s/v1/images/files/", link, a.URL)
	}
	fromA := fetchPNG(t, a.URL+path)
	if fromB := fetchPNG(t, b.URL+path); !bytes.Equal(fromA, fromB) {
		t.Fatal("the other gateway serves different bytes")
	}

	env["IMAGEGW_IMAGES_URL"] += "&presign=true"
	c := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	link = generate(t, c, body)
	if strings.HasPrefix(link, c.URL) {
		t.Fatalf("presigned store answered the gateway's URL %s", link)
	}
	fetchPNG(t, link)
	u, _ := url.Parse(link)
	fetchPNG(t, a.URL+"/v1/images/files/"+u.Path[strings.LastIndexByte(u.Path, '/')+1:]) // still proxied too
}

// TestRehostProviderURLs: with images.rehost_provider_urls a provider's URL (SiliconFlow's
// expire) is downloaded and hosted, so the client's URL keeps working after the provider's
// has expired; without it the provider's URL is passed through. File store: no S3 needed.
func TestRehostProviderURLs(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	upstream := httptest.NewServer(sffake.New(sffake.Options{URLTTL: time.Minute, Now: clock}))
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	env := map[string]string{
		"SILICONFLOW_API_KEY":          sffake.DefaultKey,
		"SILICONFLOW_BASE_URL":         upstream.URL + "/v1",
		"IMAGEGW_OUTBOUND_ALLOW_HOSTS": u.Host,
	}
	const body = `{"model":"siliconflow/black-forest-labs/FLUX.1-schnell","prompt":"a lighthouse","size":"512x512","response_format":"url"}`

	plain := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	passed := generate(t, plain, body)
	if !strings.HasPrefix(passed, upstream.URL) {
		t.Fatalf("without rehosting: %s, want the provider's URL", passed)
	}

	env["IMAGEGW_REHOST_PROVIDER_URLS"] = "true"
	g := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	hosted := generate(t, g, body)
	if !strings.HasPrefix(hosted, g.URL+"/v1/images/files/") {
		t.Fatalf("rehosted: %s, want one under %s/v1/images/files/", hosted, g.URL)
	}
	want := fetchPNG(t, hosted)

	mu.Lock()
	now = now.Add(2 * time.Minute) // the provider's URLs have expired
	mu.Unlock()
	if resp, err := http.Get(passed); err != nil || resp.StatusCode == 200 {
		t.Fatalf("the provider's URL still answers after its expiry: %v", err)
	}
	if got := fetchPNG(t, hosted); !bytes.Equal(got, want) {
		t.Fatal("the rehosted image changed")
	}
}
