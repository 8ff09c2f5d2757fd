package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

const usageColumns = `request_id, time, key_id, model, provider, channel, operation, n_requested,
	n_delivered, width, height, steps, cost, currency, status, error_kind, latency_ms, upstream_ms`

// InsertUsage writes the events in one transaction (one pipelined batch), skipping request ids
// already in the ledger.
func (s *Store) InsertUsage(ctx context.Context, events []store.UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	// Insert in request id order, so two overlapping batches committing at once (replays from
	// two processes) wait on each other instead of deadlocking.
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b store.UsageEvent) int { return strings.Compare(a.RequestID, b.RequestID) })
	b := &pgx.Batch{}
	for _, e := range events {
		if e.RequestID == "" {
			return fmt.Errorf("postgres: insert usage: an event has no request id (key %s, model %s)", e.KeyID, e.Model)
		}
		b.Queue(`INSERT INTO usage_events (`+usageColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			ON CONFLICT (request_id) DO NOTHING`,
			e.RequestID, e.Time, e.KeyID, e.Model, e.Provider, e.Channel, e.Operation, e.NRequested,
			e.NDelivered, e.Width, e.Height, e.Steps, int64(e.Cost), e.Currency, e.Status, e.ErrorKind,
			e.LatencyMS, e.UpstreamMS)
	}
	if err := s.execBatch(ctx, b); err != nil {
		return fmt.Errorf("postgres: insert usage: %w", err)
	}
	return nil
}

// where builds the WHERE clause for f, numbering placeholders after the len(args) given: Since
// is inclusive, Until exclusive.
func where(f store.UsageFilter, args []any) (string, []any) {
	var conds []string
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.KeyID != "" {
		add("key_id = $%d", f.KeyID)
	}
	if f.Model != "" {
		add("model = $%d", f.Model)
	}
	if !f.Since.IsZero() {
		add("time >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("time < $%d", f.Until)
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListUsage returns matching events, newest first (ties by request id, descending), at most
// limit of them (0: all). The filter's Since is inclusive and Until exclusive.
func (s *Store) ListUsage(ctx context.Context, f store.UsageFilter, limit int) ([]store.UsageEvent, error) {
	w, args := where(f, nil)
	q := `SELECT ` + usageColumns + ` FROM usage_events` + w + ` ORDER BY time DESC, request_id COLLATE "C" DESC`
	if limit > 0 {
		args = append(args, limit)
		q += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list usage: %w", err)
	}
	defer rows.Close()
	var events []store.UsageEvent
	for rows.Next() {
		var e store.UsageEvent
		var cost int64
		if err := rows.Scan(&e.RequestID, &e.Time, &e.KeyID, &e.Model, &e.Provider, &e.Channel, &e.Operation,
			&e.NRequested, &e.NDelivered, &e.Width, &e.Height, &e.Steps, &cost, &e.Currency, &e.Status,
			&e.ErrorKind, &e.LatencyMS, &e.UpstreamMS); err != nil {
			return nil, fmt.Errorf("postgres: list usage: %w", err)
		}
		e.Time, e.Cost = e.Time.UTC(), money.Amount(cost)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list usage: %w", err)
	}
	return events, nil
}

// SumUsage aggregates matching events per group and currency, ordered by group then currency.
// Days are UTC dates ("2026-11-22").
func (s *Store) SumUsage(ctx context.Context, f store.UsageFilter, groupBy string) ([]store.UsageGroup, error) {
	var g string
	switch groupBy {
	case store.GroupByDay:
		g = `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	case store.GroupByModel:
		g = `model`
	case store.GroupByKey:
		g = `key_id`
	default:
		return nil, fmt.Errorf("postgres: sum usage: unknown grouping %q (want %q, %q or %q)",
			groupBy, store.GroupByDay, store.GroupByModel, store.GroupByKey)
	}
	w, args := where(f, []any{store.StatusFailed, store.StatusIndeterminate})
	q := `SELECT ` + g + ` AS grp, currency, COUNT(*), COALESCE(SUM(n_delivered), 0)::bigint,
			COALESCE(SUM(cost), 0)::bigint,
			COUNT(*) FILTER (WHERE status = $1), COUNT(*) FILTER (WHERE status = $2)
		FROM usage_events` + w + `
		GROUP BY grp, currency ORDER BY ` + g + ` COLLATE "C", currency COLLATE "C"`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: sum usage: %w", err)
	}
	defer rows.Close()
	var groups []store.UsageGroup
	for rows.Next() {
		var u store.UsageGroup
		var cost int64
		if err := rows.Scan(&u.Group, &u.Currency, &u.Requests, &u.Images, &cost, &u.Failed, &u.Indeterminate); err != nil {
			return nil, fmt.Errorf("postgres: sum usage: %w", err)
		}
		u.Cost = money.Amount(cost)
		groups = append(groups, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: sum usage: %w", err)
	}
	return groups, nil
}
