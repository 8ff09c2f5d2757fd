package usage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// TestReportCostPriceMargin: reports keep what providers charge (cost) and what keys were charged
// (price) apart, and their difference (margin). Amounts computed by hand.
func TestReportCostPriceMargin(t *testing.T) {
	st := openSQLite(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ev := func(id, channel, price, cost string) store.UsageEvent {
		return store.UsageEvent{RequestID: id, Time: now.Add(-time.Hour), KeyID: "key_a", Model: "flux", Provider: "siliconflow",
			Channel: channel, Operation: "generate", NRequested: 1, NDelivered: 1, Cost: money.MustParse(price), Currency: "USD",
			UpstreamCost: money.MustParse(cost), UpstreamListCost: money.MustParse(cost) * 7, UpstreamCurrency: "CNY", Status: store.StatusOK}
	}
	// Three events priced 0.01, 0.01 and 0.02 whose providers charge 0.008, 0 (the upstream
	// account's free quota) and 0.015: price 0.04, cost 0.023, margin 0.017.
	if err := st.InsertUsage(ctx, []store.UsageEvent{ev("r1", "sf-main", "0.01", "0.008"), ev("r2", "sf-main", "0.01", "0"),
		ev("r3", "ark", "0.02", "0.015")}); err != nil {
		t.Fatal(err)
	}
	r, err := Build(ctx, st, Query{By: store.GroupByChannel}, "USD", now)
	if err != nil {
		t.Fatal(err)
	}
	wantTotal := Total{Requests: 3, Images: 3, Cost: money.MustParse("0.023"), Price: money.MustParse("0.04"), Margin: money.MustParse("0.017"), Currency: "USD"}
	if len(r.Totals) != 1 || r.Totals[0] != wantTotal {
		t.Errorf("totals %+v; want %+v", r.Totals, wantTotal)
	}
	wantGroups := []Group{
		// ark: price 0.02, cost 0.015, margin 0.005.
		{Group: "ark", Requests: 1, Images: 1, Cost: money.MustParse("0.015"), Price: money.MustParse("0.02"), Margin: money.MustParse("0.005"), Currency: "USD"},
		// sf-main: price 0.01 + 0.01 = 0.02, cost 0.008 + 0 = 0.008, margin 0.012.
		{Group: "sf-main", Requests: 2, Images: 2, Cost: money.MustParse("0.008"), Price: money.MustParse("0.02"), Margin: money.MustParse("0.012"), Currency: "USD"},
	}
	if !reflect.DeepEqual(r.Groups(), wantGroups) {
		t.Errorf("groups %+v; want %+v", r.Groups(), wantGroups)
	}

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Filter struct{ By string }
		Data   []map[string]any
		Totals []map[string]any
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Filter.By != "channel" || len(doc.Data) != 2 || doc.Data[1]["group"] != "sf-main" || doc.Data[1]["cost"] != "0.008" ||
		doc.Data[1]["price"] != "0.02" || doc.Data[1]["margin"] != "0.012" {
		t.Errorf("JSON by channel: %s", b)
	}
	if tot := doc.Totals[0]; tot["cost"] != "0.023" || tot["price"] != "0.04" || tot["margin"] != "0.017" || tot["requests"] != float64(3) {
		t.Errorf("JSON totals: %s", b)
	}

	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	if want := "channel,requests,images,cost,price,margin,currency,failed,indeterminate\n" +
		"ark,1,1,0.015,0.02,0.005,USD,0,0\nsf-main,2,2,0.008,0.02,0.012,USD,0,0\n"; buf.String() != want {
		t.Errorf("CSV by channel:\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	table := buf.String()
	rows := map[string]string{}
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = strings.Join(f, " ")
		}
	}
	for first, want := range map[string]string{
		"CHANNEL": "CHANNEL REQUESTS IMAGES COST PRICE MARGIN CURRENCY FAILED INDETERMINATE",
		"ark":     "ark 1 1 0.015 0.02 0.005 USD 0 0",
		"sf-main": "sf-main 2 2 0.008 0.02 0.012 USD 0 0",
	} {
		if rows[first] != want {
			t.Errorf("table row %q; want %q in\n%s", rows[first], want, table)
		}
	}
	if !strings.Contains(table, "Total: 3 requests, 3 images, cost 0.023 USD, price 0.04 USD, margin 0.017 USD\n") {
		t.Errorf("table totals:\n%s", table)
	}

	// Events show both amounts, and the provider's in its own currency.
	r, err = Build(ctx, st, Query{}, "USD", now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(r.Events())
	for _, want := range []string{`"request_id":"r3"`, `"price":"0.02","cost":"0.015","currency":"USD","list_cost":"0.105","list_currency":"CNY"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("events JSON lacks %s: %s", want, b)
		}
	}

	// Sold at a loss: price 0.01, cost 0.012, margin −0.002.
	if err := st.InsertUsage(ctx, []store.UsageEvent{ev("r4", "openai", "0.01", "0.012")}); err != nil {
		t.Fatal(err)
	}
	r, err = Build(ctx, st, Query{By: store.GroupByChannel}, "USD", now)
	if err != nil {
		t.Fatal(err)
	}
	if g := r.Groups(); len(g) != 3 || g[1].Group != "openai" || g[1].Margin != money.MustParse("-0.002") {
		t.Errorf("groups %+v; want openai with margin -0.002", g)
	}
	// Totals: price 0.05, cost 0.035, margin 0.015.
	if tot := r.Totals[0]; tot.Price != money.MustParse("0.05") || tot.Cost != money.MustParse("0.035") || tot.Margin != money.MustParse("0.015") {
		t.Errorf("totals %+v", tot)
	}
	buf.Reset()
	_ = WriteTable(&buf, r)
	if !strings.Contains(buf.String(), " -0.002 ") {
		t.Errorf("table lacks the negative margin:\n%s", buf.String())
	}
}

// TestJournalLineKeepsEveryField: an event survives the journal's encoding whole, so a replayed
// event carries everything the live one did (a field added to store.UsageEvent and forgotten in
// the journal's line fails here).
func TestJournalLineKeepsEveryField(t *testing.T) {
	var want store.UsageEvent
	v := reflect.ValueOf(&want).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Struct:
			f.Set(reflect.ValueOf(base))
		default:
			t.Fatalf("field %s of kind %s: teach the test", v.Type().Field(i).Name, f.Kind())
		}
	}
	b, err := json.Marshal(toLine(kindEvent, "", 0, want))
	if err != nil {
		t.Fatal(err)
	}
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	if got := l.event(); !reflect.DeepEqual(got, want) {
		t.Errorf("through the journal:\n got %+v\nwant %+v\nline %s", got, want, b)
	}
	for _, name := range []string{`"upstream_cost":"0.00`, `"upstream_list_cost":"0.00`, `"upstream_currency":"UpstreamCurrency-value"`} {
		if !bytes.Contains(b, []byte(name)) {
			t.Errorf("line lacks %s: %s", name, b)
		}
	}
	// A line written before the upstream cost was recorded replays with none.
	old := `{"request_id":"req_old","time":"2026-11-22T09:30:00Z","key_id":"key_0","model":"m","n_requested":1,"n_delivered":1,"cost":"0.0064","currency":"CNY","status":"ok"}`
	l = line{}
	if err := json.Unmarshal([]byte(old), &l); err != nil {
		t.Fatal(err)
	}
	if e := l.event(); e.Cost != money.MustParse("0.0064") || e.UpstreamCost != 0 || e.UpstreamListCost != 0 || e.UpstreamCurrency != "" {
		t.Errorf("old line: %+v", e)
	}
	// An event without an upstream cost writes no upstream fields.
	b, _ = json.Marshal(toLine(kindEvent, "", 0, store.UsageEvent{RequestID: "r", Cost: 1}))
	if bytes.Contains(b, []byte("upstream_c")) {
		t.Errorf("zero upstream cost written: %s", b)
	}
}

// TestCrashReplayKeepsUpstreamCost: events journaled while the store is down and replayed by
// the next process after a crash land with the provider's cost beside the key's price.
func TestCrashReplayKeepsUpstreamCost(t *testing.T) {
	st := openSQLite(t)
	dir := t.TempDir()
	r := open(t, &flaky{w: st, down: true}, dir, Options{})
	want := map[string]store.UsageEvent{}
	for i := range 5 {
		e := event(i)
		e.UpstreamCost = money.Amount(5000 + i)
		e.UpstreamListCost = money.Amount(36000 + i)
		e.UpstreamCurrency = "CNY"
		if i == 3 { // free upstream: no cost, a price
			e.UpstreamCost, e.UpstreamListCost, e.UpstreamCurrency = 0, 0, ""
		}
		want[e.RequestID] = e
		record(t, r, e)
	}
	crash(r)

	r2 := open(t, st, dir, Options{})
	if err := r2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListUsage(t.Context(), store.UsageFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events in the ledger; want %d", len(evs), len(want))
	}
	for _, got := range evs {
		w := want[got.RequestID]
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", w); g != w {
			t.Errorf("replayed event:\n got %s\nwant %s", g, w)
		}
	}
}
