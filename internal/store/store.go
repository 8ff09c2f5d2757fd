package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/imagegw/imagegw/internal/money"
)

// Errors every implementation returns (wrapped or not; test with errors.Is).
var (
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique value (key hash, request id) already exists.
	ErrConflict = errors.New("store: conflict")
	// ErrInsufficientBudget: a claim would take spent + reserved over the budget.
	ErrInsufficientBudget = errors.New("store: insufficient budget")
)

// Budget periods.
const (
	PeriodTotal   = "total" // the budget never resets (the default)
	PeriodDaily   = "daily"
	PeriodMonthly = "monthly"
)

// Key is an API key. The secret itself is never stored: only its SHA-256 hash.
type Key struct {
	ID     string // public identifier, "key_…"
	Name   string
	Prefix string // the secret's first characters, for humans to recognise it ("igw_3f9a…")
	Hash   string // hex SHA-256 of the secret
	// Models the key may use (public model names); empty means all.
	Models    []string
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time

	// Budget in the deployment currency; nil means unlimited.
	Budget       *money.Amount
	BudgetPeriod string // PeriodTotal, PeriodDaily or PeriodMonthly ("" = total)

	// Rate limits; nil means the configured default, 0 means unlimited.
	RPM         *int // requests per minute
	IPM         *int // images per minute
	MPPM        *int // megapixels per minute
	Concurrency *int // requests in flight

	// MapNearest is the key's default for nearest-value mapping of sizes and counts; nil means the
	// configured default.
	MapNearest *bool

	// Markup is the key's own markup (×1.5 is 1.5 in micro-units, money.Amount(1_500_000)): it
	// pays the provider's cost × Markup, instead of the model's or the deployment's markup. nil
	// means none of its own; a price set in config is never marked up.
	Markup *money.Amount
}

// KeyUpdate changes some fields of a key; nil fields are left alone. Clear* fields unset a value.
type KeyUpdate struct {
	Name         *string
	Models       *[]string
	ExpiresAt    *time.Time
	ClearExpiry  bool
	Budget       *money.Amount
	ClearBudget  bool
	BudgetPeriod *string
	RPM          *int
	IPM          *int
	MPPM         *int
	Concurrency  *int
	MapNearest   *bool
	Markup       *money.Amount
	ClearMarkup  bool
}

// Apply changes k as u says: set fields replace k's values, Clear* fields unset them (a Clear*
// field wins over its value field). Implementations use it so every store updates keys alike.
func (u KeyUpdate) Apply(k *Key) {
	if u.Name != nil {
		k.Name = *u.Name
	}
	if u.Models != nil {
		k.Models = append([]string(nil), (*u.Models)...)
	}
	if u.ExpiresAt != nil {
		t := *u.ExpiresAt
		k.ExpiresAt = &t
	}
	if u.ClearExpiry {
		k.ExpiresAt = nil
	}
	if u.Budget != nil {
		b := *u.Budget
		k.Budget = &b
	}
	if u.ClearBudget {
		k.Budget = nil
	}
	if u.BudgetPeriod != nil {
		k.BudgetPeriod = *u.BudgetPeriod
	}
	copyInt := func(dst **int, src *int) {
		if src != nil {
			v := *src
			*dst = &v
		}
	}
	copyInt(&k.RPM, u.RPM)
	copyInt(&k.IPM, u.IPM)
	copyInt(&k.MPPM, u.MPPM)
	copyInt(&k.Concurrency, u.Concurrency)
	if u.MapNearest != nil {
		v := *u.MapNearest
		k.MapNearest = &v
	}
	if u.ClearMarkup {
		k.Markup = nil
	}
	if u.Markup != nil {
		v := *u.Markup
		k.Markup = &v
	}
}

// Slice is one gateway replica's share (escrow) of a key's budget for one period: the replica
// claims part of what remains in one atomic statement and spends it from memory, so requests do
// not write to a shared row. The store keeps, per slice, the amount it still reserves: granted,
// minus what was given back, minus the charges of its usage events already in the ledger
// (UsageEvent.Slice). A slice not renewed within its TTL stops counting.
type Slice struct {
	ID          string // unique per replica, key and period
	KeyID       string
	Period      string    // PeriodTotal, PeriodDaily or PeriodMonthly
	PeriodStart time.Time // start of the period (zero for total)
}

// Claim is the answer to ClaimSlice.
type Claim struct {
	// Granted is what the claim added to the slice (0 when refused).
	Granted money.Amount
	// Balance is the key's position after the claim; Held is what all live slices reserve.
	Balance Balance
}

// SpendDiff is one budget position whose running sum disagrees with the ledger.
type SpendDiff struct {
	KeyID       string
	Period      string
	PeriodStart time.Time
	Recorded    money.Amount // key_spend
	Ledger      money.Amount // the sum of the ledger's costs
}

// Balance is a key's budget position for one period.
type Balance struct {
	Budget *money.Amount // nil: unlimited
	// Spent is the sum of the key's charges in the ledger for the period.
	Spent money.Amount
	// Held is what gateways reserve for the key in live slices (escrow), not yet spent.
	Held money.Amount
}

// Usage statuses.
const (
	StatusOK            = "ok"            // delivered (possibly fewer than requested)
	StatusFailed        = "failed"        // nothing delivered, nothing billed
	StatusIndeterminate = "indeterminate" // the upstream may have billed us; reconcile
)

// UsageEvent is one ledger row: one per request.
type UsageEvent struct {
	// RequestID is the gateway's own id for the request (unique; the ledger's key).
	RequestID  string
	Time       time.Time
	KeyID      string
	Model      string // public model name
	Provider   string // provider type
	Channel    string // configured channel name
	Operation  string
	NRequested int
	NDelivered int
	Width      int
	Height     int
	Steps      int
	// Cost is what the key was charged (its price), in Currency (the deployment's currency);
	// budgets and key_spend add it up. The column keeps its wave-1 name.
	Cost     money.Amount
	Currency string
	// UpstreamCost is what the provider charges the operator for the request, in Currency;
	// UpstreamListCost the same in the provider's own currency, UpstreamCurrency. Zero when
	// unpriced, or free from the upstream account's free quota.
	UpstreamCost     money.Amount
	UpstreamListCost money.Amount
	UpstreamCurrency string
	Status           string // StatusOK, StatusFailed, StatusIndeterminate
	ErrorKind        string
	LatencyMS        int64 // gateway latency, whole request
	UpstreamMS       int64 // time spent waiting on the upstream
	// ClientRequestID is the id the client sent (X-Client-Request-Id or X-Request-Id), if any:
	// a label for correlation, not unique.
	ClientRequestID string
	// Slice is the budget slice the cost was charged against ("" for keys without a budget).
	// Writing the event moves its cost from the slice to the key's spend.
	Slice string
}

// UsageFilter selects ledger rows; zero fields match everything. Since is inclusive and Until
// exclusive, so consecutive windows never count an event twice.
type UsageFilter struct {
	KeyID string
	Model string
	Since time.Time
	Until time.Time
}

// UsageGroup is one aggregate row of a usage query. SumUsage returns one row per group and
// currency (one per group in a single-currency deployment), ordered by group, then currency.
type UsageGroup struct {
	Group    string // the day ("2026-11-22"), model, key id or channel, per GroupBy
	Requests int64
	Images   int64 // delivered
	// Cost is the sum of the events' Cost: what the keys were charged (their price).
	Cost money.Amount
	// UpstreamCost is the sum of the events' UpstreamCost: what the providers charge the
	// operator, in Currency.
	UpstreamCost  money.Amount
	Currency      string
	Failed        int64
	Indeterminate int64
}

// GroupBy values for SumUsage.
const (
	GroupByDay     = "day"
	GroupByModel   = "model"
	GroupByKey     = "key"
	GroupByChannel = "channel" // the configured channel that served the request
)

// Store is everything the gateway persists.
type Store interface {
	// Migrate applies the embedded migrations; it is idempotent.
	Migrate(ctx context.Context) error
	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error

	CreateKey(ctx context.Context, k *Key) error
	// KeyByHash finds a key by the hash of its secret, including revoked and expired keys
	// (the caller decides and says which). ErrNotFound when none matches.
	KeyByHash(ctx context.Context, hash string) (*Key, error)
	Key(ctx context.Context, id string) (*Key, error)
	ListKeys(ctx context.Context) ([]*Key, error)
	UpdateKey(ctx context.Context, id string, u KeyUpdate) (*Key, error)
	// RevokeKey marks the key revoked at the given time; revoking twice keeps the first time.
	RevokeKey(ctx context.Context, id string, at time.Time) error
	CountKeys(ctx context.Context) (int, error)

	// ClaimSlice adds budget to the slice s (creating it) and renews it for ttl, atomically
	// against every other slice of the key and period, across processes. It grants nothing and
	// returns ErrInsufficientBudget unless budget − spent − live slices (s included) ≥ need; then it
	// grants min(want, max(need, half of what remains)), so slices shrink as a budget runs out.
	// Keys without a budget are granted want. An expired slice counts as empty when reclaimed.
	ClaimSlice(ctx context.Context, s Slice, need, want money.Amount, ttl time.Duration) (Claim, error)
	// ReturnSlice gives back amount of a slice's reservation (never below zero).
	ReturnSlice(ctx context.Context, id string, amount money.Amount) error
	// RenewSlices extends the live slices among ids by ttl and returns the ids that were not
	// live (expired or unknown): their reservations no longer count.
	RenewSlices(ctx context.Context, ids []string, ttl time.Duration) (lost []string, err error)
	// SweepSlices deletes expired slices and returns how many.
	SweepSlices(ctx context.Context) (int, error)
	// Balance reports the key's budget position for the period of the given kind starting at
	// periodStart.
	Balance(ctx context.Context, keyID, period string, periodStart time.Time) (Balance, error)
	// ReconcileSpend compares every recorded position of the key (all keys when keyID is "")
	// with the sum of its ledger rows and returns the differences; with fix, it rewrites the
	// recorded positions from the ledger.
	ReconcileSpend(ctx context.Context, keyID string, fix bool) ([]SpendDiff, error)

	// ConsumeFreeImages atomically takes up to n images from the key's free quota for model
	// (quota images in all) and returns how many it took (0..n).
	ConsumeFreeImages(ctx context.Context, keyID, model string, n, quota int) (int, error)
	// ReturnFreeImages gives back free images that were taken but not delivered.
	ReturnFreeImages(ctx context.Context, keyID, model string, n int) error
	// ConsumeUpstreamFree atomically takes up to n images from the free quota (quota images in
	// all) of a channel's upstream account for an upstream model, and returns how many it took.
	ConsumeUpstreamFree(ctx context.Context, channel, model string, n, quota int) (int, error)

	// InsertUsage writes events in one transaction. Events whose RequestID is already in the
	// ledger are skipped, so replaying a batch is safe (exactly-once by request id). In the same
	// transaction, the cost of each inserted event is added to its key's spend for the event's
	// day, month and total, and taken off its slice's reservation.
	InsertUsage(ctx context.Context, events []UsageEvent) error
	// ListUsage returns matching events, newest first, at most limit (0: no limit).
	ListUsage(ctx context.Context, f UsageFilter, limit int) ([]UsageEvent, error)
	// SumUsage aggregates matching events by GroupByDay, GroupByModel or GroupByKey.
	SumUsage(ctx context.Context, f UsageFilter, groupBy string) ([]UsageGroup, error)

	// SetChannelEnabled switches a channel (by its configured name) on or off for every
	// replica, as of at. A channel never switched is enabled.
	SetChannelEnabled(ctx context.Context, channel string, enabled bool, at time.Time) error
	// ChannelSwitches returns every channel's switch, ordered by channel name.
	ChannelSwitches(ctx context.Context) ([]ChannelSwitch, error)
}

// ChannelSwitch is an operator's switch of one channel: a disabled channel gets no traffic on
// any replica.
type ChannelSwitch struct {
	Channel   string
	Enabled   bool
	UpdatedAt time.Time
}

// Periods are the budget period kinds whose spend the store keeps for every key.
var Periods = [...]string{PeriodTotal, PeriodDaily, PeriodMonthly}

// NormalizePeriod maps "" and unknown kinds to PeriodTotal.
func NormalizePeriod(period string) string {
	switch period {
	case PeriodDaily, PeriodMonthly:
		return period
	}
	return PeriodTotal
}

// PeriodStart is the start of the period of the given kind that contains t: the zero time for
// PeriodTotal (and "" or any unknown kind), UTC midnight of t's day for PeriodDaily, and 00:00 UTC
// on the first of t's month for PeriodMonthly.
func PeriodStart(period string, t time.Time) time.Time {
	u := t.UTC()
	switch period {
	case PeriodDaily:
		return time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
	case PeriodMonthly:
		return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// SliceGrant is how much a claim grants (see Store.ClaimSlice), given the key's budget, its
// spend and what live slices reserve: nothing (ok false) unless need fits in what remains; then
// want, capped at half of what remains but never below need. Both stores use it, so they grant
// alike.
func SliceGrant(budget, spent, held, need, want money.Amount) (grant money.Amount, ok bool) {
	avail := budget - spent - held
	if avail < need {
		return 0, false
	}
	return max(min(want, avail/2), need), true
}

// Missing returns the ids of all that are not in found, in all's order.
func Missing(all, found []string) []string {
	seen := make(map[string]bool, len(found))
	for _, id := range found {
		seen[id] = true
	}
	var out []string
	for _, id := range all {
		if !seen[id] {
			out = append(out, id)
		}
	}
	return out
}

// SortSpendDiffs orders differences by key, period kind and start, as both stores report them.
func SortSpendDiffs(d []SpendDiff) {
	slices.SortFunc(d, func(a, b SpendDiff) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.Period, b.Period), a.PeriodStart.Compare(b.PeriodStart))
	})
}

type deadlineKey struct{}

// WithDeadline returns ctx carrying the instant by which a request's store calls, together,
// must be done: the front door sets it once per request (now + store.timeout), and every wait on
// the store on the request path (key lookup, budget claim, free images) ends by then. It is not a
// context deadline: the upstream call is not bound by it.
func WithDeadline(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, deadlineKey{}, t)
}

// Within returns how long a store wait on ctx may last: d, or less when the request's store
// deadline (WithDeadline) comes first; never negative.
func Within(ctx context.Context, d time.Duration) time.Duration {
	if t, ok := ctx.Value(deadlineKey{}).(time.Time); ok {
		d = min(d, time.Until(t))
	}
	return max(d, 0)
}
