package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/store"
)

// errPositionsDiffer makes `budgets reconcile` exit 1 when it found (and did not fix)
// differences, so scripts and cron jobs notice.
var errPositionsDiffer = errors.New("budget positions differ from the ledger; run with --fix to rewrite them from the ledger")

// budgets runs `imagegw budgets reconcile [--key ID] [--fix]`: every budget position (a key's
// spend per day, month and in total) is the ledger's sum, kept in the same transaction as the
// ledger rows. Reconcile recomputes them from the ledger and reports any difference; --fix
// rewrites the positions from the ledger (briefly locking out ledger writes while it does).
func budgets(args []string) error {
	if len(args) == 0 || args[0] != "reconcile" {
		return usageError{"budgets: the subcommand is reconcile"}
	}
	var keyID string
	var fix bool
	c, fs, err := loadConfig("budgets reconcile", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&keyID, "key", "", "only this key (default: every key)")
		fs.BoolVar(&fix, "fix", false, "rewrite the positions that differ from the ledger")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("budgets reconcile: unexpected argument %q", fs.Arg(0))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := app.OpenStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	diffs, err := st.ReconcileSpend(ctx, keyID, fix)
	if err != nil {
		return err
	}
	if len(diffs) == 0 {
		fmt.Println("every budget position equals the ledger")
		return nil
	}
	writeDiffs(diffs)
	if fix {
		fmt.Printf("%d positions rewritten from the ledger\n", len(diffs))
		return nil
	}
	return errPositionsDiffer
}

func writeDiffs(diffs []store.SpendDiff) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tPERIOD\tSTART\tRECORDED\tLEDGER\tDIFFERENCE")
	for _, d := range diffs {
		start := "-"
		if !d.PeriodStart.IsZero() {
			start = d.PeriodStart.Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.KeyID, d.Period, start, d.Recorded, d.Ledger, d.Recorded-d.Ledger)
	}
	_ = tw.Flush()
}
