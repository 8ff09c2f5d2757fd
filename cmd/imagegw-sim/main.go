// Command imagegw-sim serves every provider's fake API on one port, each under its own path
// prefix, for offline development, demos, CI and load tests:
//
//	go run ./cmd/imagegw-sim                          # 127.0.0.1:9090
//	eval "$(go run ./cmd/imagegw-sim -print-env)"     # point a gateway at it
//
// The fakes are the strict ones the adapters are tested against (providers/<name>/fake): they
// check auth, content types, enums and ranges, answer in each provider's real shape and serve
// their own expiring image URLs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	arkfake "github.com/imagegw/imagegw/providers/ark/fake"
	ideogramfake "github.com/imagegw/imagegw/providers/ideogram/fake"
	modelversefake "github.com/imagegw/imagegw/providers/modelverse/fake"
	openaifake "github.com/imagegw/imagegw/providers/openai/fake"
	siliconflowfake "github.com/imagegw/imagegw/providers/siliconflow/fake"
	yunyxfake "github.com/imagegw/imagegw/providers/yunyx/fake"
)

// upstream is one fake mounted under a prefix.
type upstream struct {
	prefix  string // "/siliconflow"
	envName string // "SILICONFLOW": the gateway reads <envName>_API_KEY and <envName>_BASE_URL
	baseURL string // path appended to the prefix to make the adapter's base URL ("/v1")
	key     string
	handler http.Handler
}

// upstreams builds every fake for a simulator reachable at public (e.g. "http://127.0.0.1:9090").
func upstreams(public string, latency time.Duration) []upstream {
	return []upstream{
		{"/siliconflow", "SILICONFLOW", "/v1", siliconflowfake.DefaultKey,
			siliconflowfake.New(siliconflowfake.Options{PublicURL: public + "/siliconflow", Latency: latency})},
		{"/yunyx", "YUNYX", "/v1", yunyxfake.DefaultKey,
			yunyxfake.New(yunyxfake.Options{PublicURL: public + "/yunyx", Latency: latency})},
		{"/ark", "ARK", "/api/v3", arkfake.DefaultKey,
			arkfake.New(arkfake.Options{PublicURL: public + "/ark", Latency: latency})},
		{"/modelverse", "MODELVERSE", "/v1", modelversefake.DefaultKey,
			modelversefake.New(modelversefake.Options{PublicURL: public + "/modelverse", Latency: latency})},
		{"/openai", "OPENAI", "/v1", openaifake.DefaultKey,
			openaifake.New(openaifake.Options{PublicURL: public + "/openai", Latency: latency})},
		{"/openai-compatible", "OPENAI_COMPATIBLE", "/v1", openaifake.DefaultCompatibleKey,
			openaifake.NewCompatible(openaifake.Options{PublicURL: public + "/openai-compatible", Latency: latency})},
		{"/ideogram", "IDEOGRAM", "", ideogramfake.DefaultKey,
			ideogramfake.New(ideogramfake.Options{PublicURL: public + "/ideogram", Latency: latency})},
	}
}

// Handler returns the simulator's handler: every fake under its prefix, and an index at /.
func Handler(public string, latency time.Duration) http.Handler {
	mux := http.NewServeMux()
	ups := upstreams(public, latency)
	for _, u := range ups {
		mux.Handle(u.prefix+"/", http.StripPrefix(u.prefix, u.handler))
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "imagegw-sim: fake provider APIs")
		for _, u := range ups {
			fmt.Fprintf(w, "  %-20s base URL %s%s%s\n", u.prefix, public, u.prefix, u.baseURL)
		}
	})
	return mux
}

// Env returns the environment a gateway needs to use the simulator at addr.
func Env(addr string) []string {
	public := "http://" + addr
	var out []string
	for _, u := range upstreams(public, 0) {
		out = append(out,
			fmt.Sprintf("%s_API_KEY=%s", u.envName, u.key),
			fmt.Sprintf("%s_BASE_URL=%s%s%s", u.envName, public, u.prefix, u.baseURL))
	}
	sort.Strings(out)
	// The simulator listens on loopback, which the gateway's SSRF-safe client refuses unless allowed.
	return append(out, "IMAGEGW_OUTBOUND_ALLOW_HOSTS="+addr)
}

const usage = `imagegw-sim — every provider's fake API on one port, for offline development, demos and CI

Usage: imagegw-sim [-addr HOST:PORT] [-latency DURATION] [-print-env]

  go run ./cmd/imagegw-sim                          # listen on 127.0.0.1:9090
  eval "$(go run ./cmd/imagegw-sim -print-env)"     # point a gateway (in this shell) at it

Flags:
`

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses the command line and runs the simulator; it returns the exit status. The flags
// live in a flag set of their own: flags that packages register on the global set for their
// tests (providertest's -update) are neither shown nor accepted.
func run(args []string) int {
	fs := flag.NewFlagSet("imagegw-sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	printEnv := fs.Bool("print-env", false, "print the export lines that point a gateway at this simulator, and exit")
	latency := fs.Duration("latency", 0, "simulated generation latency added by every fake (e.g. 2s)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usage)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintln(os.Stderr, "imagegw-sim:", err)
		fmt.Fprintln(os.Stderr, "run 'imagegw-sim -h' for usage")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "imagegw-sim: unexpected argument %q\nrun 'imagegw-sim -h' for usage\n", fs.Arg(0))
		return 2
	}
	if *printEnv {
		for _, kv := range Env(*addr) {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Printf("export %s=%q\n", k, v)
		}
		return 0
	}
	if err := serve(*addr, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "imagegw-sim:", err)
		return 1
	}
	return 0
}

func serve(addr string, latency time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Handler("http://"+ln.Addr().String(), latency), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "imagegw-sim listening on http://%s (point a gateway at it: eval \"$(go run ./cmd/imagegw-sim -addr %s -print-env)\")\n", ln.Addr(), ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
