package store

import (
	"context"
	"errors"
	"time"

	"github.com/imagegw/imagegw/internal/money"
)

// Errors every implementation returns (wrapped or not; test with errors.Is).
var (
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique value (key hash, request id) already exists.
	ErrConflict = errors.New("store: conflict")
	// ErrInsufficientBudget: placing the hold would take spent+held over the budget.
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
}

// Hold reserves part of a key's budget for one in-flight request.
type Hold struct {
	ID          string // the request id
	KeyID       string
	Amount      money.Amount
	PeriodStart time.Time // start of the budget period the hold counts against (zero for total)
	CreatedAt   time.Time
	ExpiresAt   time.Time // a hold not settled by then is swept (its process crashed)
}

// Balance is a key's budget position for one period.
type Balance struct {
	Budget *money.Amount // nil: unlimited
	Spent  money.Amount
	Held   money.Amount
}

// Usage statuses.
const (
	StatusOK            = "ok"            // delivered (possibly fewer than requested)
	StatusFailed        = "failed"        // nothing delivered, nothing billed
	StatusIndeterminate = "indeterminate" // the upstream may have billed us; reconcile
)

// UsageEvent is one ledger row: one per request.
type UsageEvent struct {
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
	Cost       money.Amount
	Currency   string
	Status     string // StatusOK, StatusFailed, StatusIndeterminate
	ErrorKind  string
	LatencyMS  int64 // gateway latency, whole request
	UpstreamMS int64 // time spent waiting on the upstream
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
	Group         string // the day ("2026-11-22"), model, or key id, per GroupBy
	Requests      int64
	Images        int64 // delivered
	Cost          money.Amount
	Currency      string
	Failed        int64
	Indeterminate int64
}

// GroupBy values for SumUsage.
const (
	GroupByDay   = "day"
	GroupByModel = "model"
	GroupByKey   = "key"
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

	// PlaceHold atomically reserves h.Amount against the key's budget for h.PeriodStart:
	// it fails with ErrInsufficientBudget when spent + unexpired holds + h.Amount > budget.
	// Keys without a budget always succeed. Concurrent holds never overspend, across processes.
	PlaceHold(ctx context.Context, h Hold) error
	// SettleHold removes the hold and adds actual to the key's spent for the hold's period.
	// Settling an unknown (already swept) hold still records the spend.
	SettleHold(ctx context.Context, holdID, keyID string, periodStart time.Time, actual money.Amount) error
	// ReleaseHold removes the hold without spending.
	ReleaseHold(ctx context.Context, holdID string) error
	// SweepHolds deletes holds that expired before now and returns how many.
	SweepHolds(ctx context.Context, now time.Time) (int, error)
	// Balance reports the key's budget position for the period starting at periodStart.
	Balance(ctx context.Context, keyID string, periodStart time.Time) (Balance, error)
	// OpenHolds counts unexpired holds (a metric).
	OpenHolds(ctx context.Context) (int, error)

	// ConsumeFreeImages atomically takes up to n images from the key's free quota for model
	// (quota images in all) and returns how many it took (0..n).
	ConsumeFreeImages(ctx context.Context, keyID, model string, n, quota int) (int, error)
	// ReturnFreeImages gives back free images that were taken but not delivered.
	ReturnFreeImages(ctx context.Context, keyID, model string, n int) error

	// InsertUsage writes events in one transaction. Events whose RequestID is already in the
	// ledger are skipped, so replaying a batch is safe (exactly-once by request id).
	InsertUsage(ctx context.Context, events []UsageEvent) error
	// ListUsage returns matching events, newest first, at most limit (0: no limit).
	ListUsage(ctx context.Context, f UsageFilter, limit int) ([]UsageEvent, error)
	// SumUsage aggregates matching events by GroupByDay, GroupByModel or GroupByKey.
	SumUsage(ctx context.Context, f UsageFilter, groupBy string) ([]UsageGroup, error)
}
