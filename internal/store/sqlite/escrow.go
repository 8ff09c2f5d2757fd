package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// Expiry times use this process's clock: an SQLite database is shared only by processes on one
// machine.

// ClaimSlice grants budget to a slice in one immediate transaction (SQLite's write lock
// serialises claims across processes).
func (s *Store) ClaimSlice(ctx context.Context, sl store.Slice, need, want money.Amount, ttl time.Duration) (store.Claim, error) {
	if need < 0 || want < 0 || ttl <= 0 {
		return store.Claim{}, fmt.Errorf("sqlite: claim slice %s: need %s, want %s, ttl %s", sl.ID, need, want, ttl)
	}
	period := store.NormalizePeriod(sl.Period)
	now := time.Now()
	var c store.Claim
	err := s.write(ctx, func(tx *sql.Tx) error {
		var budget sql.NullInt64
		var spent, held int64
		err := tx.QueryRowContext(ctx, `SELECT k.budget,
				COALESCE((SELECT spent FROM key_spend WHERE key_id = k.id AND period = ? AND period_start = ?), 0),
				COALESCE((SELECT SUM(amount) FROM budget_slices
					WHERE key_id = k.id AND period = ? AND period_start = ? AND expires_at > ?), 0)
			FROM api_keys k WHERE k.id = ?`,
			period, micros(sl.PeriodStart), period, micros(sl.PeriodStart), micros(now), sl.KeyID).Scan(&budget, &spent, &held)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("key %s: %w", sl.KeyID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		c.Balance = store.Balance{Spent: money.Amount(spent), Held: money.Amount(held)}
		grant := want
		if budget.Valid {
			b := money.Amount(budget.Int64)
			c.Balance.Budget = &b
			var ok bool
			if grant, ok = store.SliceGrant(b, c.Balance.Spent, c.Balance.Held, need, want); !ok {
				return store.ErrInsufficientBudget
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO budget_slices (id, key_id, period, period_start, amount, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				amount = CASE WHEN budget_slices.expires_at > ? THEN budget_slices.amount ELSE 0 END + excluded.amount,
				expires_at = excluded.expires_at`,
			sl.ID, sl.KeyID, period, micros(sl.PeriodStart), int64(grant), micros(now.Add(ttl)), micros(now))
		if err != nil {
			return err
		}
		c.Granted = grant
		c.Balance.Held += grant
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("sqlite: claim slice %s: %w", sl.ID, err)
	}
	return c, nil
}

// ReturnSlice gives back part of a slice's reservation.
func (s *Store) ReturnSlice(ctx context.Context, id string, amount money.Amount) error {
	if amount <= 0 {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE budget_slices SET amount = MAX(amount - ?, 0) WHERE id = ?`, int64(amount), id); err != nil {
		return fmt.Errorf("sqlite: return slice %s: %w", id, err)
	}
	return nil
}

// RenewSlices extends the live slices among ids.
func (s *Store) RenewSlices(ctx context.Context, ids []string, ttl time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := time.Now()
	var renewed []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		args := []any{micros(now.Add(ttl)), micros(now)}
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE budget_slices SET expires_at = ? WHERE expires_at > ? AND id IN (?`+
			strings.Repeat(", ?", len(ids)-1)+`) RETURNING id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			renewed = append(renewed, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: renew slices: %w", err)
	}
	return store.Missing(ids, renewed), nil
}

// SweepSlices deletes slices that expired.
func (s *Store) SweepSlices(ctx context.Context) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM budget_slices WHERE expires_at < ?`, micros(time.Now()))
	if err != nil {
		return 0, fmt.Errorf("sqlite: sweep slices: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Balance reports the key's budget, spend and live reservations for the period.
func (s *Store) Balance(ctx context.Context, keyID, period string, periodStart time.Time) (store.Balance, error) {
	period = store.NormalizePeriod(period)
	var budget sql.NullInt64
	var spent, held int64
	err := s.r.QueryRowContext(ctx, `SELECT k.budget,
			COALESCE((SELECT spent FROM key_spend WHERE key_id = k.id AND period = ? AND period_start = ?), 0),
			COALESCE((SELECT SUM(amount) FROM budget_slices
				WHERE key_id = k.id AND period = ? AND period_start = ? AND expires_at > ?), 0)
		FROM api_keys k WHERE k.id = ?`,
		period, micros(periodStart), period, micros(periodStart), micros(time.Now()), keyID).Scan(&budget, &spent, &held)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Balance{}, fmt.Errorf("sqlite: balance of key %s: %w", keyID, err)
	}
	b := store.Balance{Spent: money.Amount(spent), Held: money.Amount(held)}
	if budget.Valid {
		a := money.Amount(budget.Int64)
		b.Budget = &a
	}
	return b, nil
}

// addSpend adds the cost of inserted events to key_spend and takes it off their slices.
func addSpend(ctx context.Context, tx *sql.Tx, charged []store.UsageEvent) error {
	type pos struct {
		key, period string
		start       int64
	}
	spend := map[pos]int64{}
	slices := map[string]int64{}
	for _, e := range charged {
		for _, p := range store.Periods {
			spend[pos{e.KeyID, p, micros(store.PeriodStart(p, e.Time))}] += int64(e.Cost)
		}
		if e.Slice != "" {
			slices[e.Slice] += int64(e.Cost)
		}
	}
	for p, v := range spend {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_spend (key_id, period, period_start, spent) VALUES (?, ?, ?, ?)
			ON CONFLICT (key_id, period, period_start) DO UPDATE SET spent = spent + excluded.spent`,
			p.key, p.period, p.start, v); err != nil {
			return err
		}
	}
	for id, v := range slices {
		if _, err := tx.ExecContext(ctx, `UPDATE budget_slices SET amount = MAX(amount - ?, 0) WHERE id = ?`, v, id); err != nil {
			return err
		}
	}
	return nil
}

// ReconcileSpend compares key_spend with the ledger, and with fix rewrites it, in one immediate
// transaction (ledger writes wait for it).
func (s *Store) ReconcileSpend(ctx context.Context, keyID string, fix bool) ([]store.SpendDiff, error) {
	var diffs []store.SpendDiff
	err := s.write(ctx, func(tx *sql.Tx) error {
		type pos struct {
			key, period string
			start       int64
		}
		ledger := map[pos]int64{}
		rows, err := tx.QueryContext(ctx, `SELECT key_id, time, cost FROM usage_events
			WHERE cost > 0 AND key_id <> '' AND (? = '' OR key_id = ?)`, keyID, keyID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k string
			var t, c int64
			if err := rows.Scan(&k, &t, &c); err != nil {
				rows.Close()
				return err
			}
			for _, p := range store.Periods {
				ledger[pos{k, p, micros(store.PeriodStart(p, fromMicros(t)))}] += c
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		recorded := map[pos]int64{}
		rows, err = tx.QueryContext(ctx, `SELECT key_id, period, period_start, spent FROM key_spend WHERE ? = '' OR key_id = ?`, keyID, keyID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p pos
			var v int64
			if err := rows.Scan(&p.key, &p.period, &p.start, &v); err != nil {
				rows.Close()
				return err
			}
			recorded[p] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for p, v := range ledger {
			if recorded[p] != v {
				diffs = append(diffs, store.SpendDiff{KeyID: p.key, Period: p.period, PeriodStart: fromMicros(p.start), Recorded: money.Amount(recorded[p]), Ledger: money.Amount(v)})
			}
		}
		for p, v := range recorded {
			if _, ok := ledger[p]; !ok && v != 0 {
				diffs = append(diffs, store.SpendDiff{KeyID: p.key, Period: p.period, PeriodStart: fromMicros(p.start), Recorded: money.Amount(v)})
			}
		}
		store.SortSpendDiffs(diffs)
		if !fix {
			return nil
		}
		for _, d := range diffs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_spend (key_id, period, period_start, spent) VALUES (?, ?, ?, ?)
				ON CONFLICT (key_id, period, period_start) DO UPDATE SET spent = excluded.spent`,
				d.KeyID, d.Period, micros(d.PeriodStart), int64(d.Ledger)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: reconcile spend: %w", err)
	}
	return diffs, nil
}
