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

// placeHold* run in this order in one batch: SendBatch runs a batch as one implicit transaction,
// and READ COMMITTED gives each statement a fresh snapshot, so the conditional insert, which runs
// once the period row is locked, sees every hold and spend committed before the lock was granted.
const (
	placeHoldEnsurePeriod = `INSERT INTO budget_spend (key_id, period_start) VALUES ($1, $2)
		ON CONFLICT (key_id, period_start) DO NOTHING`
	placeHoldLockPeriod = `SELECT 1 FROM budget_spend WHERE key_id = $1 AND period_start = $2 FOR UPDATE`
	placeHoldInsert     = `INSERT INTO budget_holds (id, key_id, period_start, amount, created_at, expires_at)
		SELECT $1::text, k.id, $3::timestamptz, $4::bigint, $5::timestamptz, $6::timestamptz
		FROM api_keys k
		WHERE k.id = $2::text AND (k.budget IS NULL OR
			(SELECT spent FROM budget_spend WHERE key_id = $2::text AND period_start = $3::timestamptz)
			+ (SELECT COALESCE(SUM(amount), 0)::bigint FROM budget_holds
				WHERE key_id = $2::text AND period_start = $3::timestamptz AND expires_at > $5::timestamptz)
			+ $4::bigint <= k.budget)`
)

// PlaceHold reserves h.Amount against the key's budget for h.PeriodStart, atomically across
// processes, in one round trip. Holds that expired before h.CreatedAt (now, when zero) do not
// count. h.ExpiresAt is required.
func (s *Store) PlaceHold(ctx context.Context, h store.Hold) error {
	if h.ExpiresAt.IsZero() {
		return fmt.Errorf("postgres: place hold %s: no expiry time", h.ID)
	}
	if h.Amount < 0 {
		return fmt.Errorf("postgres: place hold %s: negative amount %s", h.ID, h.Amount)
	}
	if h.CreatedAt.IsZero() {
		h.CreatedAt = time.Now()
	}
	b := &pgx.Batch{}
	b.Queue(placeHoldEnsurePeriod, h.KeyID, h.PeriodStart)
	b.Queue(placeHoldLockPeriod, h.KeyID, h.PeriodStart)
	b.Queue(placeHoldInsert, h.ID, h.KeyID, h.PeriodStart, int64(h.Amount), h.CreatedAt, h.ExpiresAt)
	br := s.pool.SendBatch(ctx, b)
	placed, err := func() (bool, error) {
		if _, err := br.Exec(); err != nil {
			if isForeignKey(err) {
				return false, fmt.Errorf("key %s: %w", h.KeyID, store.ErrNotFound)
			}
			return false, err
		}
		if _, err := br.Exec(); err != nil {
			return false, err
		}
		tag, err := br.Exec()
		if err != nil {
			if isUnique(err) {
				return false, store.ErrConflict
			}
			return false, err
		}
		return tag.RowsAffected() == 1, nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil && !placed {
		err = store.ErrInsufficientBudget
	}
	if err != nil {
		return fmt.Errorf("postgres: place hold %s: %w", h.ID, err)
	}
	return nil
}

// execBatch runs the statements of b (one implicit transaction) and returns the first error.
func (s *Store) execBatch(ctx context.Context, b *pgx.Batch) error {
	br := s.pool.SendBatch(ctx, b)
	var err error
	for range b.Len() {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// SettleHold removes the hold (if it is still there) and adds actual to the key's spend for the
// period, in one transaction and one round trip.
func (s *Store) SettleHold(ctx context.Context, holdID, keyID string, periodStart time.Time, actual money.Amount) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM budget_holds WHERE id = $1`, holdID)
	b.Queue(`INSERT INTO budget_spend (key_id, period_start, spent) VALUES ($1, $2, $3)
		ON CONFLICT (key_id, period_start) DO UPDATE SET spent = budget_spend.spent + EXCLUDED.spent`,
		keyID, periodStart, int64(actual))
	if err := s.execBatch(ctx, b); err != nil {
		if isForeignKey(err) {
			err = fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
		}
		return fmt.Errorf("postgres: settle hold %s: %w", holdID, err)
	}
	return nil
}

// ReleaseHold removes the hold without spending; an unknown hold is not an error.
func (s *Store) ReleaseHold(ctx context.Context, holdID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM budget_holds WHERE id = $1`, holdID); err != nil {
		return fmt.Errorf("postgres: release hold %s: %w", holdID, err)
	}
	return nil
}

// SweepHolds deletes holds that expired before now.
func (s *Store) SweepHolds(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM budget_holds WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: sweep holds: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Balance reports the key's budget, spend and unexpired holds for the period.
func (s *Store) Balance(ctx context.Context, keyID string, periodStart time.Time) (store.Balance, error) {
	var budget *int64
	var spent, held int64
	err := s.pool.QueryRow(ctx, `SELECT k.budget,
			COALESCE((SELECT spent FROM budget_spend WHERE key_id = k.id AND period_start = $2), 0),
			COALESCE((SELECT SUM(amount) FROM budget_holds
				WHERE key_id = k.id AND period_start = $2 AND expires_at > $3), 0)::bigint
		FROM api_keys k WHERE k.id = $1`, keyID, periodStart, time.Now()).Scan(&budget, &spent, &held)
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

// OpenHolds counts holds that have not expired.
func (s *Store) OpenHolds(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM budget_holds WHERE expires_at > $1`, time.Now()).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: open holds: %w", err)
	}
	return n, nil
}

// ConsumeFreeImages takes up to n images from the key's free quota for model and returns how
// many it took: one batch (one implicit transaction, one round trip) that locks the quota row,
// reads it and updates it.
func (s *Store) ConsumeFreeImages(ctx context.Context, keyID, model string, n, quota int) (int, error) {
	if n <= 0 || quota <= 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO free_images (key_id, model) VALUES ($1, $2) ON CONFLICT (key_id, model) DO NOTHING`, keyID, model)
	b.Queue(`SELECT used FROM free_images WHERE key_id = $1 AND model = $2 FOR UPDATE`, keyID, model)
	b.Queue(`UPDATE free_images SET used = used + LEAST($3::int, GREATEST($4::int - used, 0))
		WHERE key_id = $1 AND model = $2 RETURNING used`, keyID, model, n, quota)
	br := s.pool.SendBatch(ctx, b)
	var before, after int
	err := func() error {
		if _, err := br.Exec(); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
			}
			return err
		}
		if err := br.QueryRow().Scan(&before); err != nil {
			return err
		}
		return br.QueryRow().Scan(&after)
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: consume free images: %w", err)
	}
	return after - before, nil
}

// ReturnFreeImages gives back n free images taken but not delivered (never below zero used).
func (s *Store) ReturnFreeImages(ctx context.Context, keyID, model string, n int) error {
	if n <= 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE free_images SET used = GREATEST(used - $3, 0) WHERE key_id = $1 AND model = $2`,
		keyID, model, n)
	if err != nil {
		return fmt.Errorf("postgres: return free images: %w", err)
	}
	return nil
}
