// Command imagegw is the image-generation gateway: `serve` runs it; `migrate`, `keys`, `usage`
// and `budgets reconcile` manage its store; `config` prints the effective configuration with secrets redacted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `imagegw — an OpenAI-compatible image-generation gateway

Usage:
  imagegw serve   [--config FILE] [--no-bootstrap]   run the gateway
  imagegw migrate [--config FILE]                    apply database migrations
  imagegw keys create --name NAME [--models a,b] [--expires 720h] [--budget 25.00 --budget-period monthly]
                      [--rpm N --ipm N --mppm N --concurrency N] [--map-nearest]
  imagegw keys list | show ID | update ID [flags] | revoke ID
  imagegw usage [--key ID] [--model M] [--since 24h] [--by day|model|key] [--csv]
  imagegw budgets reconcile [--key ID] [--fix]        check budget positions against the ledger
  imagegw config  [--config FILE]                    print the effective configuration (secrets redacted)
  imagegw version

Configuration: a YAML file (--config) and IMAGEGW_* environment variables; see README.md.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "imagegw:", err)
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "imagegw:", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string) error {
	if len(args) == 0 {
		return usageError{"missing command"}
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
	case "config":
		c, _, err := loadConfig("config", rest, nil)
		if err != nil {
			return err
		}
		fmt.Print(c.Redacted())
		return nil
	case "version", "--version", "-v":
		fmt.Println("imagegw", version)
		return nil
	case "help", "--help", "-h":
		fmt.Print(usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func loadConfig(name string, args []string, extra func(*flag.FlagSet)) (*config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", os.Getenv("IMAGEGW_CONFIG"), "YAML configuration file")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, usageError{err.Error()}
	}
	c, err := config.Load(*path, app.Getenv)
	if err != nil {
		return nil, nil, err
	}
	return c, fs, nil
}

func serve(args []string) (err error) {
	var noBootstrap bool
	c, _, err := loadConfig("serve", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&noBootstrap, "no-bootstrap", false, "do not create a first API key when there is none")
	})
	if err != nil {
		return err
	}
	log, err := app.NewLogger(c.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, c, log)
	if err != nil {
		return err
	}
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
	c, _, err := loadConfig("migrate", args, nil)
	if err != nil {
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
