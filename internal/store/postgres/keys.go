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

const keyColumns = `id, name, prefix, hash, models, created_at, expires_at, revoked_at,
	budget, budget_period, rpm, ipm, mppm, concurrency, map_nearest, markup`

func scanKey(row pgx.Row) (*store.Key, error) {
	var (
		k                    store.Key
		budget, markup       *int64
		rpm, ipm, mppm, conc *int32
	)
	err := row.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.Models, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt,
		&budget, &k.BudgetPeriod, &rpm, &ipm, &mppm, &conc, &k.MapNearest, &markup)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	if len(k.Models) == 0 {
		k.Models = nil
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.RevokedAt = utcPtr(k.ExpiresAt), utcPtr(k.RevokedAt)
	if budget != nil {
		b := money.Amount(*budget)
		k.Budget = &b
	}
	if markup != nil {
		m := money.Amount(*markup)
		k.Markup = &m
	}
	k.RPM, k.IPM, k.MPPM, k.Concurrency = intPtr(rpm), intPtr(ipm), intPtr(mppm), intPtr(conc)
	return &k, nil
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	i := int(*v)
	return &i
}

func scanKeys(rows pgx.Rows) ([]*store.Key, error) {
	defer rows.Close()
	var keys []*store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// mutableColumns are the columns UpdateKey may change, numbered from $2 ($1 is the id).
const mutableColumns = `name = $2, models = $3, expires_at = $4, budget = $5, budget_period = $6,
	rpm = $7, ipm = $8, mppm = $9, concurrency = $10, map_nearest = $11, markup = $12`

// mutableArgs returns k's values for mutableColumns, in order.
func mutableArgs(k *store.Key) []any {
	models := k.Models
	if models == nil {
		models = []string{}
	}
	var budget *int64
	if k.Budget != nil {
		b := int64(*k.Budget)
		budget = &b
	}
	var markup *int64
	if k.Markup != nil {
		m := int64(*k.Markup)
		markup = &m
	}
	return []any{k.Name, models, k.ExpiresAt, budget, k.BudgetPeriod, k.RPM, k.IPM, k.MPPM, k.Concurrency, k.MapNearest, markup}
}

// CreateKey inserts k, setting k.CreatedAt to now when it is zero. A duplicate id or hash is
// store.ErrConflict.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	args := append([]any{k.ID}, mutableArgs(k)...)
	args = append(args, k.Prefix, k.Hash, k.CreatedAt, k.RevokedAt)
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, name, models, expires_at, budget, budget_period,
			rpm, ipm, mppm, concurrency, map_nearest, markup, prefix, hash, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`, args...)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("postgres: create key %s: %w", k.ID, store.ErrConflict)
		}
		return fmt.Errorf("postgres: create key %s: %w", k.ID, err)
	}
	return nil
}

// KeyByHash finds a key by the hash of its secret, revoked and expired keys included.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash))
	if err != nil {
		return nil, fmt.Errorf("postgres: key by hash: %w", err)
	}
	return k, nil
}

// Key finds a key by id.
func (s *Store) Key(ctx context.Context, id string) (*store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: key %s: %w", id, err)
	}
	return k, nil
}

// ListKeys returns every key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]*store.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list keys: %w", err)
	}
	return keys, nil
}

// UpdateKey applies u to the key (locked for the update) and returns the result.
func (s *Store) UpdateKey(ctx context.Context, id string, u store.KeyUpdate) (*store.Key, error) {
	var k *store.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1 FOR NO KEY UPDATE`, id))
		if err != nil {
			return err
		}
		u.Apply(k)
		// RETURNING gives back what was stored (times in UTC, to the microsecond).
		k, err = scanKey(tx.QueryRow(ctx, `UPDATE api_keys SET `+mutableColumns+` WHERE id = $1 RETURNING `+keyColumns,
			append([]any{id}, mutableArgs(k)...)...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update key %s: %w", id, err)
	}
	return k, nil
}

// RevokeKey marks the key revoked at at, unless it already is.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("postgres: revoke key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: revoke key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// CountKeys counts all keys, revoked ones included.
func (s *Store) CountKeys(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count keys: %w", err)
	}
	return n, nil
}
