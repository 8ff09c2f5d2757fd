package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/imagegw/imagegw/internal/store"
)

// ConsumeFreeImages takes up to n images from the key's free quota for model and returns how
// many it took (see takeFree).
func (s *Store) ConsumeFreeImages(ctx context.Context, keyID, model string, n, quota int) (int, error) {
	took, err := s.takeFree(ctx, "free_images", "key_id", keyID, model, n, quota)
	if isForeignKey(err) {
		err = fmt.Errorf("key %s: %w", keyID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: consume free images: %w", err)
	}
	return took, nil
}

// takeFree takes up to n of quota images from the pool row (owner, model) of table (free_images
// by key_id, upstream_free by channel), in one immediate transaction, and returns how many it
// took.
func (s *Store) takeFree(ctx context.Context, table, ownerCol, owner, model string, n, quota int) (int, error) {
	if n <= 0 || quota <= 0 {
		return 0, nil
	}
	where := ` WHERE ` + ownerCol + ` = ? AND model = ?`
	var took int
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (`+ownerCol+`, model, used) VALUES (?, ?, 0)
			ON CONFLICT (`+ownerCol+`, model) DO NOTHING`, owner, model)
		if err != nil {
			return err
		}
		var used int
		if err := tx.QueryRowContext(ctx, `SELECT used FROM `+table+where, owner, model).Scan(&used); err != nil {
			return err
		}
		took = min(n, max(quota-used, 0))
		if took == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE `+table+` SET used = used + ?`+where, took, owner, model)
		return err
	})
	return took, err
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

// ConsumeUpstreamFree takes up to n images from the channel's free quota for model and returns
// how many it took (see takeFree).
func (s *Store) ConsumeUpstreamFree(ctx context.Context, channel, model string, n, quota int) (int, error) {
	took, err := s.takeFree(ctx, "upstream_free", "channel", channel, model, n, quota)
	if err != nil {
		return 0, fmt.Errorf("sqlite: consume upstream free images: %w", err)
	}
	return took, nil
}
