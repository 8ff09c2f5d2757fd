package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/imagegw/imagegw/internal/store"
)

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

// ConsumeUpstreamFree takes up to n images from the channel's free quota for model, in one
// immediate transaction, and returns how many it took.
func (s *Store) ConsumeUpstreamFree(ctx context.Context, channel, model string, n, quota int) (int, error) {
	if n <= 0 || quota <= 0 {
		return 0, nil
	}
	var took int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var used int
		err := tx.QueryRowContext(ctx, `SELECT used FROM upstream_free WHERE channel = ? AND model = ?`, channel, model).Scan(&used)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		took = min(n, max(quota-used, 0))
		_, err = tx.ExecContext(ctx, `INSERT INTO upstream_free (channel, model, used) VALUES (?, ?, ?)
			ON CONFLICT (channel, model) DO UPDATE SET used = used + excluded.used`, channel, model, took)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: consume upstream free images: %w", err)
	}
	return took, nil
}
