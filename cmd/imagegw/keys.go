package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagegw/imagegw/internal/admin"
	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// keyFlags are the flags of keys create and keys update; they carry the admin API's field names.
type keyFlags struct {
	set                                     map[string]bool
	name, models, budget, period, markup    string
	expires                                 time.Duration
	rpm, ipm, mppm, concurrency             int
	mapNearest, noExpiry, noBudget, jsonOut bool
	noMarkup                                bool
}

func (f *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "a `name` for the key")
	fs.StringVar(&f.models, "models", "", "comma-separated `models` the key may use (default: all)")
	fs.Var(durationFlag{&f.expires}, "expires", "expire the key after this long: a `duration` like 30d or 12h")
	fs.BoolVar(&f.noExpiry, "no-expiry", false, "remove the key's expiry (update)")
	fs.StringVar(&f.budget, "budget", "", "budget `amount` in the deployment currency (e.g. 25.00)")
	fs.BoolVar(&f.noBudget, "no-budget", false, "remove the key's budget (update)")
	fs.StringVar(&f.markup, "markup", "", "the key pays the provider's cost × this `factor` (e.g. 1.2), instead of the model's or the deployment's markup")
	fs.BoolVar(&f.noMarkup, "no-markup", false, "remove the key's own markup (update)")
	fs.StringVar(&f.period, "budget-period", "", "budget `period`: total (default), daily or monthly")
	fs.IntVar(&f.rpm, "rpm", 0, "requests per minute (0 = unlimited; default: the configured rate_limit)")
	fs.IntVar(&f.ipm, "ipm", 0, "images per minute (0 = unlimited)")
	fs.IntVar(&f.mppm, "mppm", 0, "megapixels per minute (0 = unlimited)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "requests in flight (0 = unlimited)")
	fs.BoolVar(&f.mapNearest, "map-nearest", false, "map unsupported sizes to the nearest supported one by default")
	fs.BoolVar(&f.jsonOut, "json", false, "print JSON (the admin API's shape)")
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
	if f.set["markup"] {
		a, err := money.Parse(f.markup)
		if err != nil {
			return out, fmt.Errorf("--markup %q is not a decimal factor such as 1.2", f.markup)
		}
		out.Markup = &a
	}
	out.ClearMarkup = f.noMarkup
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
	// "keys update ID --flags": the ID may come before the flags.
	sub, posID, rest, err := subcommand("keys", args)
	if err != nil {
		return err
	}
	var kf keyFlags
	c, fs, err := loadConfig("keys "+sub, rest, func(fs *flag.FlagSet) {
		if sub == "create" || sub == "update" {
			kf.register(fs)
		} else {
			fs.BoolVar(&kf.jsonOut, "json", false, "print JSON (the admin API's shape)")
		}
	})
	if err != nil {
		return err
	}
	arg := func() (string, error) {
		ids := operands(posID, fs)
		if len(ids) != 1 {
			return "", usageError{fmt.Sprintf("keys %s: want exactly one key ID", sub)}
		}
		id := ids[0]
		if admin.CheckID("id", id) != nil {
			return "", usageError{fmt.Sprintf("keys %s: a key ID is printable text of at most %d bytes", sub, admin.MaxIDLen)}
		}
		return id, nil
	}
	// Arguments and flags are checked before the store is opened.
	var id string
	var f admin.Fields
	switch sub {
	case "create", "list":
		if extra := operands(posID, fs); len(extra) > 0 {
			if sub == "create" {
				return usageError{"keys create: unexpected argument; give the name with --name"}
			}
			return usageError{fmt.Sprintf("keys list: unexpected argument %q", extra[0])}
		}
	default:
		if id, err = arg(); err != nil {
			return err
		}
	}
	if sub == "create" || sub == "update" {
		if f, err = kf.fields(fs); err != nil {
			return usageError{"keys " + sub + ": " + err.Error()}
		}
		if sub == "create" && (f.Name == nil || *f.Name == "") {
			return usageError{"keys create: --name is required"}
		}
		if f.Models != nil && len(*f.Models) > 0 {
			if err := checkModels(sub, c, *f.Models); err != nil {
				return err
			}
		}
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	switch sub {
	case "create":
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
		k, err := st.Key(ctx, id)
		if err != nil {
			return notFound(id, err)
		}
		if kf.jsonOut {
			return printJSON(admin.View(k, now))
		}
		return writeKey(os.Stdout, admin.View(k, now), c.Billing.Currency)
	case "update":
		k, err := st.UpdateKey(ctx, id, f.Update())
		if err != nil {
			return notFound(id, err)
		}
		if kf.jsonOut {
			return printJSON(admin.View(k, now))
		}
		fmt.Printf("Updated key %s.\n\n", id)
		return writeKey(os.Stdout, admin.View(k, now), c.Billing.Currency)
	case "revoke":
		if err := st.RevokeKey(ctx, id, now.UTC()); err != nil {
			return notFound(id, err)
		}
		if kf.jsonOut {
			k, err := st.Key(ctx, id)
			if err != nil {
				return notFound(id, err)
			}
			return printJSON(admin.View(k, now))
		}
		fmt.Printf("Revoked key %s. Gateways stop accepting it within %s.\n", id, c.Limits.KeyCacheTTL.D())
		return nil
	}
	return usageError{fmt.Sprintf("keys: unknown subcommand %q (%s)", sub, strings.Join(subcommands["keys"], ", "))}
}

// writeKey prints one key for people: a field a line.
func writeKey(w io.Writer, v admin.KeyView, currency string) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	limit := func(p *int) string {
		switch {
		case p == nil:
			return "default"
		case *p == 0:
			return "unlimited"
		}
		return strconv.Itoa(*p)
	}
	models, budget, exp, revoked, nearest := "all", "none", "never", "-", "default"
	if len(v.Models) > 0 {
		models = strings.Join(v.Models, ", ")
	}
	if v.Budget != nil {
		budget = *v.Budget + " " + currency + " " + v.BudgetPeriod
	}
	if v.ExpiresAt != nil {
		exp = v.ExpiresAt.Format(time.RFC3339)
	}
	if v.RevokedAt != nil {
		revoked = v.RevokedAt.Format(time.RFC3339)
	}
	if v.MapNearest != nil {
		nearest = strconv.FormatBool(*v.MapNearest)
	}
	markup := "default (the model's or the deployment's)"
	if v.Markup != nil {
		markup = "× " + *v.Markup + " of the provider's cost"
	}
	for _, row := range [][2]string{
		{"ID", v.ID}, {"Name", v.Name}, {"Prefix", v.Prefix + "…"}, {"Status", v.Status}, {"Models", models},
		{"Budget", budget}, {"Markup", markup}, {"Expires", exp},
		{"Limits", fmt.Sprintf("rpm %s, ipm %s, mppm %s, concurrency %s", limit(v.RPM), limit(v.IPM), limit(v.MPPM), limit(v.Concurrency))},
		{"Map nearest", nearest}, {"Created", v.CreatedAt.Format(time.RFC3339)}, {"Revoked", revoked},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

// checkModels refuses model names the configured catalog does not serve (built as serve builds
// it), naming the nearest known ones.
func checkModels(sub string, c *config.Config, models []string) error {
	_, cat, err := app.BuildCatalog(c, nil, nil)
	if err != nil {
		return fmt.Errorf("cannot check --models against the configured catalog: %w", err)
	}
	// Names a client sends: the listed ones (bare ids and aliases); "<channel>/<id>" and
	// "<type>/<id>" are suggested only for a name written that way.
	var listed, qualified []string
	seen := map[string]bool{}
	for _, e := range cat.List() {
		listed = append(listed, e.Name)
		seen[e.Name] = true
	}
	for _, e := range cat.List() {
		for _, n := range qualifiedNames(e) {
			if !seen[n] {
				seen[n] = true
				qualified = append(qualified, n)
			}
		}
	}
	var problems []string
	for _, m := range models {
		if _, err := cat.Lookup(m); err == nil {
			continue
		}
		names := listed
		if strings.Contains(m, "/") {
			names = append(append([]string{}, listed...), qualified...)
		}
		if near := nearest(m, names, 4); len(near) > 0 {
			problems = append(problems, fmt.Sprintf("unknown model %q (did you mean %s?)", m, strings.Join(near, ", ")))
		} else {
			problems = append(problems, fmt.Sprintf("unknown model %q", m))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	msg := "keys " + sub + ": --models: " + strings.Join(problems, "; ")
	if !strings.Contains(msg, "did you mean") {
		known := listed
		if len(known) > 8 {
			known = append(known[:8:8], "…")
		}
		msg += " (known: " + strings.Join(known, ", ") + ")"
	}
	return usageError{msg}
}

// qualifiedNames are the "<channel>/<id>" and "<type>/<id>" names of an entry's routes.
func qualifiedNames(e *catalog.Entry) []string {
	var out []string
	for _, r := range e.Routes {
		out = append(out, r.Channel+"/"+r.Model.ID, r.Type+"/"+r.Model.ID)
	}
	return out
}

// nearest returns up to n of names closest to s: by edit distance (case-insensitive, at most 2
// or a quarter of s), or containing s or contained in it.
func nearest(s string, names []string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	ls := strings.ToLower(s)
	var cs []cand
	for _, name := range names {
		ln := strings.ToLower(name)
		d := editDistance(ls, ln)
		switch {
		case d <= max(2, len(ls)/4):
		case len(ls) >= 3 && (strings.Contains(ln, ls) || strings.Contains(ls, ln)):
			d = max(len(ls), len(ln))
		default:
			continue
		}
		cs = append(cs, cand{name, d})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for _, c := range cs {
		if len(out) == n {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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
