package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// keyFlags are the flags of keys create and keys update; they carry the admin API's field names.
type keyFlags struct {
	set                                     map[string]bool
	name, models, budget, period            string
	expires                                 time.Duration
	rpm, ipm, mppm, concurrency             int
	mapNearest, noExpiry, noBudget, jsonOut bool
}

func (f *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "a name for the key")
	fs.StringVar(&f.models, "models", "", "comma-separated models the key may use (default: all)")
	fs.DurationVar(&f.expires, "expires", 0, "expire the key after this long (e.g. 720h)")
	fs.BoolVar(&f.noExpiry, "no-expiry", false, "remove the key's expiry (update)")
	fs.StringVar(&f.budget, "budget", "", "budget in the deployment currency (e.g. 25.00)")
	fs.BoolVar(&f.noBudget, "no-budget", false, "remove the key's budget (update)")
	fs.StringVar(&f.period, "budget-period", "", "total (default), daily or monthly")
	fs.IntVar(&f.rpm, "rpm", 0, "requests per minute (0 = unlimited)")
	fs.IntVar(&f.ipm, "ipm", 0, "images per minute (0 = unlimited)")
	fs.IntVar(&f.mppm, "mppm", 0, "megapixels per minute (0 = unlimited)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "requests in flight (0 = unlimited)")
	fs.BoolVar(&f.mapNearest, "map-nearest", false, "map unsupported sizes to the nearest supported one by default")
	fs.BoolVar(&f.jsonOut, "json", false, "print JSON")
}

// fields converts the flags that were given into admin.Fields.
func (f *keyFlags) fields(fs *flag.FlagSet) (admin.Fields, error) {
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	var out admin.Fields
	if f.set["name"] {
		out.Name = &f.name
	}
	if f.set["models"] {
		ms := []string{}
		for _, m := range strings.Split(f.models, ",") {
			if m = strings.TrimSpace(m); m != "" {
				ms = append(ms, m)
			}
		}
		out.Models = &ms
	}
	if f.set["expires"] {
		if f.expires <= 0 {
			return out, errors.New("--expires must be positive")
		}
		t := time.Now().Add(f.expires).UTC()
		out.ExpiresAt = &t
	}
	out.ClearExpiry = f.noExpiry
	if f.set["budget"] {
		a, err := money.Parse(f.budget)
		if err != nil || a < 0 {
			return out, fmt.Errorf("--budget %q is not a non-negative decimal amount", f.budget)
		}
		out.Budget = &a
	}
	out.ClearBudget = f.noBudget
	if f.set["budget-period"] {
		switch f.period {
		case store.PeriodTotal, store.PeriodDaily, store.PeriodMonthly:
		default:
			return out, fmt.Errorf("--budget-period %q is not total, daily or monthly", f.period)
		}
		out.BudgetPeriod = &f.period
	}
	for _, p := range []struct {
		name string
		v    int
		dst  **int
	}{{"rpm", f.rpm, &out.RPM}, {"ipm", f.ipm, &out.IPM}, {"mppm", f.mppm, &out.MPPM}, {"concurrency", f.concurrency, &out.Concurrency}} {
		if f.set[p.name] {
			if p.v < 0 {
				return out, fmt.Errorf("--%s must not be negative", p.name)
			}
			v := p.v
			*p.dst = &v
		}
	}
	if f.set["map-nearest"] {
		out.MapNearest = &f.mapNearest
	}
	// The admin API's checks: printable names, limits and budgets in range.
	if err := out.Validate(); err != nil {
		var pe *providers.Error
		if errors.As(err, &pe) {
			return out, errors.New(pe.Message)
		}
		return out, err
	}
	return out, nil
}

func keys(args []string) error {
	if len(args) == 0 {
		return usageError{"keys: missing subcommand (create, list, show, update, revoke)"}
	}
	sub, rest := args[0], args[1:]
	// "keys update ID --flags": the ID may come before the flags (Go's flag package stops at the
	// first argument that is not a flag).
	var posID string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		posID, rest = rest[0], rest[1:]
	}
	var kf keyFlags
	c, fs, err := loadConfig("keys "+sub, rest, func(fs *flag.FlagSet) {
		if sub == "create" || sub == "update" {
			kf.register(fs)
		} else {
			fs.BoolVar(&kf.jsonOut, "json", false, "print JSON")
		}
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	arg := func() (string, error) {
		var id string
		switch {
		case posID != "" && fs.NArg() == 0:
			id = posID
		case posID == "" && fs.NArg() == 1:
			id = fs.Arg(0)
		default:
			return "", usageError{fmt.Sprintf("keys %s: want exactly one key ID", sub)}
		}
		if admin.CheckID("id", id) != nil {
			return "", usageError{fmt.Sprintf("keys %s: a key ID is printable text of at most %d bytes", sub, admin.MaxIDLen)}
		}
		return id, nil
	}
	switch sub {
	case "create":
		if posID != "" || fs.NArg() > 0 {
			return usageError{"keys create: unexpected argument; give the name with --name"}
		}
		f, err := kf.fields(fs)
		if err != nil {
			return usageError{err.Error()}
		}
		if f.Name == nil || *f.Name == "" {
			return usageError{"keys create: --name is required"}
		}
		k := &store.Key{}
		f.Apply(k)
		secret, err := auth.Create(ctx, st, k)
		if err != nil {
			return err
		}
		v := admin.View(k, now)
		v.Key = secret
		if kf.jsonOut {
			return printJSON(v)
		}
		fmt.Printf("Created key %s (%s). The secret is shown only this once:\n\n    %s\n\n", k.ID, k.Name, secret)
		return nil
	case "list":
		ks, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		views := make([]admin.KeyView, 0, len(ks))
		for _, k := range ks {
			views = append(views, admin.View(k, now))
		}
		if kf.jsonOut {
			return printJSON(views)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSTATUS\tMODELS\tBUDGET\tEXPIRES\tCREATED")
		for _, v := range views {
			models, budget, exp := "all", "-", "-"
			if len(v.Models) > 0 {
				models = strings.Join(v.Models, ",")
			}
			if v.Budget != nil {
				budget = *v.Budget + " " + c.Billing.Currency + " " + v.BudgetPeriod
			}
			if v.ExpiresAt != nil {
				exp = v.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Prefix, v.Status, models, budget, exp, v.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		id, err := arg()
		if err != nil {
			return err
		}
		k, err := st.Key(ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		return printJSON(admin.View(k, now))
	case "update":
		id, err := arg()
		if err != nil {
			return err
		}
		f, err := kf.fields(fs)
		if err != nil {
			return usageError{err.Error()}
		}
		k, err := st.UpdateKey(ctx, id, f.Update())
		if err != nil {
			return notFound(id, err)
		}
		return printJSON(admin.View(k, now))
	case "revoke":
		id, err := arg()
		if err != nil {
			return err
		}
		if err := st.RevokeKey(ctx, id, now.UTC()); err != nil {
			return notFound(id, err)
		}
		fmt.Printf("Revoked key %s. Gateways stop accepting it within %s.\n", id, c.Limits.KeyCacheTTL.D())
		return nil
	}
	return usageError{fmt.Sprintf("keys: unknown subcommand %q", sub)}
}

func notFound(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no key with ID %q", id)
	}
	return err
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
