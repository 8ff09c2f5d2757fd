package usage

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteCSV writes the report's rows as CSV with a header: events, or groups with By. Amounts
// are decimal strings (price: what keys were charged; cost: what providers charge; margin:
// price − cost); times are RFC 3339 in UTC. Totals and the key's budget are not included.
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if r.Filter.By == "" {
		_ = cw.Write([]string{"request_id", "time", "key_id", "model", "provider", "channel", "operation", "n_requested",
			"n_delivered", "width", "height", "steps", "price", "cost", "currency", "list_cost", "list_currency", "status", "error_kind",
			"latency_ms", "upstream_ms", "client_request_id"})
		for _, e := range r.events {
			_ = cw.Write([]string{e.RequestID, e.Time.UTC().Format(time.RFC3339Nano), e.KeyID, e.Model, e.Provider, e.Channel,
				e.Operation, itoa(e.NRequested), itoa(e.NDelivered), itoa(e.Width), itoa(e.Height), itoa(e.Steps),
				e.Price.String(), e.Cost.String(), e.Currency, e.ListCost.String(), e.ListCurrency, e.Status, e.ErrorKind,
				i64(e.LatencyMS), i64(e.UpstreamMS), e.ClientRequestID})
		}
	} else {
		_ = cw.Write([]string{r.Filter.By, "requests", "images", "cost", "price", "margin", "currency", "failed", "indeterminate"})
		for _, g := range r.groups {
			_ = cw.Write([]string{g.Group, i64(g.Requests), i64(g.Images), g.Cost.String(), g.Price.String(), g.Margin.String(),
				g.Currency, i64(g.Failed), i64(g.Indeterminate)})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("usage: write csv: %w", err)
	}
	return nil
}

// WriteTable writes the report for people: the rows, the totals and, for one key, its budget.
// PRICE is what keys were charged, COST what providers charge, MARGIN the difference.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	switch {
	case len(r.events) == 0 && len(r.groups) == 0:
		// No rows: no header either.
	case r.Filter.By == "":
		fmt.Fprintln(tw, "TIME\tREQUEST\tKEY\tMODEL\tOPERATION\tIMAGES\tSIZE\tSTEPS\tPRICE\tCOST\tSTATUS")
		for _, e := range r.events {
			size := "-"
			if e.Width > 0 && e.Height > 0 {
				size = itoa(e.Width) + "x" + itoa(e.Height)
			}
			steps := "-"
			if e.Steps > 0 {
				steps = itoa(e.Steps)
			}
			status := e.Status
			if e.ErrorKind != "" {
				status += " (" + e.ErrorKind + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s %s\t%s %s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.RequestID,
				e.KeyID, e.Model, e.Operation, e.NDelivered, e.NRequested, size, steps, e.Price, e.Currency, e.Cost, e.Currency, status)
		}
	default:
		fmt.Fprintf(tw, "%s\tREQUESTS\tIMAGES\tCOST\tPRICE\tMARGIN\tCURRENCY\tFAILED\tINDETERMINATE\n", strings.ToUpper(r.Filter.By))
		for _, g := range r.groups {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\n", g.Group, g.Requests, g.Images, g.Cost, g.Price, g.Margin, g.Currency,
				g.Failed, g.Indeterminate)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("usage: write table: %w", err)
	}
	if r.Truncated {
		fmt.Fprintf(w, "(showing the newest %d events; use --limit or --by for more)\n", r.Filter.Limit)
	}
	if len(r.Totals) == 0 {
		fmt.Fprintln(w, "No usage matches.")
	}
	for _, t := range r.Totals {
		fmt.Fprintf(w, "\nTotal: %d requests, %d images, cost %s %s, price %s %s, margin %s %s", t.Requests, t.Images,
			t.Cost, t.Currency, t.Price, t.Currency, t.Margin, t.Currency)
		if t.Failed > 0 || t.Indeterminate > 0 {
			fmt.Fprintf(w, " (%d failed, %d indeterminate)", t.Failed, t.Indeterminate)
		}
		fmt.Fprintln(w)
	}
	if k := r.Key; k != nil {
		budget, remaining := "unlimited", "unlimited"
		if k.Budget != nil {
			budget = k.Budget.String() + " " + k.Currency
		}
		if k.Remaining != nil {
			remaining = k.Remaining.String() + " " + k.Currency
		}
		since := "all time"
		if k.PeriodStart != nil {
			since = "since " + k.PeriodStart.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "\nKey %s (%s): budget %s %s (%s): spent %s %s, reserved by gateways %s %s, remaining %s\n",
			k.ID, k.Name, budget, k.BudgetPeriod, since, k.Spent, k.Currency, k.Held, k.Currency, remaining)
	}
	return nil
}

func itoa(n int) string  { return strconv.Itoa(n) }
func i64(n int64) string { return strconv.FormatInt(n, 10) }
