package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/sqlite"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

// seedCostAndPrice writes three events priced 0.01, 0.01 and 0.02 whose providers charge 0.008,
// 0 (the upstream account's free quota) and 0.015, on two channels.
func seedCostAndPrice(t *testing.T, st store.Store) {
	t.Helper()
	at := time.Now().UTC().Add(-time.Hour)
	ev := func(id, channel, price, cost string) store.UsageEvent {
		return store.UsageEvent{RequestID: id, Time: at, KeyID: "key_a", Model: "flux", Provider: "siliconflow", Channel: channel,
			Operation: "generate", NRequested: 1, NDelivered: 1, Cost: money.MustParse(price), Currency: "USD",
			UpstreamCost: money.MustParse(cost), UpstreamListCost: money.MustParse(cost) * 7, UpstreamCurrency: "CNY", Status: store.StatusOK}
	}
	if err := st.InsertUsage(t.Context(), []store.UsageEvent{ev("r1", "sf-main", "0.01", "0.008"), ev("r2", "sf-main", "0.01", "0"),
		ev("r3", "ark", "0.02", "0.015")}); err != nil {
		t.Fatal(err)
	}
}

// testUsageByChannel checks `imagegw usage --by channel` in every format against amounts
// computed by hand: ark price 0.02, cost 0.015, margin 0.005; sf-main price 0.01 + 0.01 = 0.02,
// cost 0.008 + 0 = 0.008, margin 0.012; in all price 0.04, cost 0.023, margin 0.017.
func testUsageByChannel(t *testing.T) {
	rows := map[string]string{}
	table := mustRun(t, "usage", "--by", "channel")
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = strings.Join(f, " ")
		}
	}
	for first, want := range map[string]string{
		"CHANNEL": "CHANNEL REQUESTS IMAGES COST PRICE MARGIN CURRENCY FAILED INDETERMINATE",
		"ark":     "ark 1 1 0.015 0.02 0.005 USD 0 0",
		"sf-main": "sf-main 2 2 0.008 0.02 0.012 USD 0 0",
		"Total:":  "Total: 3 requests, 3 images, cost 0.023 USD, price 0.04 USD, margin 0.017 USD",
	} {
		if rows[first] != want {
			t.Errorf("usage --by channel: row %q; want %q in\n%s", rows[first], want, table)
		}
	}

	if out, want := mustRun(t, "usage", "--by", "channel", "--csv"), "channel,requests,images,cost,price,margin,currency,failed,indeterminate\n"+
		"ark,1,1,0.015,0.02,0.005,USD,0,0\nsf-main,2,2,0.008,0.02,0.012,USD,0,0\n"; out != want {
		t.Errorf("usage --by channel --csv:\n%s\nwant\n%s", out, want)
	}

	out := mustRun(t, "usage", "--by", "channel", "--json")
	var rep struct {
		Filter struct {
			By string `json:"by"`
		} `json:"filter"`
		Data []struct {
			Group, Cost, Price, Margin, Currency string
			Requests, Images                     int
		} `json:"data"`
		Totals []struct{ Cost, Price, Margin, Currency string } `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("usage --by channel --json: %v\n%s", err, out)
	}
	if rep.Filter.By != "channel" || len(rep.Data) != 2 || rep.Data[0].Group != "ark" || rep.Data[0].Cost != "0.015" ||
		rep.Data[0].Price != "0.02" || rep.Data[0].Margin != "0.005" || rep.Data[1].Group != "sf-main" || rep.Data[1].Requests != 2 ||
		rep.Data[1].Cost != "0.008" || rep.Data[1].Price != "0.02" || rep.Data[1].Margin != "0.012" || len(rep.Totals) != 1 ||
		rep.Totals[0].Cost != "0.023" || rep.Totals[0].Price != "0.04" || rep.Totals[0].Margin != "0.017" || rep.Totals[0].Currency != "USD" {
		t.Errorf("usage --by channel --json:\n%s", out)
	}

	// Events show the key's price and the provider's cost.
	if out := mustRun(t, "usage", "--model", "flux", "--csv"); !strings.Contains(out, ",steps,price,cost,currency,list_cost,list_currency,") ||
		!strings.Contains(out, "r3,") || !strings.Contains(out, ",0.02,0.015,USD,0.105,CNY,ok,") {
		t.Errorf("usage --csv:\n%s", out)
	}

	var ue usageError
	if _, err := capture(t, "usage", "--by", "provider"); !errors.As(err, &ue) || !strings.Contains(err.Error(), "channel") {
		t.Errorf("usage --by provider: %v; want a usage error naming channel", err)
	}
}

func TestUsageByChannelOnSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("IMAGEGW_DATA_DIR", dir)
	t.Setenv("IMAGEGW_DATABASE_URL", "")
	t.Setenv("IMAGEGW_CURRENCY", "USD")
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "imagegw.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	seedCostAndPrice(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	testUsageByChannel(t)
}

func TestUsageByChannelOnPostgres(t *testing.T) {
	url := storetest.PostgresURL(t)
	t.Setenv("IMAGEGW_DATA_DIR", t.TempDir())
	t.Setenv("IMAGEGW_DATABASE_URL", url)
	t.Setenv("IMAGEGW_CURRENCY", "USD")
	st, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	seedCostAndPrice(t, st)
	testUsageByChannel(t)
}
