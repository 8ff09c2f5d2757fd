package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

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
		return 0, fmt.Errorf("postgres: consume free images: %w", err)
	}
	return took, nil
}

// takeFree takes up to n of quota images from the pool row (owner, model) of table (free_images
// by key_id, upstream_free by channel) and returns how many it took: one batch (one implicit
// transaction, one round trip) that creates the row if needed, locks it, reads it and updates it.
func (s *Store) takeFree(ctx context.Context, table, ownerCol, owner, model string, n, quota int) (int, error) {
	if n <= 0 || quota <= 0 {
		return 0, nil
	}
	where := ` WHERE ` + ownerCol + ` = $1 AND model = $2`
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO `+table+` (`+ownerCol+`, model) VALUES ($1, $2) ON CONFLICT (`+ownerCol+`, model) DO NOTHING`, owner, model)
	b.Queue(`SELECT used FROM `+table+where+` FOR UPDATE`, owner, model)
	b.Queue(`UPDATE `+table+` SET used = used + LEAST($3::int, GREATEST($4::int - used, 0))`+where+` RETURNING used`, owner, model, n, quota)
	br := s.pool.SendBatch(ctx, b)
	var before, after int
	err := func() error {
		if _, err := br.Exec(); err != nil {
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
		return 0, err
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

// ConsumeUpstreamFree takes up to n images from the channel's free quota for model and returns
// how many it took (see takeFree).
func (s *Store) ConsumeUpstreamFree(ctx context.Context, channel, model string, n, quota int) (int, error) {
	took, err := s.takeFree(ctx, "upstream_free", "channel", channel, model, n, quota)
	if err != nil {
		return 0, fmt.Errorf("postgres: consume upstream free images: %w", err)
	}
	return took, nil
}
