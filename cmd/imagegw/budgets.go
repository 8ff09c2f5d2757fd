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
	switch {
	case len(args) == 0:
		return usageError{"budgets: missing subcommand (reconcile)"}
	case isHelp(args[0]):
		return showGroupHelp("budgets")
	case args[0] != "reconcile":
		return usageError{fmt.Sprintf("budgets: unknown subcommand %q (reconcile)", args[0])}
	}
	var keyID string
	var fix, jsonOut bool
	c, fs, err := loadConfig("budgets reconcile", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&keyID, "key", "", "only this key (default: every key)")
		fs.BoolVar(&fix, "fix", false, "rewrite the positions that differ from the ledger")
		fs.BoolVar(&jsonOut, "json", false, "print JSON: the differences found and whether they were fixed")
	})
	if err != nil {
		return err
	}
	if err := noArgs("budgets reconcile", fs); err != nil {
		return err
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
	if jsonOut {
		if err := printJSON(reconcileJSON(diffs, fix)); err != nil {
			return err
		}
		if len(diffs) > 0 && !fix {
			return errPositionsDiffer
		}
		return nil
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

// reconcileReport is `budgets reconcile --json`: amounts are decimal strings, as in the admin API.
type reconcileReport struct {
	Differences []reconcileDiff `json:"differences"`
	Fixed       bool            `json:"fixed"`
}

type reconcileDiff struct {
	KeyID       string  `json:"key_id"`
	Period      string  `json:"period"`
	PeriodStart *string `json:"period_start"`
	Recorded    string  `json:"recorded"`
	Ledger      string  `json:"ledger"`
	Difference  string  `json:"difference"`
}

func reconcileJSON(diffs []store.SpendDiff, fix bool) reconcileReport {
	out := reconcileReport{Differences: []reconcileDiff{}, Fixed: fix && len(diffs) > 0}
	for _, d := range diffs {
		r := reconcileDiff{KeyID: d.KeyID, Period: d.Period, Recorded: d.Recorded.String(), Ledger: d.Ledger.String(),
			Difference: (d.Recorded - d.Ledger).String()}
		if !d.PeriodStart.IsZero() {
			s := d.PeriodStart.Format(time.DateOnly)
			r.PeriodStart = &s
		}
		out.Differences = append(out.Differences, r)
	}
	return out
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
