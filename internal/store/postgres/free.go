package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/imagegw/imagegw/internal/store"
)

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

// ConsumeUpstreamFree takes up to n images from the channel's free quota for model: one batch
// (one implicit transaction, one round trip) that locks the pool row, reads it and updates it,
// as ConsumeFreeImages does.
func (s *Store) ConsumeUpstreamFree(ctx context.Context, channel, model string, n, quota int) (int, error) {
	if n <= 0 || quota <= 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO upstream_free (channel, model) VALUES ($1, $2) ON CONFLICT (channel, model) DO NOTHING`, channel, model)
	b.Queue(`SELECT used FROM upstream_free WHERE channel = $1 AND model = $2 FOR UPDATE`, channel, model)
	b.Queue(`UPDATE upstream_free SET used = used + LEAST($3::int, GREATEST($4::int - used, 0))
		WHERE channel = $1 AND model = $2 RETURNING used`, channel, model, n, quota)
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
		return 0, fmt.Errorf("postgres: consume upstream free images: %w", err)
	}
	return after - before, nil
}
