package usage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// DefaultLimit is how many events a report lists when no limit is given.
const DefaultLimit = 100

// MaxLimit is the most events one report lists.
const MaxLimit = 10000

// ErrInvalidQuery wraps every problem with a query's values, for callers that map it to a 400.
var ErrInvalidQuery = errors.New("invalid usage query")

// Reader is the part of store.Store reports read.
type Reader interface {
	ListUsage(ctx context.Context, f store.UsageFilter, limit int) ([]store.UsageEvent, error)
	SumUsage(ctx context.Context, f store.UsageFilter, groupBy string) ([]store.UsageGroup, error)
	Key(ctx context.Context, id string) (*store.Key, error)
	Balance(ctx context.Context, keyID, period string, periodStart time.Time) (store.Balance, error)
}

// Query selects a report: events (By empty) or sums by day, model, key or channel.
type Query struct {
	KeyID string
	Model string
	// Since is inclusive and Until exclusive; zero means unbounded.
	Since, Until time.Time
	// By is "", store.GroupByDay, store.GroupByModel, store.GroupByKey or store.GroupByChannel.
	By string
	// Limit caps the events listed (0: DefaultLimit); sums are never capped.
	Limit int
}

// ParseSince reads a report's lower time bound: a duration back from now ("24h", "90m", and
// "7d" for days), a date ("2026-11-01", UTC midnight) or an RFC 3339 time. Empty means none.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n <= 100000 {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: since %q must be a positive duration", ErrInvalidQuery, s)
		}
		return now.Add(-d).UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: since %q is not a duration (24h, 7d), a date (2026-11-01) or an RFC 3339 time", ErrInvalidQuery, s)
}

// ParseBy checks a grouping: "", "day", "model", "key" or "channel".
func ParseBy(s string) (string, error) {
	switch s {
	case "", store.GroupByDay, store.GroupByModel, store.GroupByKey, store.GroupByChannel:
		return s, nil
	}
	return "", fmt.Errorf("%w: by %q is not day, model, key or channel", ErrInvalidQuery, s)
}

// Event is one ledger row as reports show it; amounts are decimal strings in JSON. Price is what
// the key was charged and Cost what the provider charges the operator, both in Currency (the
// deployment's); ListCost is Cost in the provider's own currency, ListCurrency.
type Event struct {
	RequestID  string       `json:"request_id"`
	Time       time.Time    `json:"time"`
	KeyID      string       `json:"key_id"`
	Model      string       `json:"model"`
	Provider   string       `json:"provider"`
	Channel    string       `json:"channel"`
	Operation  string       `json:"operation"`
	NRequested int          `json:"n_requested"`
	NDelivered int          `json:"n_delivered"`
	Width      int          `json:"width"`
	Height     int          `json:"height"`
	Steps      int          `json:"steps"`
	Price      money.Amount `json:"price"`
	Cost       money.Amount `json:"cost"`
	Currency   string       `json:"currency"`
	ListCost   money.Amount `json:"list_cost"`
	// ListCurrency is the provider's currency; empty for an unpriced model.
	ListCurrency string `json:"list_currency,omitempty"`
	Status       string `json:"status"`
	ErrorKind    string `json:"error_kind"`
	LatencyMS    int64  `json:"latency_ms"`
	UpstreamMS   int64  `json:"upstream_ms"`
	// ClientRequestID is the id the client sent with the request, if any (a label, not unique).
	ClientRequestID string `json:"client_request_id,omitempty"`
}

func toEvent(e store.UsageEvent) Event {
	return Event{RequestID: e.RequestID, Time: e.Time, KeyID: e.KeyID, Model: e.Model, Provider: e.Provider, Channel: e.Channel,
		Operation: e.Operation, NRequested: e.NRequested, NDelivered: e.NDelivered, Width: e.Width, Height: e.Height, Steps: e.Steps,
		Price: e.Cost, Cost: e.UpstreamCost, Currency: e.Currency, ListCost: e.UpstreamListCost, ListCurrency: e.UpstreamCurrency,
		Status: e.Status, ErrorKind: e.ErrorKind, LatencyMS: e.LatencyMS, UpstreamMS: e.UpstreamMS, ClientRequestID: e.ClientRequestID}
}

// Group is one aggregate row: the requests of one day, model, key or channel in one currency.
// Cost is what the providers charge the operator for them, Price what the keys were charged
// (their budgets' spend), and Margin is Price − Cost (negative when sold at a loss).
type Group struct {
	Group         string       `json:"group"`
	Requests      int64        `json:"requests"`
	Images        int64        `json:"images"`
	Cost          money.Amount `json:"cost"`
	Price         money.Amount `json:"price"`
	Margin        money.Amount `json:"margin"`
	Currency      string       `json:"currency"`
	Failed        int64        `json:"failed"`
	Indeterminate int64        `json:"indeterminate"`
}

// Total sums every matching event of one currency (not only the events listed); its amounts
// are a Group's.
type Total struct {
	Requests      int64        `json:"requests"`
	Images        int64        `json:"images"`
	Cost          money.Amount `json:"cost"`
	Price         money.Amount `json:"price"`
	Margin        money.Amount `json:"margin"`
	Currency      string       `json:"currency"`
	Failed        int64        `json:"failed"`
	Indeterminate int64        `json:"indeterminate"`
}

// KeyBudget is one key's budget position in its current budget period.
type KeyBudget struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Budget       *money.Amount `json:"budget"` // null: unlimited
	BudgetPeriod string        `json:"budget_period"`
	// PeriodStart is null for a total (never resetting) budget.
	PeriodStart *time.Time   `json:"period_start"`
	Spent       money.Amount `json:"spent"`
	// Held is what gateways reserve for the key (their budget slices), spent or not yet.
	Held      money.Amount  `json:"held"`
	Remaining *money.Amount `json:"remaining"` // null: unlimited
	Currency  string        `json:"currency"`
}

// Filter echoes the query a report answers.
type Filter struct {
	Key   string     `json:"key,omitempty"`
	Model string     `json:"model,omitempty"`
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
	By    string     `json:"by,omitempty"`
	Limit int        `json:"limit,omitempty"`
}

// Report answers a Query. Data holds []Event (newest first) or, with By, []Group (ordered by
// group, then currency).
type Report struct {
	Object   string  `json:"object"` // "usage_report"
	Currency string  `json:"currency"`
	Filter   Filter  `json:"filter"`
	Data     any     `json:"data"`
	Totals   []Total `json:"totals"`
	// Truncated is set when more events matched than Limit.
	Truncated bool       `json:"truncated,omitempty"`
	Key       *KeyBudget `json:"key,omitempty"`

	events []Event
	groups []Group
}

// Events are the listed events (without By).
func (r *Report) Events() []Event { return r.events }

// Groups are the aggregate rows (with By).
func (r *Report) Groups() []Group { return r.groups }

// Build runs q against the ledger. currency is the deployment currency (budgets are kept in
// it). With q.KeyID, the key's budget position is included; an unknown key is an error
// wrapping store.ErrNotFound.
func Build(ctx context.Context, st Reader, q Query, currency string, now time.Time) (*Report, error) {
	by, err := ParseBy(q.By)
	if err != nil {
		return nil, err
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("%w: limit must not be negative", ErrInvalidQuery)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	r := &Report{Object: "usage_report", Currency: currency, Filter: Filter{Key: q.KeyID, Model: q.Model, By: by}, Totals: []Total{}}
	if !q.Since.IsZero() {
		t := q.Since.UTC()
		r.Filter.Since = &t
	}
	if !q.Until.IsZero() {
		t := q.Until.UTC()
		r.Filter.Until = &t
	}
	if q.KeyID != "" {
		if r.Key, err = keyBudget(ctx, st, q.KeyID, currency, now); err != nil {
			return nil, err
		}
	}
	f := store.UsageFilter{KeyID: q.KeyID, Model: q.Model, Since: q.Since, Until: q.Until}
	sumBy := by
	if by == "" {
		sumBy = store.GroupByModel // for the totals
		r.Filter.Limit = q.Limit
		evs, err := st.ListUsage(ctx, f, q.Limit+1)
		if err != nil {
			return nil, fmt.Errorf("usage report: list events: %w", err)
		}
		if len(evs) > q.Limit {
			evs, r.Truncated = evs[:q.Limit], true
		}
		r.events = make([]Event, len(evs))
		for i, e := range evs {
			r.events[i] = toEvent(e)
		}
		r.Data = r.events
	}
	groups, err := st.SumUsage(ctx, f, sumBy)
	if err != nil {
		return nil, fmt.Errorf("usage report: sum by %s: %w", sumBy, err)
	}
	totals := map[string]*Total{}
	for _, g := range groups {
		t := totals[g.Currency]
		if t == nil {
			t = &Total{Currency: g.Currency}
			totals[g.Currency] = t
		}
		t.Requests += g.Requests
		t.Images += g.Images
		t.Cost += g.UpstreamCost
		t.Price += g.Cost
		t.Margin += g.Cost - g.UpstreamCost
		t.Failed += g.Failed
		t.Indeterminate += g.Indeterminate
	}
	for _, t := range totals {
		r.Totals = append(r.Totals, *t)
	}
	sort.Slice(r.Totals, func(i, j int) bool { return r.Totals[i].Currency < r.Totals[j].Currency })
	if by != "" {
		r.groups = make([]Group, len(groups))
		for i, g := range groups {
			r.groups[i] = Group{Group: g.Group, Requests: g.Requests, Images: g.Images, Cost: g.UpstreamCost, Price: g.Cost,
				Margin: g.Cost - g.UpstreamCost, Currency: g.Currency, Failed: g.Failed, Indeterminate: g.Indeterminate}
		}
		r.Data = r.groups
	}
	return r, nil
}

// keyBudget reads a key's budget position for its current period.
func keyBudget(ctx context.Context, st Reader, id, currency string, now time.Time) (*KeyBudget, error) {
	k, err := st.Key(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("usage report: key %s: %w", id, err)
	}
	period := k.BudgetPeriod
	if period == "" {
		period = store.PeriodTotal
	}
	start := billing.PeriodStart(period, now)
	b, err := st.Balance(ctx, id, period, start)
	if err != nil {
		return nil, fmt.Errorf("usage report: balance of key %s: %w", id, err)
	}
	kb := &KeyBudget{ID: k.ID, Name: k.Name, Budget: b.Budget, BudgetPeriod: period, Spent: b.Spent, Held: b.Held, Currency: currency}
	if !start.IsZero() {
		kb.PeriodStart = &start
	}
	if rem, ok := billing.Remaining(b); ok {
		kb.Remaining = &rem
	}
	return kb, nil
}
