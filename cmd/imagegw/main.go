// Command imagegw is the image-generation gateway: `serve` runs it; `migrate`, `keys`, `usage`,
// `budgets reconcile` and `channels` manage its store; `config` checks the configuration as
// `serve` does and prints it with secrets redacted.
//
// Every command and subcommand takes --help (or -h), which prints its help on stdout and exits 0.
// A mistake on the command line prints one line and a hint on stderr and exits 2; a failure
// while running exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `imagegw — an OpenAI-compatible image-generation gateway

Usage:
  imagegw serve   [--config FILE] [--no-bootstrap]   run the gateway
  imagegw migrate [--config FILE]                    apply database migrations
  imagegw keys create --name NAME [--models a,b] [--expires 30d] [--budget 25.00 --budget-period monthly]
                      [--rpm N --ipm N --mppm N --concurrency N] [--map-nearest] [--json]
  imagegw keys list | show ID | update ID [flags] | revoke ID   [--json]
  imagegw usage [--key ID] [--model M] [--since 7d] [--by GROUP] [--csv|--json]
  imagegw budgets reconcile [--key ID] [--fix] [--json]   check budget positions against the ledger
  imagegw channels list [--gateway URL] | enable NAME | disable NAME   [--json]
  imagegw config  [--config FILE]                    check the configuration as serve does and print it (secrets redacted)
  imagegw version

Run 'imagegw COMMAND --help' (e.g. 'imagegw keys create --help') for a command's flags.
Durations are written 90s, 15m, 12h or 7d. Output is for people by default; --json prints JSON.
Configuration: a YAML file (--config, or IMAGEGW_CONFIG) and IMAGEGW_* environment variables; see README.md.
`

// helps is the help of every command that parses flags, by its path; its flags follow it.
var helps = map[string]string{
	"serve": `Usage: imagegw serve [--config FILE] [--no-bootstrap]

Run the gateway. It listens on addr (default 127.0.0.1:8080) and, when the store holds no API key
yet, creates one and prints it once with a request to paste. SIGHUP (or POST /admin/v1/reload)
reloads the configuration: checked first (on any problem the running one stays and every problem
is logged), then applied without dropping requests in flight; settings that need a restart are
logged and keep their running value. SIGTERM or SIGINT drains and stops it.
`,
	"migrate": `Usage: imagegw migrate [--config FILE]

Apply the embedded database migrations to the configured store (serve applies them itself unless
migrate_on_start is false).
`,
	"config": `Usage: imagegw config [--config FILE]

Load the configuration (file and IMAGEGW_* environment) and check it exactly as serve does,
building the model catalog of every configured channel, then print the effective configuration
as YAML. API keys and the admin token are redacted, as are the passwords in the database and
Redis URLs. Every problem is reported at once; the exit status is 1 when there is any.
`,
	"keys create": `Usage: imagegw keys create --name NAME [flags]

Create an API key and print its secret, which is shown only this once. --models takes the names
GET /v1/models lists (and aliases, or <channel>/<id>); unknown names are refused.
Example: imagegw keys create --name app --models sandbox-image --expires 30d --budget 25.00 --budget-period monthly
`,
	"keys list": `Usage: imagegw keys list [--json]

List every API key (never their secrets).
`,
	"keys show": `Usage: imagegw keys show ID [--json]

Show one API key.
`,
	"keys update": `Usage: imagegw keys update ID [flags]

Change an API key's settings; only the flags given change. --no-expiry and --no-budget remove the
expiry and the budget.
`,
	"keys revoke": `Usage: imagegw keys revoke ID [--json]

Revoke an API key. Gateways stop accepting it within limits.key_cache_ttl.
`,
	"usage": `Usage: imagegw usage [--key ID] [--model M] [--since 7d] [--until DATE] [--by GROUP] [--csv|--json]

Print the usage ledger: events, newest first, or sums (--by). With --key it also prints the
key's budget position. --since and --until take a duration ago (24h, 7d), a date
(2026-11-01) or an RFC 3339 time.
`,
	"channels list": `Usage: imagegw channels list [--gateway URL] [--json]

List the configured channels: type, whether enabled, priority and weight (and their per-model
overrides), and when each was last switched. With --gateway, show a running gateway's live state
of each channel and model instead (closed, open, half_open or disabled; success rate, latency,
calls in flight), from its admin API.
`,
	"channels enable": `Usage: imagegw channels enable NAME [--json]

Switch a channel back on. Every gateway sharing the store follows within routing.switch_poll (2 s).
`,
	"channels disable": `Usage: imagegw channels disable NAME [--json]

Switch a channel off: every gateway sharing the store stops sending it traffic within
routing.switch_poll (2 s). Requests for its models go to their other channels; a model with no
other channel answers 503 upstream_unavailable.
`,
	"budgets reconcile": `Usage: imagegw budgets reconcile [--key ID] [--fix] [--json]

Recompute every key's budget positions (its spend per day, month and in total) from the usage
ledger and report those that differ; --fix rewrites them from the ledger. The exit status is 1
when differences were found and not fixed.
`,
}

// groupHelps is the help of the commands that only dispatch to subcommands.
var groupHelps = map[string]string{
	"keys": `Usage: imagegw keys SUBCOMMAND [ID] [flags]

Manage API keys in the configured store.

Subcommands:
  create --name NAME [flags]   create a key and print its secret once
  list                         list every key
  show ID                      show one key
  update ID [flags]            change a key's name, models, expiry, budget or limits
  revoke ID                    revoke a key

Every subcommand takes --config FILE and --json. Run 'imagegw keys SUBCOMMAND --help' for its flags.
`,
	"channels": `Usage: imagegw channels SUBCOMMAND [NAME] [flags]

Switch upstream channels (providers[] entries) on and off in the store, for every gateway sharing it.

Subcommands:
  list [--gateway URL]   list the channels (with --gateway: a running gateway's live health)
  enable NAME            send the channel traffic again
  disable NAME           send the channel no traffic

Every subcommand takes --config FILE and --json. Run 'imagegw channels SUBCOMMAND --help' for its flags.
`,
	"budgets": `Usage: imagegw budgets reconcile [--key ID] [--fix] [--json]

Subcommands:
  reconcile   check budget positions against the usage ledger (--fix rewrites them)

Run 'imagegw budgets reconcile --help' for its flags.
`,
	"version": `Usage: imagegw version

Print imagegw's version.
`,
}

// subcommands are the known subcommands of the command groups, for errors and hints.
var subcommands = map[string][]string{
	"keys":     {"create", "list", "show", "update", "revoke"},
	"budgets":  {"reconcile"},
	"channels": {"list", "enable", "disable"},
}

var commands = []string{"serve", "migrate", "keys", "usage", "budgets", "channels", "config", "version"}

func main() {
	os.Exit(execute(os.Args[1:], os.Stderr))
}

// execute runs the command line and returns the exit status: 0, 2 for a mistake on the command
// line (one line and a hint on stderr), 1 for a failure while running.
func execute(args []string, stderr io.Writer) int {
	err := run(args)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "imagegw:", firstLine(ue.msg))
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", commandPath(args))
		return 2
	}
	fmt.Fprintln(stderr, "imagegw:", err)
	return 1
}

// firstLine keeps a usage error to one line.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// commandPath is the deepest known command args name, for the hint: "imagegw keys create".
func commandPath(args []string) string {
	path := "imagegw"
	if len(args) == 0 || !slices.Contains(commands, args[0]) {
		return path
	}
	path += " " + args[0]
	if subs := subcommands[args[0]]; len(args) > 1 && slices.Contains(subs, args[1]) {
		path += " " + args[1]
	}
	return path
}

// usageError is a mistake on the command line: exit status 2 and a hint to run --help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errHelpShown is returned once a help text is printed: the command stops and exits 0.
var errHelpShown = fmt.Errorf("help shown: %w", flag.ErrHelp)

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// showGroupHelp prints the help of a command without flags of its own.
func showGroupHelp(name string) error {
	fmt.Print(groupHelps[name])
	return errHelpShown
}

// subcommand picks the subcommand of the command group out of args (a help request shows the
// group's help), then the argument after it when that is not a flag: "keys update ID --flags"
// (Go's flag package stops at the first argument that is not a flag). rest is what is left for
// the flags; operands joins pos to the arguments after them.
func subcommand(group string, args []string) (sub, pos string, rest []string, err error) {
	subs := subcommands[group]
	if len(args) == 0 {
		return "", "", nil, usageError{group + ": missing subcommand (" + strings.Join(subs, ", ") + ")"}
	}
	sub, rest = args[0], args[1:]
	if isHelp(sub) {
		return "", "", nil, showGroupHelp(group)
	}
	if !slices.Contains(subs, sub) {
		return "", "", nil, usageError{fmt.Sprintf("%s: unknown subcommand %q (%s)", group, sub, strings.Join(subs, ", "))}
	}
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = rest[0], rest[1:]
	}
	return sub, pos, rest, nil
}

// operands are a subcommand's positional arguments: pos (see subcommand), if any, then those
// after the flags.
func operands(pos string, fs *flag.FlagSet) []string {
	if pos == "" {
		return fs.Args()
	}
	return append([]string{pos}, fs.Args()...)
}

func run(args []string) error {
	err := dispatch(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(args []string) error {
	if len(args) == 0 {
		return usageError{"missing command (" + strings.Join(commands, ", ") + ")"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest)
	case "migrate":
		return migrate(rest)
	case "keys":
		return keys(rest)
	case "usage":
		return usageCmd(rest)
	case "budgets":
		return budgets(rest)
	case "channels":
		return channels(rest)
	case "config":
		return configCmd(rest)
	case "version", "--version", "-v":
		if len(rest) > 0 {
			if isHelp(rest[0]) && cmd == "version" {
				return showGroupHelp("version")
			}
			return usageError{fmt.Sprintf("version: unexpected argument %q", rest[0])}
		}
		fmt.Println("imagegw", version)
		return nil
	case "help", "--help", "-h", "-help":
		// "imagegw help keys create" is "imagegw keys create --help".
		if len(rest) > 0 {
			return dispatch(append(append([]string{}, rest...), "--help"))
		}
		fmt.Print(usage)
		return errHelpShown
	}
	if strings.HasPrefix(cmd, "-") {
		return usageError{fmt.Sprintf("%s: flags go after the command (%s)", cmd, strings.Join(commands, ", "))}
	}
	return usageError{fmt.Sprintf("unknown command %q (%s)", cmd, strings.Join(commands, ", "))}
}

// parseFlags parses the flags of the command name. --help prints the command's help (helps[name]
// and its flags) on stdout and returns errHelpShown; a bad flag is a usageError of one line.
func parseFlags(name string, args []string, extra func(*flag.FlagSet)) (fs *flag.FlagSet, path string, err error) {
	fs = flag.NewFlagSet("imagegw "+name, flag.ContinueOnError)
	// The flag package's own messages and usage go nowhere: errors are reported in one line by
	// execute, help by printHelp.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&path, "config", os.Getenv("IMAGEGW_CONFIG"), "YAML configuration `file` (default $IMAGEGW_CONFIG; none: defaults and environment)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(name, fs)
			return nil, "", errHelpShown
		}
		return nil, "", usageError{name + ": " + flagError(fs, err)}
	}
	// A --help after the arguments ("keys show ID --help") asks for help too.
	for _, a := range fs.Args() {
		if a == "-h" || a == "-help" || a == "--help" {
			printHelp(name, fs)
			return nil, "", errHelpShown
		}
	}
	return fs, path, nil
}

var (
	undefinedFlagRE = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	badValueRE      = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): (.*)$`)
	needsValueRE    = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// flagError rewords the flag package's errors in the --flag spelling the help uses.
func flagError(fs *flag.FlagSet, err error) string {
	m := err.Error()
	if s := undefinedFlagRE.FindStringSubmatch(m); s != nil {
		return "unknown flag --" + s[1]
	}
	if s := badValueRE.FindStringSubmatch(m); s != nil {
		why := s[3]
		if why == "parse error" {
			why = "not a whole number"
			if f := fs.Lookup(s[2]); f != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					why = "want true or false"
				}
			}
		} else if why == "value out of range" {
			why = "out of range"
		}
		return fmt.Sprintf("--%s %s: %s", s[2], s[1], why)
	}
	if s := needsValueRE.FindStringSubmatch(m); s != nil {
		return "--" + s[1] + " needs a value"
	}
	return m
}

func printHelp(name string, fs *flag.FlagSet) {
	text, ok := helps[name]
	if !ok {
		text = fmt.Sprintf("Usage: imagegw %s [flags]\n", name)
	}
	fmt.Print(text)
	fmt.Println("\nFlags:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		arg, help := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + strings.ToUpper(arg)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			help += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, help)
	})
	_ = tw.Flush()
}

// loadConfig parses the flags of the command name (--config and those extra adds) and loads the
// configuration.
func loadConfig(name string, args []string, extra func(*flag.FlagSet)) (*config.Config, *flag.FlagSet, error) {
	fs, path, err := parseFlags(name, args, extra)
	if err != nil {
		return nil, nil, err
	}
	c, err := config.Load(path, app.Getenv)
	if err != nil {
		return nil, nil, err
	}
	return c, fs, nil
}

// loadChecked is loadConfig with the checks serve makes before it opens anything (see app.Check):
// serve and config use it, so config accepts exactly what serve does. It returns the catalog.
func loadChecked(name string, args []string, extra func(*flag.FlagSet)) (*config.Config, *catalog.Catalog, *flag.FlagSet, error) {
	fs, path, err := parseFlags(name, args, extra)
	if err != nil {
		return nil, nil, nil, err
	}
	var cat *catalog.Catalog
	c, err := config.LoadChecked(path, app.Getenv, func(c *config.Config) (err error) {
		cat, err = app.Check(c)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return c, cat, fs, nil
}

// noArgs refuses positional arguments.
func noArgs(name string, fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(0))}
	}
	return nil
}

func configCmd(args []string) error {
	c, _, fs, err := loadChecked("config", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("config", fs); err != nil {
		return err
	}
	fmt.Print(c.Redacted())
	return nil
}

func serve(args []string) (err error) {
	var noBootstrap bool
	c, _, fs, err := loadChecked("serve", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&noBootstrap, "no-bootstrap", false, "do not create a first API key when there is none")
	})
	if err != nil {
		return err
	}
	if err := noArgs("serve", fs); err != nil {
		return err
	}
	log, err := app.NewLogger(c.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the configuration (the file and the environment), from the start to the end
	// of serve: one arriving while the gateway starts or drains is not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.New(ctx, c, log)
	if err != nil {
		return err
	}
	a.SetSource(fs.Lookup("config").Value.String(), app.Getenv)
	go reloadOnSignal(ctx, a, hup)
	defer func() {
		// Usage events that could not be made durable make the exit code non-zero.
		err = errors.Join(err, a.Close())
	}()
	return a.Run(ctx, func(addr string) {
		if noBootstrap {
			return
		}
		if err := a.Bootstrap(ctx, os.Stderr, publicBase(c, addr)); err != nil {
			log.Sugar().Warnf("could not create the first API key: %v", err)
		}
	})
}

func publicBase(c *config.Config, addr string) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	return app.ListenURL(addr)
}

func migrate(args []string) error {
	c, fs, err := loadConfig("migrate", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs("migrate", fs); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Println("migrations applied")
	return nil
}

// durationFlag is a flag taking a duration in config.ParseDuration's spellings (7d, 12h, 90s).
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := config.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration (like 30s, 15m, 12h or 7d)")
	}
	*f.d = d
	return nil
}
