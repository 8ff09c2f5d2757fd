package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// PlaceHold reserves h.Amount against the key's budget for h.PeriodStart. The check and the
// insert share one immediate transaction, which holds SQLite's write lock, so no other writer
// (in this process or another) can place a hold in between. Holds that expired before
// h.CreatedAt (now, when zero) do not count. h.ExpiresAt is required.
func (s *Store) PlaceHold(ctx context.Context, h store.Hold) error {
	if h.ExpiresAt.IsZero() {
		return fmt.Errorf("sqlite: place hold %s: no expiry time", h.ID)
	}
	if h.Amount < 0 {
		return fmt.Errorf("sqlite: place hold %s: negative amount %s", h.ID, h.Amount)
	}
	if h.CreatedAt.IsZero() {
		h.CreatedAt = time.Now()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var budget sql.NullInt64
		var spent, held int64
		err := tx.QueryRowContext(ctx, `SELECT k.budget,
				COALESCE((SELECT spent FROM budget_spend WHERE key_id = k.id AND period_start = ?), 0),
				COALESCE((SELECT SUM(amount) FROM budget_holds
					WHERE key_id = k.id AND period_start = ? AND expires_at > ?), 0)
			FROM api_keys k WHERE k.id = ?`,
			micros(h.PeriodStart), micros(h.PeriodStart), micros(h.CreatedAt), h.KeyID).Scan(&budget, &spent, &held)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("key %s: %w", h.KeyID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if budget.Valid && spent+held+int64(h.Amount) > budget.Int64 {
			return store.ErrInsufficientBudget
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO budget_holds (id, key_id, period_start, amount, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`,
			h.ID, h.KeyID, micros(h.PeriodStart), int64(h.Amount), micros(h.CreatedAt), micros(h.ExpiresAt))
		if isUnique(err) {
			return store.ErrConflict
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: place hold %s: %w", h.ID, err)
	}
	return nil
}

// SettleHold removes the hold (if it is still there) and adds actual to the key's spend for the
// period, in one transaction.
func (s *Store) SettleHold(ctx context.Context, holdID, keyID string, periodStart time.Time, actual money.Amount) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM budget_holds WHERE id = ?`, holdID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO budget_spend (key_id, period_start, spent) VALUES (?, ?, ?)
			ON CONFLICT (key_id, period_start) DO UPDATE SET spent = spent + excluded.spent`,
			keyID, micros(periodStart), int64(actual))
		if isForeignKey(err) {
			return fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: settle hold %s: %w", holdID, err)
	}
	return nil
}

// ReleaseHold removes the hold without spending; an unknown hold is not an error.
func (s *Store) ReleaseHold(ctx context.Context, holdID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM budget_holds WHERE id = ?`, holdID); err != nil {
		return fmt.Errorf("sqlite: release hold %s: %w", holdID, err)
	}
	return nil
}

// SweepHolds deletes holds that expired before now.
func (s *Store) SweepHolds(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM budget_holds WHERE expires_at < ?`, micros(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: sweep holds: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: sweep holds: %w", err)
	}
	return int(n), nil
}

// Balance reports the key's budget, spend and unexpired holds for the period.
func (s *Store) Balance(ctx context.Context, keyID string, periodStart time.Time) (store.Balance, error) {
	var budget sql.NullInt64
	var spent, held int64
	err := s.r.QueryRowContext(ctx, `SELECT k.budget,
			COALESCE((SELECT spent FROM budget_spend WHERE key_id = k.id AND period_start = ?), 0),
			COALESCE((SELECT SUM(amount) FROM budget_holds
				WHERE key_id = k.id AND period_start = ? AND expires_at > ?), 0)
		FROM api_keys k WHERE k.id = ?`,
		micros(periodStart), micros(periodStart), micros(time.Now()), keyID).Scan(&budget, &spent, &held)
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

// OpenHolds counts holds that have not expired.
func (s *Store) OpenHolds(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM budget_holds WHERE expires_at > ?`, micros(time.Now())).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: open holds: %w", err)
	}
	return n, nil
}

// ConsumeFreeImages takes up to n images from the key's free quota for model, in one immediate
// transaction, and returns how many it took.
func (s *Store) ConsumeFreeImages(ctx context.Context, keyID, model string, n, quota int) (int, error) {
	if n <= 0 || quota <= 0 {
		return 0, nil
	}
	var took int
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO free_images (key_id, model, used) VALUES (?, ?, 0)
			ON CONFLICT (key_id, model) DO NOTHING`, keyID, model)
		if isForeignKey(err) {
			return fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT used FROM free_images WHERE key_id = ? AND model = ?`, keyID, model).Scan(&used); err != nil {
			return err
		}
		took = min(n, max(quota-used, 0))
		if took == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE free_images SET used = used + ? WHERE key_id = ? AND model = ?`, took, keyID, model)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: consume free images: %w", err)
	}
	return took, nil
}

// ReturnFreeImages gives back n free images taken but not delivered (never below zero used).
func (s *Store) ReturnFreeImages(ctx context.Context, keyID, model string, n int) error {
	if n <= 0 {
		return nil
	}
	_, err := s.w.ExecContext(ctx, `UPDATE free_images SET used = MAX(used - ?, 0) WHERE key_id = ? AND model = ?`, n, keyID, model)
	if err != nil {
		return fmt.Errorf("sqlite: return free images: %w", err)
	}
	return nil
}
