package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// seedLedger writes a small ledger over two days, two keys and two models, and gives key_a a
// monthly budget of 1.00 with 0.30 spent and 0.05 held this month. Prices (what the keys were
// charged) are 0.0128, 0, 0.27 and 0.0064; the providers' costs 0.01, 0, 0.2 and 0.005.
func seedLedger(t *testing.T, now time.Time) store.Store {
	t.Helper()
	st := openSQLite(t)
	ctx := t.Context()
	budget := money.MustParse("1")
	for i, id := range []string{"key_a", "key_b"} {
		k := &store.Key{ID: id, Name: "name " + id, Prefix: "igw_" + id, Hash: strings.Repeat(string(rune('a'+i)), 64), CreatedAt: now}
		if id == "key_a" {
			k.Budget, k.BudgetPeriod = &budget, store.PeriodMonthly
		}
		if err := st.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	day1 := seedDay(now)
	evs := []store.UsageEvent{
		{RequestID: "r1", Time: day1, KeyID: "key_a", Model: "flux", Operation: "generate", NRequested: 2, NDelivered: 2, Width: 1024, Height: 512, Steps: 4, Cost: money.MustParse("0.0128"), Currency: "CNY", UpstreamCost: money.MustParse("0.01"), UpstreamListCost: money.MustParse("0.0014"), UpstreamCurrency: "USD", Status: store.StatusOK},
		{RequestID: "r2", Time: day1.Add(time.Hour), KeyID: "key_b", Model: "ideogram", Operation: "edit", NRequested: 1, NDelivered: 0, Cost: 0, Currency: "CNY", Status: store.StatusFailed, ErrorKind: "upstream_unavailable"},
		{RequestID: "r3", Time: day1.Add(24 * time.Hour), KeyID: "key_a", Model: "ideogram", Operation: "generate", NRequested: 4, NDelivered: 3, Cost: money.MustParse("0.27"), Currency: "CNY", UpstreamCost: money.MustParse("0.2"), UpstreamListCost: money.MustParse("0.2"), UpstreamCurrency: "CNY", Status: store.StatusOK},
		{RequestID: "r4", Time: day1.Add(25 * time.Hour), KeyID: "key_a", Model: "flux", Operation: "generate", NRequested: 1, NDelivered: 0, Cost: money.MustParse("0.0064"), Currency: "CNY", UpstreamCost: money.MustParse("0.005"), UpstreamListCost: money.MustParse("0.005"), UpstreamCurrency: "CNY", Status: store.StatusIndeterminate, ErrorKind: "upstream_timeout"},
	}
	if err := st.InsertUsage(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// A gateway holds a slice of 0.05 of key_a's monthly budget.
	period := billing.PeriodStart(store.PeriodMonthly, now)
	if _, err := st.ClaimSlice(ctx, store.Slice{ID: "r1/key_a", KeyID: "key_a", Period: store.PeriodMonthly, PeriodStart: period},
		money.MustParse("0.05"), money.MustParse("0.05"), time.Hour); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestReport(t *testing.T) {
	now := time.Now().UTC()
	st := seedLedger(t, now)
	ctx := t.Context()
	day1 := now.Add(-24 * time.Hour).Format("2006-01-02")
	day2 := now.Format("2006-01-02")

	t.Run("events", func(t *testing.T) {
		r, err := Build(ctx, st, Query{}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range r.Events() {
			ids = append(ids, e.RequestID)
		}
		if strings.Join(ids, ",") != "r4,r3,r2,r1" {
			t.Errorf("events %v, want newest first", ids)
		}
		// price 0.0128 + 0 + 0.27 + 0.0064 = 0.2892; cost 0.01 + 0 + 0.2 + 0.005 = 0.215.
		if len(r.Totals) != 1 || r.Totals[0] != (Total{Requests: 4, Images: 5, Cost: money.MustParse("0.215"), Price: money.MustParse("0.2892"),
			Margin: money.MustParse("0.0742"), Currency: "CNY", Failed: 1, Indeterminate: 1}) {
			t.Errorf("totals %+v", r.Totals)
		}
		if e := r.Events()[3]; e.RequestID != "r1" || e.Price != money.MustParse("0.0128") || e.Cost != money.MustParse("0.01") ||
			e.ListCost != money.MustParse("0.0014") || e.ListCurrency != "USD" || e.Currency != "CNY" {
			t.Errorf("event r1 %+v", e)
		}
		if r.Key != nil || r.Truncated {
			t.Errorf("key %+v truncated %v", r.Key, r.Truncated)
		}
	})
	t.Run("limit", func(t *testing.T) {
		r, err := Build(ctx, st, Query{Limit: 2}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Events()) != 2 || !r.Truncated || r.Totals[0].Requests != 4 {
			t.Errorf("%d events, truncated %v, total requests %d", len(r.Events()), r.Truncated, r.Totals[0].Requests)
		}
	})
	t.Run("filters", func(t *testing.T) {
		r, err := Build(ctx, st, Query{Model: "flux", Since: now.Add(-time.Hour * 48)}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Events()) != 2 || r.Totals[0].Price != money.MustParse("0.0192") || r.Totals[0].Cost != money.MustParse("0.015") {
			t.Errorf("flux: %d events, totals %+v", len(r.Events()), r.Totals)
		}
		r, err = Build(ctx, st, Query{Since: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Events()) != 2 {
			t.Errorf("since today: %d events, want 2", len(r.Events()))
		}
	})
	t.Run("by day", func(t *testing.T) {
		r, err := Build(ctx, st, Query{By: store.GroupByDay}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		g := r.Groups()
		if len(g) != 2 || g[0].Group != day1 || g[1].Group != day2 || g[0].Requests != 2 || g[1].Price != money.MustParse("0.2764") ||
			g[1].Cost != money.MustParse("0.205") || g[1].Margin != money.MustParse("0.0714") {
			t.Errorf("by day %+v", g)
		}
	})
	t.Run("by model", func(t *testing.T) {
		r, err := Build(ctx, st, Query{By: store.GroupByModel, KeyID: "key_a"}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		g := r.Groups()
		if len(g) != 2 || g[0].Group != "flux" || g[0].Images != 2 || g[0].Indeterminate != 1 || g[1].Group != "ideogram" || g[1].Price != money.MustParse("0.27") ||
			g[1].Cost != money.MustParse("0.2") || g[1].Margin != money.MustParse("0.07") {
			t.Errorf("by model %+v", g)
		}
	})
	t.Run("key budget", func(t *testing.T) {
		r, err := Build(ctx, st, Query{KeyID: "key_a", By: store.GroupByKey}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		// key_a's spend this month is its ledger rows this month (the ledger is the truth).
		var spent money.Amount
		for _, e := range []struct {
			at   time.Time
			cost string
		}{{seedDay(now), "0.0128"}, {seedDay(now).Add(24 * time.Hour), "0.27"}, {seedDay(now).Add(25 * time.Hour), "0.0064"}} {
			if billing.PeriodStart(store.PeriodMonthly, e.at).Equal(billing.PeriodStart(store.PeriodMonthly, now)) {
				spent += money.MustParse(e.cost)
			}
		}
		k := r.Key
		if k == nil || k.Budget == nil || *k.Budget != money.MustParse("1") || k.Spent != spent ||
			k.Held != money.MustParse("0.05") || k.Remaining == nil || *k.Remaining != money.MustParse("0.95")-spent ||
			k.PeriodStart == nil || !k.PeriodStart.Equal(billing.PeriodStart(store.PeriodMonthly, now)) || k.BudgetPeriod != "monthly" {
			t.Errorf("key budget %+v", k)
		}
		b, _ := json.Marshal(r)
		for _, want := range []string{`"budget":"1"`, `"spent":"` + spent.String() + `"`, `"held":"0.05"`, `"price":"0.2892"`, `"cost":"0.215"`, `"margin":"0.0742"`, `"group":"key_a"`} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("JSON %s lacks %s", b, want)
			}
		}
		r, err = Build(ctx, st, Query{KeyID: "key_b"}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = json.Marshal(r.Key)
		if !bytes.Contains(b, []byte(`"budget":null`)) || !bytes.Contains(b, []byte(`"remaining":null`)) || !bytes.Contains(b, []byte(`"period_start":null`)) {
			t.Errorf("unlimited key JSON %s", b)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Build(ctx, st, Query{KeyID: "key_nope"}, "CNY", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown key: %v", err)
		}
		if _, err := Build(ctx, st, Query{By: "week"}, "CNY", now); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("by week: %v", err)
		}
		if _, err := Build(ctx, st, Query{Limit: -1}, "CNY", now); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("negative limit: %v", err)
		}
	})
	t.Run("render", func(t *testing.T) {
		r, err := Build(ctx, st, Query{KeyID: "key_a"}, "CNY", now)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteTable(&buf, r); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"REQUEST", "PRICE", "COST", "r3", "3/4", "1024x512", "0.27 CNY", "indeterminate (upstream_timeout)",
			"Total: 3 requests, 5 images, cost 0.215 CNY, price 0.2892 CNY, margin 0.0742 CNY (0 failed, 1 indeterminate)", "spent " + r.Key.Spent.String() + " CNY, reserved by gateways 0.05 CNY, remaining " + r.Key.Remaining.String() + " CNY"} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		for _, l := range strings.Split(out, "\n") {
			// r3: price 0.27 CNY, then cost 0.2 CNY.
			if f := strings.Fields(l); len(f) > 1 && f[1] == "r3" && !strings.Contains(strings.Join(f, " "), " 0.27 CNY 0.2 CNY ok") {
				t.Errorf("r3's row lacks its price and cost: %q", l)
			}
		}
		buf.Reset()
		if err := WriteCSV(&buf, r); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "request_id,time,key_id,model") || !strings.Contains(lines[0], ",steps,price,cost,currency,list_cost,list_currency,status,") ||
			!strings.Contains(lines[2], "r3,") || !strings.Contains(lines[2], ",0.27,0.2,CNY,0.2,CNY,ok,") {
			t.Errorf("csv:\n%s", buf.String())
		}
		r, _ = Build(ctx, st, Query{By: store.GroupByModel}, "CNY", now)
		buf.Reset()
		_ = WriteCSV(&buf, r)
		if want := "model,requests,images,cost,price,margin,currency,failed,indeterminate\nflux,2,2,0.015,0.0192,0.0042,CNY,0,1\nideogram,2,3,0.2,0.27,0.07,CNY,1,0\n"; buf.String() != want {
			t.Errorf("csv by model:\n%s\nwant\n%s", buf.String(), want)
		}
		buf.Reset()
		_ = WriteTable(&buf, r)
		if !strings.Contains(buf.String(), "MODEL") || !strings.Contains(buf.String(), "ideogram  2") {
			t.Errorf("table by model:\n%s", buf.String())
		}
	})
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"24h":                       now.Add(-24 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"2026-11-01":                time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T08:00:00+08:00": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-1h", "0s", "0d", "2026-13-01"} {
		if _, err := ParseSince(bad, now); !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("ParseSince(%q) error %v", bad, err)
		}
	}
}

// seedDay is 10:00 UTC yesterday: the seeded ledger's first day.
func seedDay(now time.Time) time.Time {
	return time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC).Add(-24 * time.Hour)
}
