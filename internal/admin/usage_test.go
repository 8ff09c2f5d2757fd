package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/sqlite"
)

func TestUsageHandler(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	budget := money.MustParse("25")
	if err := st.CreateKey(ctx, &store.Key{ID: "key_1", Name: "one", Prefix: "igw_1", Hash: strings.Repeat("a", 64),
		CreatedAt: time.Now(), Budget: &budget, BudgetPeriod: store.PeriodDaily}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.InsertUsage(ctx, []store.UsageEvent{
		{RequestID: "r1", Time: now.Add(-time.Hour), KeyID: "key_1", Model: "m1", Channel: "sf", NRequested: 1, NDelivered: 1, Cost: money.MustParse("0.0064"), Currency: "USD",
			UpstreamCost: money.MustParse("0.005"), UpstreamListCost: money.MustParse("0.036"), UpstreamCurrency: "CNY", Status: store.StatusOK},
		{RequestID: "r2", Time: now.Add(-50 * time.Hour), KeyID: "key_1", Model: "m2", Channel: "ark", NRequested: 2, NDelivered: 2, Cost: money.MustParse("0.74"), Currency: "USD",
			UpstreamCost: money.MustParse("0.8"), UpstreamListCost: money.MustParse("0.8"), UpstreamCurrency: "USD", Status: store.StatusOK},
		{RequestID: "r3", Time: now.Add(-49 * time.Hour), KeyID: "key_1", Model: "m1", Channel: "sf", NRequested: 1, NDelivered: 1, Cost: money.MustParse("0.0064"), Currency: "USD",
			Status: store.StatusOK}, // free upstream: no cost
	}); err != nil {
		t.Fatal(err)
	}
	h := UsageHandler(st, "USD")
	get := func(query string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/admin/v1/usage"+query, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %v: %s", query, err, rec.Body)
		}
		return rec.Code, body
	}

	code, body := get("")
	if code != 200 || len(body["data"].([]any)) != 3 || body["currency"] != "USD" {
		t.Fatalf("all events: %d %v", code, body)
	}
	// price 0.0064 + 0.74 + 0.0064 = 0.7528; cost 0.005 + 0.8 + 0 = 0.805; margin −0.0522.
	totals := body["totals"].([]any)[0].(map[string]any)
	if totals["price"] != "0.7528" || totals["cost"] != "0.805" || totals["margin"] != "-0.0522" || totals["images"] != float64(4) {
		t.Errorf("totals %v", totals)
	}

	code, body = get("?since=24h&key=key_1")
	data := body["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("since 24h: %d %v", code, body)
	}
	if e := data[0].(map[string]any); e["request_id"] != "r1" || e["price"] != "0.0064" || e["cost"] != "0.005" ||
		e["list_cost"] != "0.036" || e["list_currency"] != "CNY" || e["channel"] != "sf" {
		t.Errorf("since 24h: event %v", e)
	}
	// The day's spend is the ledger's: r1, when an hour ago was still today (UTC).
	spent, remaining := "0", "25"
	if now.Add(-time.Hour).Truncate(24 * time.Hour).Equal(now.Truncate(24 * time.Hour)) {
		spent, remaining = "0.0064", "24.9936"
	}
	key := body["key"].(map[string]any)
	if key["budget"] != "25" || key["spent"] != spent || key["held"] != "0" || key["remaining"] != remaining || key["budget_period"] != "daily" {
		t.Errorf("key budget %v", key)
	}

	code, body = get("?by=model")
	groups := body["data"].([]any)
	if code != 200 || len(groups) != 2 || groups[1].(map[string]any)["group"] != "m2" || groups[1].(map[string]any)["price"] != "0.74" ||
		groups[1].(map[string]any)["cost"] != "0.8" || groups[1].(map[string]any)["margin"] != "-0.06" {
		t.Errorf("by model: %d %v", code, body)
	}

	code, body = get("?by=channel")
	groups, _ = body["data"].([]any)
	want := []map[string]any{
		{"group": "ark", "requests": float64(1), "images": float64(2), "cost": "0.8", "price": "0.74", "margin": "-0.06", "currency": "USD",
			"failed": float64(0), "indeterminate": float64(0)},
		// sf: price 0.0064 + 0.0064 = 0.0128, cost 0.005 + 0 = 0.005, margin 0.0078.
		{"group": "sf", "requests": float64(2), "images": float64(2), "cost": "0.005", "price": "0.0128", "margin": "0.0078", "currency": "USD",
			"failed": float64(0), "indeterminate": float64(0)},
	}
	if code != 200 || len(groups) != len(want) || body["filter"].(map[string]any)["by"] != "channel" {
		t.Fatalf("by channel: %d %v", code, body)
	}
	for i, g := range groups {
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("by channel, group %d: %v; want %v", i, g, want[i])
		}
	}

	for _, c := range []struct {
		query, param string
		code         int
	}{
		{"?by=week", "by", 400},
		{"?since=yesterday", "since", 400},
		{"?limit=0", "limit", 400},
		{"?colour=red", "colour", 400},
		{"?key=a&key=b", "key", 400},
		{"?key=key_nope", "key", 404},
	} {
		code, body := get(c.query)
		e, _ := body["error"].(map[string]any)
		if code != c.code || e == nil || e["param"] != c.param {
			t.Errorf("%s: %d %v, want %d naming %s", c.query, code, body, c.code, c.param)
		}
	}
}
