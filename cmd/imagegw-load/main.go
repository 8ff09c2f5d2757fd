// Command imagegw-load measures imagegw under load against a bare reverse proxy and direct calls,
// side by side in one process and one run, and prints one markdown table.
//
// Everything runs in this process: a minimal fake OpenAI-compatible upstream (a ~1 KB b64_json
// image, at once or after -delay; a -large-bytes one for the large scenario), then each setup in
// turn on its own loopback port:
//
//	direct    the load generator calls the fake upstream itself (the latency baseline)
//	proxy     a bare httputil.ReverseProxy in front of it
//	lean      imagegw: SQLite in a temp dir, in-process limiter, a key with no budget or limits
//	lean-bg   the same with billing.journal_fsync: 10ms (charges fsync'd in the background)
//	governed  imagegw: Postgres (a fresh schema) + Redis, a key with a large budget and limits
//	          high enough never to refuse
//	budget    the same, budget only;  limits: the same, limits only
//
// and each scenario against each setup, scenario by scenario (every setup's max before any
// in-flight scenario), each time on a fresh instance of the setup:
//
//	max       -workers closed-loop workers for -duration: the most req/s
//	rate      -rate req/s offered open-loop for -rate-duration: served req/s and latency added
//	          to direct's (p50, p99; measured from when each request was due)
//	inflight  -inflight closed-loop workers against an upstream that takes -delay: req/s and
//	          the process's peak heap in use over its idle heap
//	large     -large-workers closed-loop workers for -duration, each answer one b64_json image
//	          of -large-bytes (a 2 MB PNG by default, ~2.7 MB of base64): the most req/s
//
// The gateways are built with internal/app exactly as `imagegw serve` builds them, from the
// defaults or the -config file (their info logs are encoded and discarded; warnings go to stderr).
// After each scenario the app is closed (which flushes its usage ledger); for each setup and run,
// the sum of the X-Imagegw-Cost headers the load generator saw is compared with the sum of its
// instances' ledgers.
//
// The cores are shared with everything else on the machine: use -runs N to repeat and report
// medians (with the range of the max req/s).
//
//	go run ./cmd/imagegw-load                                   # everything, defaults as in issue 9
//	go run ./cmd/imagegw-load -duration 5s -rate-duration 5s -setups direct,proxy,lean
//	go run ./cmd/imagegw-load -serve-upstream 127.0.0.1:9700    # the fake upstream alone, for -upstream
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the flags.
type options struct {
	Duration     time.Duration
	Warmup       time.Duration
	Workers      int
	Rate         int
	RateDuration time.Duration
	Inflight     int
	Delay        time.Duration
	Timeout      time.Duration
	Pause        time.Duration
	FailPause    time.Duration
	Scenarios    []string
	Setups       []string
	Runs         int
	DatabaseURL  string
	RedisURL     string
	Price        string
	ImageBytes   int
	LargeBytes   int
	LargeWorkers int
	Upstream     string
	KeepSchema   bool
	Config       string

	ServeUpstream string
	CPUProfile    string
	Trace         string
	LimiterStats  bool
	HeapProfile   string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("imagegw-load", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measuring window of the max and inflight scenarios")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "load before the window opens (inflight: at least -delay + 1s)")
	fs.IntVar(&o.Workers, "workers", 128, "closed-loop workers of the max scenario")
	fs.IntVar(&o.Rate, "rate", 1000, "req/s offered by the rate scenario")
	fs.DurationVar(&o.RateDuration, "rate-duration", 15*time.Second, "how long the rate scenario offers its load")
	fs.IntVar(&o.Inflight, "inflight", 5000, "requests in flight in the inflight scenario (capped by the open-file limit)")
	fs.DurationVar(&o.Delay, "delay", 2*time.Second, "upstream delay in the inflight scenario")
	fs.DurationVar(&o.Timeout, "timeout", 60*time.Second, "client timeout of one request")
	fs.DurationVar(&o.FailPause, "fail-pause", 100*time.Millisecond, "closed-loop worker's wait after a failed request")
	fs.DurationVar(&o.Pause, "pause", 500*time.Millisecond, "idle time between measurements")
	scen := fs.String("scenarios", strings.Join(scenarioOrder, ","), "comma-separated: "+strings.Join(scenarioOrder, ", "))
	setups := fs.String("setups", "direct,proxy,lean,lean-bg,governed", "comma-separated: "+strings.Join(setupOrder, ", ")+", or all")
	fs.IntVar(&o.Runs, "runs", 1, "repeat everything N times and report medians")
	fs.StringVar(&o.DatabaseURL, "database-url", envOr("IMAGEGW_LOAD_DATABASE_URL", "postgres://127.0.0.1:5432/test?sslmode=disable"),
		"Postgres server for the governed setups (a fresh schema per setup and run) [$IMAGEGW_LOAD_DATABASE_URL]")
	fs.StringVar(&o.RedisURL, "redis-url", envOr("IMAGEGW_LOAD_REDIS_URL", "redis://127.0.0.1:6379/0"),
		"Redis for the governed setups (keys are per fresh API key, nothing is flushed) [$IMAGEGW_LOAD_REDIS_URL]")
	fs.StringVar(&o.Price, "price", "0.001", "price per image of the model, in the deployment currency")
	fs.IntVar(&o.ImageBytes, "image-bytes", 1024, "size of the upstream's PNG before base64")
	fs.IntVar(&o.LargeBytes, "large-bytes", 2_000_000, "size of the upstream's PNG before base64 in the large scenario")
	fs.IntVar(&o.LargeWorkers, "large-workers", 16, "closed-loop workers of the large scenario")
	fs.StringVar(&o.Upstream, "upstream", "", "use a fake upstream already running at this base URL (see -serve-upstream) instead of one in this process")
	fs.StringVar(&o.Config, "config", "", "imagegw YAML config applied to every gateway setup before the tool's own settings (e.g. limits.max_in_flight)")
	fs.BoolVar(&o.KeepSchema, "keep-schema", false, "keep the Postgres schemas instead of dropping them")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run (load generator included) to this file")
	fs.StringVar(&o.Trace, "trace", "", "write a runtime/trace of the whole run to this file (go tool trace; -pprof=sched|net|sync)")
	fs.StringVar(&o.HeapProfile, "heapprofile", "", "write a heap profile (after a GC) in the middle of each in-flight window to PREFIX.<setup>.<run>.pb.gz: what the requests in flight hold")
	fs.BoolVar(&o.LimiterStats, "limiter-stats", false, "print each gateway's rate-limiter and journal metrics (Redis latency by operation, errors, decisions; each charge's fsync wait, fsyncs; the usage writer's batches) to stderr after it stops")
	fs.StringVar(&o.ServeUpstream, "serve-upstream", "", "only run the fake upstream on this address (with -delay and -image-bytes) until interrupted")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if o.Scenarios, err = pick(*scen, scenarioOrder, "scenario"); err != nil {
		return nil, err
	}
	if *setups == "all" {
		*setups = strings.Join(setupOrder, ",")
	}
	if o.Setups, err = pick(*setups, setupOrder, "setup"); err != nil {
		return nil, err
	}
	if o.Workers < 1 || o.Rate < 1 || o.Inflight < 1 || o.Runs < 1 || o.Duration <= 0 || o.RateDuration <= 0 ||
		o.LargeWorkers < 1 || o.LargeBytes < 1 {
		return nil, errors.New("-workers, -rate, -inflight, -runs, -duration, -rate-duration, -large-workers and -large-bytes must be positive")
	}
	return o, nil
}

// pick parses a comma-separated list of known names and returns them in the known order.
func pick(list string, known []string, what string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(known, s) {
			return nil, fmt.Errorf("unknown %s %q (known: %s)", what, s, strings.Join(known, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s selected", what)
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(known, a) - slices.Index(known, b) })
	return out, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagegw-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "imagegw-load:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if o.HeapProfile != "" {
		// One sample per 16 KB allocated instead of per 512 KB: a request in flight holds items of
		// a few hundred bytes each, which the default rate sees only as noise.
		runtime.MemProfileRate = 16 << 10
	}
	if o.Trace != "" {
		stopTrace, err := startTrace(o.Trace)
		if err != nil {
			fmt.Fprintln(os.Stderr, "imagegw-load:", err)
			os.Exit(1)
		}
		defer stopTrace()
	}
	if o.ServeUpstream != "" {
		err = serveUpstreamOnly(ctx, o, os.Stderr)
	} else {
		err = run(ctx, o, os.Stdout, os.Stderr)
	}
	if err != nil {
		pprof.StopCPUProfile()
		trace.Stop()
		fmt.Fprintln(os.Stderr, "imagegw-load:", err)
		os.Exit(1)
	}
}

func serveUpstreamOnly(ctx context.Context, o *options, log io.Writer) error {
	f, err := newFakeUpstream(o.ImageBytes, o.LargeBytes, o.Delay)
	if err != nil {
		return err
	}
	s, err := serve(o.ServeUpstream, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "fake upstream on %s (delay %s for prompts with %q, a %d-byte image for prompts with %q); use -upstream %s\n",
		s.URL, o.Delay, slowMarker, o.LargeBytes, largeMarker, s.URL)
	<-ctx.Done()
	s.Close()
	return nil
}

// measurement is everything one run measured of one setup.
type measurement struct {
	results map[string]result // by scenario
	costs   *costs
	ledger  *ledger // gateways only
}

// run measures every selected setup with every selected scenario, o.Runs times, and prints
// the report to out and progress to log.
func run(ctx context.Context, o *options, out, log io.Writer) error {
	upstream := o.Upstream
	upstreamIdle := func() {}
	if upstream == "" {
		f, err := newFakeUpstream(o.ImageBytes, o.LargeBytes, o.Delay)
		if err != nil {
			return err
		}
		s, err := serve("127.0.0.1:0", f)
		if err != nil {
			return err
		}
		defer s.Close()
		upstream = s.URL
		upstreamIdle = s.closeIdle
	}
	upstream = strings.TrimRight(upstream, "/")
	host := strings.TrimPrefix(strings.TrimPrefix(upstream, "http://"), "https://")

	var notes []string
	inflight := o.Inflight
	if slices.Contains(o.Scenarios, "inflight") {
		if n := maxInflight(o.Upstream != "", o.Setups); n > 0 && n < inflight {
			notes = append(notes, fmt.Sprintf("in flight capped at %s (not %s): the open-file limit is %s and in one process each "+
				"request through a middle box holds %d sockets; raise `ulimit -n` or run the upstream apart (-serve-upstream, -upstream)",
				commas(n), commas(inflight), commas(int(fileLimit())), fdsPerRequest(o.Upstream != "")))
			inflight = n
		}
	}
	maxConns := max(o.Workers, inflight) + 64
	e := &env{upstream: upstream, upstreamHst: host, databaseURL: o.DatabaseURL, redisURL: o.RedisURL, price: o.Price,
		maxConns: maxConns, logger: newLogger(log), keepSchema: o.KeepSchema, config: o.Config, upstreamIdle: upstreamIdle}
	if o.LimiterStats {
		e.stats = log
	}
	defer e.logger.Sync()

	// Scenario by scenario: every setup's max runs before any in-flight scenario. Each
	// scenario gets a fresh instance of the setup, so no scenario measures what an earlier one
	// left in the process (an in-flight scenario leaves tens of thousands of dead goroutines,
	// which every later GC cycle walks, and slows whichever setup runs next).
	ms := make([]map[string]*measurement, o.Runs) // [run][setup]
	for r := range ms {
		ms[r] = map[string]*measurement{}
		for _, name := range o.Setups {
			ms[r][name] = &measurement{results: map[string]result{}, costs: &costs{}}
		}
	}
	for _, sc := range o.Scenarios {
		for r := range ms {
			for _, name := range o.Setups {
				if err := ctx.Err(); err != nil {
					return err
				}
				err := measure(ctx, o, e, name, sc, r+1, inflight, maxConns, ms[r][name], func(s string) {
					fmt.Fprintf(log, "run %d/%d %-8s %s\n", r+1, o.Runs, name, s)
				})
				if err != nil {
					return err
				}
			}
		}
	}
	report(out, o, inflight, ms, notes)
	return nil
}

// measure starts a fresh instance of one setup, runs one scenario against it, stops it and
// adds what it measured to m.
func measure(ctx context.Context, o *options, e *env, name, sc string, run, inflight, maxConns int, m *measurement, progress func(string)) (err error) {
	t, err := startSetup(ctx, name, e)
	if err != nil {
		return err
	}
	defer func() {
		l, serr := t.stop(context.Background())
		m.ledger = m.ledger.add(l)
		if err == nil && serr != nil {
			err = fmt.Errorf("%s: stop: %w", name, serr)
		}
	}()
	time.Sleep(o.Pause)
	runtime.GC()
	c := newClient(t, maxConns, o.Timeout, m.costs)
	var r result
	switch sc {
	case "max":
		r = closedLoop(ctx, c, t.fastBody, o.Workers, o.Warmup, o.Duration, 0, o.FailPause)
		progress(fmt.Sprintf("max       %8.0f req/s  p50 %-9s p99 %-9s failed %d  %s CPU/request", r.RPS(), fmtMS(r.P50), fmtMS(r.P99), r.Failed, fmtCPU(r.CPUPerRequest())))
	case "rate":
		s := startSched()
		r = openLoop(ctx, c, t.fastBody, o.Rate, o.RateDuration)
		progress(fmt.Sprintf("rate      %8.0f req/s served of %d offered (%d ok)  p50 %-9s p99 %-9s failed %d  %s",
			r.RPS(), r.Offered, r.OK, fmtMS(r.P50), fmtMS(r.P99), r.Failed, s.stop()))
	case "inflight":
		s, base := startMemSampler()
		warmup := max(o.Warmup, o.Delay+time.Second)
		if o.HeapProfile != "" {
			stop := heapProfileAt(warmup+o.Duration/2, fmt.Sprintf("%s.%s.%d.pb.gz", o.HeapProfile, name, run), progress)
			defer stop()
		}
		r = closedLoop(ctx, c, t.slowBody, inflight, warmup, o.Duration, o.Delay, o.FailPause)
		r.HeapBase = base
		r.HeapPeak, r.RSSPeak = s.Stop()
		progress(fmt.Sprintf("inflight  %8.0f req/s  heap +%s (peak %s, process peak RSS %s, peak %d goroutines, stacks %s, outside Go %s, %s before)  p50 %-9s p99 %-9s failed %d",
			r.RPS(), mb(r.HeapPeak-r.HeapBase), mb(r.HeapPeak), mb(r.RSSPeak), s.goroutines, mb(s.stacks), mb(s.foreign), mb(s.foreignBase), fmtMS(r.P50), fmtMS(r.P99), r.Failed))
	case "large":
		r = closedLoop(ctx, c, t.largeBody, o.LargeWorkers, o.Warmup, o.Duration, 0, o.FailPause)
		progress(fmt.Sprintf("large     %8.0f req/s  p50 %-9s p99 %-9s failed %d  %s CPU/request", r.RPS(), fmtMS(r.P50), fmtMS(r.P99), r.Failed, fmtCPU(r.CPUPerRequest())))
	}
	if r.FirstError != "" {
		progress("  first error: " + r.FirstError)
	}
	c.tr.CloseIdleConnections()
	t.idle()
	e.upstreamIdle()
	m.results[sc] = r
	return nil
}

// fdsPerRequest is the sockets one in-flight request holds in this process through a middle box.
func fdsPerRequest(externalUpstream bool) int {
	if externalUpstream {
		return 3
	}
	return 4
}

// maxInflight is how many requests can be in flight with the open-file limit, or 0 if unknown.
func maxInflight(externalUpstream bool, setups []string) int {
	lim := fileLimit()
	if lim == 0 {
		return 0
	}
	per := fdsPerRequest(externalUpstream)
	if len(setups) == 1 && setups[0] == "direct" {
		per = 2
	}
	return max(int(lim)-1024, 64) / per
}
