package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/store"
	ledger "github.com/imagegw/imagegw/internal/usage"
)

// usageCmd prints the usage ledger: events (newest first) or sums --by day, model, key or
// channel, as a table, CSV (--csv) or JSON (--json, the admin API's shape). Sums and totals show
// cost (what providers charge), price (what keys were charged) and margin (price − cost). With
// --key it also prints the key's budget position for its current period.
func usageCmd(args []string) error {
	var keyID, model, since, until, by string
	var limit int
	var csvOut, jsonOut bool
	c, fs, err := loadConfig("usage", args, func(fs *flag.FlagSet) {
		fs.StringVar(&keyID, "key", "", "only this key's usage (and show its budget)")
		fs.StringVar(&model, "model", "", "only this public model's usage")
		fs.StringVar(&since, "since", "", "from this long ago (24h, 7d), date (2026-11-01) or RFC 3339 time")
		fs.StringVar(&until, "until", "", "up to (excluding) this date or RFC 3339 time")
		fs.StringVar(&by, "by", "", "sum by day, model, key or channel instead of listing events")
		fs.IntVar(&limit, "limit", ledger.DefaultLimit, "the most events to list")
		fs.BoolVar(&csvOut, "csv", false, "print CSV")
		fs.BoolVar(&jsonOut, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("usage: unexpected argument %q", fs.Arg(0))}
	}
	if csvOut && jsonOut {
		return usageError{"usage: --csv and --json are exclusive"}
	}
	now := time.Now()
	q := ledger.Query{KeyID: keyID, Model: model, By: by, Limit: limit}
	if limit <= 0 {
		return usageError{"usage: --limit must be positive"}
	}
	if q.Since, err = ledger.ParseSince(since, now); err != nil {
		return usageError{err.Error()}
	}
	if until != "" {
		// A duration means "until that long ago", like --since.
		if q.Until, err = ledger.ParseSince(until, now); err != nil {
			return usageError{err.Error()}
		}
	}
	if _, err := ledger.ParseBy(by); err != nil {
		return usageError{err.Error()}
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := ledger.Build(ctx, st, q, c.Billing.Currency, now)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no key with ID %q", keyID)
		}
		return err
	}
	switch {
	case jsonOut:
		return printJSON(r)
	case csvOut:
		return ledger.WriteCSV(os.Stdout, r)
	}
	return ledger.WriteTable(os.Stdout, r)
}
