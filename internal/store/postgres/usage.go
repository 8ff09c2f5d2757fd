package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

const usageColumns = `request_id, time, key_id, model, provider, channel, operation, n_requested,
	n_delivered, width, height, steps, cost, currency, status, error_kind, latency_ms, upstream_ms, client_request_id,
	upstream_cost, upstream_list_cost, upstream_currency`

// insertUsage inserts the events (skipping request ids already in the ledger) and, for the
// rows it inserted, adds their cost to key_spend (total, day, month) and takes it off their
// slices: one statement, so the ledger and the positions never disagree.
//
// A request id twice in one batch is one row, its first copy (DISTINCT ON the position), and is
// charged once.
const insertUsage = `WITH input AS (
		SELECT DISTINCT ON (request_id) * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::int[], $9::int[], $10::int[], $11::int[], $12::int[], $13::bigint[], $14::text[],
			$15::text[], $16::text[], $17::bigint[], $18::bigint[], $19::text[], $20::text[], $21::bigint[],
			$22::bigint[], $23::text[]) WITH ORDINALITY
		AS t(request_id, time, key_id, model, provider, channel, operation, n_requested, n_delivered, width,
			height, steps, cost, currency, status, error_kind, latency_ms, upstream_ms, slice, client_request_id,
			upstream_cost, upstream_list_cost, upstream_currency, pos)
		ORDER BY request_id, pos
	), ins AS (
		INSERT INTO usage_events (` + usageColumns + `)
		SELECT request_id, time, key_id, model, provider, channel, operation, n_requested, n_delivered, width,
			height, steps, cost, currency, status, error_kind, latency_ms, upstream_ms, client_request_id,
			upstream_cost, upstream_list_cost, upstream_currency
		FROM input ORDER BY request_id
		ON CONFLICT (request_id) DO NOTHING
		RETURNING request_id
	), charged AS (
		SELECT i.key_id, i.time, i.cost, i.slice FROM input i JOIN ins USING (request_id)
		WHERE i.cost > 0 AND i.key_id <> ''
	), spend AS (
		INSERT INTO key_spend (key_id, period, period_start, spent)
		SELECT key_id, p.period,
			CASE p.period WHEN 'total' THEN TIMESTAMPTZ '0001-01-01 00:00:00+00'
				ELSE date_trunc(CASE p.period WHEN 'daily' THEN 'day' ELSE 'month' END, time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END,
			SUM(cost)
		FROM charged CROSS JOIN (VALUES ('total'), ('daily'), ('monthly')) AS p(period)
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
		ON CONFLICT (key_id, period, period_start) DO UPDATE SET spent = key_spend.spent + EXCLUDED.spent
		RETURNING 1
	), slices AS (
		-- count(*) of spend runs the whole spend upsert first: rows are locked key_spend, then budget_slices,
		-- the order ClaimSlice locks them in, so the two never deadlock.
		UPDATE budget_slices b SET amount = GREATEST(b.amount - c.cost, 0)
		FROM (SELECT slice, SUM(cost) AS cost FROM charged WHERE slice <> '' GROUP BY slice ORDER BY slice) c
		WHERE b.id = c.slice AND (SELECT count(*) FROM spend) > 0
	)
	SELECT count(*) FROM ins`

// InsertUsage writes the events in one statement (one transaction, one round trip), skipping
// request ids already in the ledger; see insertUsage.
func (s *Store) InsertUsage(ctx context.Context, events []store.UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	var (
		ids, keys, models, provs, chans, ops, curs, stats, kinds, slices, clients, upCurs = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		times                          = make([]time.Time, n)
		nreq, ndel, ws, hs, steps      = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		costs, lat, up, upCost, upList = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, e := range events {
		if e.RequestID == "" {
			return fmt.Errorf("postgres: insert usage: an event has no request id (key %s, model %s)", e.KeyID, e.Model)
		}
		ids[i], times[i], keys[i], models[i], provs[i], chans[i], ops[i] = e.RequestID, e.Time, e.KeyID, e.Model, e.Provider, e.Channel, e.Operation
		nreq[i], ndel[i], ws[i], hs[i], steps[i] = int32(e.NRequested), int32(e.NDelivered), int32(e.Width), int32(e.Height), int32(e.Steps)
		costs[i], curs[i], stats[i], kinds[i], lat[i], up[i], slices[i] = int64(e.Cost), e.Currency, e.Status, e.ErrorKind, e.LatencyMS, e.UpstreamMS, e.Slice
		clients[i], upCost[i], upList[i], upCurs[i] = e.ClientRequestID, int64(e.UpstreamCost), int64(e.UpstreamListCost), e.UpstreamCurrency
	}
	var inserted int64
	err := s.pool.QueryRow(ctx, insertUsage, ids, times, keys, models, provs, chans, ops, nreq, ndel, ws, hs, steps,
		costs, curs, stats, kinds, lat, up, slices, clients, upCost, upList, upCurs).Scan(&inserted)
	if err != nil {
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
		var cost, upCost, upList int64
		if err := rows.Scan(&e.RequestID, &e.Time, &e.KeyID, &e.Model, &e.Provider, &e.Channel, &e.Operation,
			&e.NRequested, &e.NDelivered, &e.Width, &e.Height, &e.Steps, &cost, &e.Currency, &e.Status,
			&e.ErrorKind, &e.LatencyMS, &e.UpstreamMS, &e.ClientRequestID, &upCost, &upList, &e.UpstreamCurrency); err != nil {
			return nil, fmt.Errorf("postgres: list usage: %w", err)
		}
		e.Time, e.Cost = e.Time.UTC(), money.Amount(cost)
		e.UpstreamCost, e.UpstreamListCost = money.Amount(upCost), money.Amount(upList)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list usage: %w", err)
	}
	return events, nil
}

// SumUsage aggregates matching events per group and currency, ordered by group then currency,
// summing both the keys' charges (Cost) and the providers' (UpstreamCost). Days are UTC dates
// ("2026-11-22").
func (s *Store) SumUsage(ctx context.Context, f store.UsageFilter, groupBy string) ([]store.UsageGroup, error) {
	var g string
	switch groupBy {
	case store.GroupByDay:
		g = `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	case store.GroupByModel:
		g = `model`
	case store.GroupByKey:
		g = `key_id`
	case store.GroupByChannel:
		g = `channel`
	default:
		return nil, fmt.Errorf("postgres: sum usage: unknown grouping %q (want %q, %q, %q or %q)",
			groupBy, store.GroupByDay, store.GroupByModel, store.GroupByKey, store.GroupByChannel)
	}
	w, args := where(f, []any{store.StatusFailed, store.StatusIndeterminate})
	q := `SELECT ` + g + ` AS grp, currency, COUNT(*), COALESCE(SUM(n_delivered), 0)::bigint,
			COALESCE(SUM(cost), 0)::bigint, COALESCE(SUM(upstream_cost), 0)::bigint,
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
		var cost, upCost int64
		if err := rows.Scan(&u.Group, &u.Currency, &u.Requests, &u.Images, &cost, &upCost, &u.Failed, &u.Indeterminate); err != nil {
			return nil, fmt.Errorf("postgres: sum usage: %w", err)
		}
		u.Cost, u.UpstreamCost = money.Amount(cost), money.Amount(upCost)
		groups = append(groups, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: sum usage: %w", err)
	}
	return groups, nil
}
