package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

const keyColumns = `id, name, prefix, hash, models, created_at, expires_at, revoked_at,
	budget, budget_period, rpm, ipm, mppm, concurrency, map_nearest, markup`

type scanner interface {
	Scan(dest ...any) error
}

func scanKey(row scanner) (*store.Key, error) {
	var (
		k                          store.Key
		models                     string
		created                    int64
		expires, revoked, budget   sql.NullInt64
		rpm, ipm, mppm, conc, mapn sql.NullInt64
		markup                     sql.NullInt64
	)
	err := row.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &models, &created, &expires, &revoked,
		&budget, &k.BudgetPeriod, &rpm, &ipm, &mppm, &conc, &mapn, &markup)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return nil, fmt.Errorf("key %s: models: %w", k.ID, err)
	}
	if len(k.Models) == 0 {
		k.Models = nil
	}
	k.CreatedAt = fromMicros(created)
	k.ExpiresAt = timePtr(expires)
	k.RevokedAt = timePtr(revoked)
	if budget.Valid {
		b := money.Amount(budget.Int64)
		k.Budget = &b
	}
	k.RPM, k.IPM, k.MPPM, k.Concurrency = intPtr(rpm), intPtr(ipm), intPtr(mppm), intPtr(conc)
	if mapn.Valid {
		v := mapn.Int64 != 0
		k.MapNearest = &v
	}
	if markup.Valid {
		m := money.Amount(markup.Int64)
		k.Markup = &m
	}
	return &k, nil
}

func intPtr(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	i := int(v.Int64)
	return &i
}

func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func modelsJSON(models []string) (string, error) {
	if models == nil {
		models = []string{}
	}
	b, err := json.Marshal(models)
	return string(b), err
}

// mutableColumns are the columns UpdateKey may change.
const mutableColumns = `name = ?, models = ?, expires_at = ?, budget = ?, budget_period = ?,
	rpm = ?, ipm = ?, mppm = ?, concurrency = ?, map_nearest = ?, markup = ?`

// mutableArgs returns k's values for mutableColumns, in order.
func mutableArgs(k *store.Key) ([]any, error) {
	models, err := modelsJSON(k.Models)
	if err != nil {
		return nil, err
	}
	var budget, mapn, markup any
	if k.Budget != nil {
		budget = int64(*k.Budget)
	}
	if k.Markup != nil {
		markup = int64(*k.Markup)
	}
	if k.MapNearest != nil {
		mapn = 0
		if *k.MapNearest {
			mapn = 1
		}
	}
	return []any{k.Name, models, nullMicros(k.ExpiresAt), budget, k.BudgetPeriod,
		nullInt(k.RPM), nullInt(k.IPM), nullInt(k.MPPM), nullInt(k.Concurrency), mapn, markup}, nil
}

// CreateKey inserts k, setting k.CreatedAt to now when it is zero. A duplicate id or hash is
// store.ErrConflict.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	args, err := mutableArgs(k)
	if err != nil {
		return fmt.Errorf("sqlite: create key: %w", err)
	}
	args = append([]any{k.ID, k.Prefix, k.Hash, micros(k.CreatedAt), nullMicros(k.RevokedAt)}, args...)
	_, err = s.w.ExecContext(ctx, `INSERT INTO api_keys (id, prefix, hash, created_at, revoked_at,
		name, models, expires_at, budget, budget_period, rpm, ipm, mppm, concurrency, map_nearest, markup)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("sqlite: create key %s: %w", k.ID, store.ErrConflict)
		}
		return fmt.Errorf("sqlite: create key %s: %w", k.ID, err)
	}
	return nil
}

// KeyByHash finds a key by the hash of its secret, revoked and expired keys included.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*store.Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if err != nil {
		return nil, fmt.Errorf("sqlite: key by hash: %w", err)
	}
	return k, nil
}

// Key finds a key by id.
func (s *Store) Key(ctx context.Context, id string) (*store.Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: key %s: %w", id, err)
	}
	return k, nil
}

// ListKeys returns every key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]*store.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	defer rows.Close()
	var keys []*store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return keys, nil
}

// UpdateKey applies u to the key and returns the result.
func (s *Store) UpdateKey(ctx context.Context, id string, u store.KeyUpdate) (*store.Key, error) {
	var k *store.Key
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
		if err != nil {
			return err
		}
		u.Apply(k)
		args, err := mutableArgs(k)
		if err != nil {
			return err
		}
		// RETURNING gives back what was stored (times in UTC, to the microsecond).
		k, err = scanKey(tx.QueryRowContext(ctx, `UPDATE api_keys SET `+mutableColumns+` WHERE id = ? RETURNING `+keyColumns,
			append(args, id)...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: update key %s: %w", id, err)
	}
	return k, nil
}

// RevokeKey marks the key revoked at at, unless it already is.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, micros(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: revoke key %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// CountKeys counts all keys, revoked ones included.
func (s *Store) CountKeys(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count keys: %w", err)
	}
	return n, nil
}
