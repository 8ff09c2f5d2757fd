// Command healthcheck is the container image's HTTP probe: it GETs one URL and exits 0 when the
// answer is 2xx, 1 otherwise. The gateway's image is distroless (no shell, curl or wget), so
// Docker's HEALTHCHECK and compose healthchecks run this in exec form.
//
//	healthcheck                              # http://127.0.0.1:<port of IMAGEGW_ADDR>/readyz
//	healthcheck http://10.213.0.10:9090/     # any URL (the simulator's index, for example)
//	healthcheck -timeout 5s URL
//
// Kubernetes does not need it: its probes are httpGet on /readyz and /healthz.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// defaultAddr is the gateway's built-in listen address (config.Default().Addr).
const defaultAddr = "127.0.0.1:8080"

func main() {
	timeout := flag.Duration("timeout", 3*time.Second, "give up after this long")
	flag.Parse()
	url := flag.Arg(0)
	if url == "" {
		url = defaultURL(os.Getenv("IMAGEGW_ADDR"))
	}
	if err := probe(url, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// defaultURL is the gateway's readiness URL for listen address addr: a wildcard or empty host
// is probed on loopback.
func defaultURL(addr string) string {
	if addr == "" {
		addr = defaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

// probe GETs url and reports an error unless the status is 2xx.
func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return nil
}
