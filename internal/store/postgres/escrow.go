package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// Expiry times use the database's clock (now()), so replicas with skewed clocks agree on which
// slices are live.

// ClaimSlice grants budget to a slice. It runs in one short transaction that locks the key's
// position row for the period (key_spend), which serialises claims on one key and period across
// processes; claims are rare (a replica claims every few seconds of a key's spend), so the lock is
// not on the request path.
func (s *Store) ClaimSlice(ctx context.Context, sl store.Slice, need, want money.Amount, ttl time.Duration) (store.Claim, error) {
	if need < 0 || want < 0 || ttl <= 0 {
		return store.Claim{}, fmt.Errorf("postgres: claim slice %s: need %s, want %s, ttl %s", sl.ID, need, want, ttl)
	}
	period := store.NormalizePeriod(sl.Period)
	var c store.Claim
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO key_spend (key_id, period, period_start) VALUES ($1, $2, $3)
			ON CONFLICT (key_id, period, period_start) DO NOTHING`, sl.KeyID, period, sl.PeriodStart); err != nil {
			return err
		}
		// Lock first; READ COMMITTED gives the next statement a fresh snapshot, taken once the lock
		// is ours, so it sees every claim and ledger write committed before.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM key_spend WHERE key_id = $1 AND period = $2 AND period_start = $3 FOR UPDATE`,
			sl.KeyID, period, sl.PeriodStart); err != nil {
			return err
		}
		var budget *int64
		var spent, held int64
		err := tx.QueryRow(ctx, `SELECT k.budget, s.spent,
				COALESCE((SELECT SUM(amount) FROM budget_slices
					WHERE key_id = $1 AND period = $2 AND period_start = $3 AND expires_at > now()), 0)::bigint
			FROM api_keys k, key_spend s
			WHERE k.id = $1 AND s.key_id = $1 AND s.period = $2 AND s.period_start = $3`,
			sl.KeyID, period, sl.PeriodStart).Scan(&budget, &spent, &held)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("key %s: %w", sl.KeyID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		c.Balance = store.Balance{Spent: money.Amount(spent), Held: money.Amount(held)}
		grant := want
		if budget != nil {
			b := money.Amount(*budget)
			c.Balance.Budget = &b
			var ok bool
			if grant, ok = store.SliceGrant(b, c.Balance.Spent, c.Balance.Held, need, want); !ok {
				return store.ErrInsufficientBudget
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO budget_slices (id, key_id, period, period_start, amount, expires_at)
			VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 microsecond')
			ON CONFLICT (id) DO UPDATE SET
				amount = CASE WHEN budget_slices.expires_at > now() THEN budget_slices.amount ELSE 0 END + EXCLUDED.amount,
				expires_at = EXCLUDED.expires_at`,
			sl.ID, sl.KeyID, period, sl.PeriodStart, int64(grant), ttl.Microseconds())
		if err != nil {
			return err
		}
		c.Granted = grant
		c.Balance.Held += grant
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("postgres: claim slice %s: %w", sl.ID, err)
	}
	return c, nil
}

// ReturnSlice gives back part of a slice's reservation.
func (s *Store) ReturnSlice(ctx context.Context, id string, amount money.Amount) error {
	if amount <= 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE budget_slices SET amount = GREATEST(amount - $2, 0) WHERE id = $1`, id, int64(amount)); err != nil {
		return fmt.Errorf("postgres: return slice %s: %w", id, err)
	}
	return nil
}

// RenewSlices extends the live slices among ids in one statement.
func (s *Store) RenewSlices(ctx context.Context, ids []string, ttl time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE budget_slices SET expires_at = now() + $2 * interval '1 microsecond'
		WHERE id = ANY($1) AND expires_at > now() RETURNING id`, ids, ttl.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("postgres: renew slices: %w", err)
	}
	renewed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: renew slices: %w", err)
	}
	return store.Missing(ids, renewed), nil
}

// SweepSlices deletes slices that expired.
func (s *Store) SweepSlices(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM budget_slices WHERE expires_at < now()`)
	if err != nil {
		return 0, fmt.Errorf("postgres: sweep slices: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Balance reports the key's budget, spend and live reservations for the period.
func (s *Store) Balance(ctx context.Context, keyID, period string, periodStart time.Time) (store.Balance, error) {
	period = store.NormalizePeriod(period)
	var budget *int64
	var spent, held int64
	err := s.pool.QueryRow(ctx, `SELECT k.budget,
			COALESCE((SELECT spent FROM key_spend WHERE key_id = k.id AND period = $2 AND period_start = $3), 0),
			COALESCE((SELECT SUM(amount) FROM budget_slices
				WHERE key_id = k.id AND period = $2 AND period_start = $3 AND expires_at > now()), 0)::bigint
		FROM api_keys k WHERE k.id = $1`, keyID, period, periodStart).Scan(&budget, &spent, &held)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Balance{}, fmt.Errorf("postgres: balance of key %s: %w", keyID, err)
	}
	b := store.Balance{Spent: money.Amount(spent), Held: money.Amount(held)}
	if budget != nil {
		a := money.Amount(*budget)
		b.Budget = &a
	}
	return b, nil
}

// ledgerSpend sums the ledger per key and period kind, the way InsertUsage adds to key_spend.
const ledgerSpend = `
	SELECT key_id, 'total' AS period, TIMESTAMPTZ '0001-01-01 00:00:00+00' AS period_start, SUM(cost)::bigint AS spent
		FROM usage_events WHERE cost > 0 AND key_id <> '' AND ($1 = '' OR key_id = $1) GROUP BY key_id
	UNION ALL
	SELECT key_id, 'daily', date_trunc('day', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', SUM(cost)::bigint
		FROM usage_events WHERE cost > 0 AND key_id <> '' AND ($1 = '' OR key_id = $1) GROUP BY 1, 3
	UNION ALL
	SELECT key_id, 'monthly', date_trunc('month', time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', SUM(cost)::bigint
		FROM usage_events WHERE cost > 0 AND key_id <> '' AND ($1 = '' OR key_id = $1) GROUP BY 1, 3`

// ReconcileSpend compares key_spend with the ledger. With fix it locks key_spend against
// writers (ledger inserts wait a moment), so the comparison and the rewrite are exact.
func (s *Store) ReconcileSpend(ctx context.Context, keyID string, fix bool) ([]store.SpendDiff, error) {
	var diffs []store.SpendDiff
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if fix {
			if _, err := tx.Exec(ctx, `LOCK TABLE key_spend IN EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `WITH ledger AS (`+ledgerSpend+`),
			recorded AS (SELECT key_id, period, period_start, spent FROM key_spend WHERE $1 = '' OR key_id = $1)
			SELECT key_id, period, period_start, COALESCE(r.spent, 0), COALESCE(l.spent, 0)
			FROM ledger l FULL OUTER JOIN recorded r USING (key_id, period, period_start)
			WHERE COALESCE(r.spent, 0) <> COALESCE(l.spent, 0)
			ORDER BY key_id, period, period_start`, keyID)
		if err != nil {
			return err
		}
		diffs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SpendDiff, error) {
			var d store.SpendDiff
			var rec, led int64
			err := r.Scan(&d.KeyID, &d.Period, &d.PeriodStart, &rec, &led)
			d.PeriodStart = d.PeriodStart.UTC()
			d.Recorded, d.Ledger = money.Amount(rec), money.Amount(led)
			return d, err
		})
		if err != nil || !fix {
			return err
		}
		for _, d := range diffs {
			if _, err := tx.Exec(ctx, `INSERT INTO key_spend (key_id, period, period_start, spent) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key_id, period, period_start) DO UPDATE SET spent = EXCLUDED.spent`,
				d.KeyID, d.Period, d.PeriodStart, int64(d.Ledger)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: reconcile spend: %w", err)
	}
	return diffs, nil
}
