package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/migrations"
)

// migrateLockClass is the first half of the advisory lock key Migrate takes; the second half is
// a hash of the current schema, so stores in different schemas migrate independently.
const migrateLockClass = 0x69677721 // "igw!"

// Store is a store.Store backed by a Postgres connection pool.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Connection settings applied when the URL does not give them, so that a network partition
// cannot hold a connect or a liveness ping forever (pgx's own defaults wait without limit).
// Store calls on the request path also carry their caller's deadline.
const (
	// DefaultConnectTimeout bounds establishing one connection (TCP, TLS, startup), also for
	// connections the pool opens in the background; the URL's connect_timeout (seconds) or
	// PGCONNECT_TIMEOUT overrides it.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultPingTimeout bounds the ping of a connection idle for a while before the pool hands
	// it out (a dead one is replaced); pool_ping_timeout overrides it.
	DefaultPingTimeout = 2 * time.Second
	// DefaultHealthCheckPeriod is how often the pool drops idle and expired connections and
	// refills pool_min_conns; pool_health_check_period overrides it.
	DefaultHealthCheckPeriod = 15 * time.Second
)

// Open connects to the database at url (postgres://user:pass@host:port/db?sslmode=…; pool
// settings such as pool_max_conns and runtime parameters such as search_path may be given in
// the query) and checks it answers. Open does not migrate: call Migrate. Without
// connect_timeout, pool_ping_timeout or pool_health_check_period in url, DefaultConnectTimeout,
// DefaultPingTimeout and DefaultHealthCheckPeriod apply.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in parse errors.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout <= 0 { // absent (or 0, which would mean forever)
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if !strings.Contains(url, "pool_ping_timeout") {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if !strings.Contains(url, "pool_health_check_period") {
		cfg.HealthCheckPeriod = DefaultHealthCheckPeriod
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Pool returns the underlying pool, for callers that need to run their own queries (tests).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool; closing twice is harmless.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Migrate applies the embedded migrations not yet recorded in schema_migrations, in order, each
// in its own transaction, holding an advisory lock so concurrent processes do not race.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrations.Postgres)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()

	const lockKey = `$1::int4, hashtext(current_schema())`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`, migrateLockClass); err != nil {
		return fmt.Errorf("postgres: migrate: take lock: %w", err)
	}
	defer func() {
		// A failed unlock (cancelled context, broken connection) must not leave the lock held by
		// a pooled connection: closing the connection releases it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, migrateLockClass); err != nil {
			_ = conn.Conn().Close(ctx)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("postgres: migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var applied bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&applied); err != nil {
				return err
			}
			if applied {
				return nil
			}
			// No arguments: pgx uses the simple protocol, which runs a multi-statement file.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func isUnique(err error) bool     { return pgCode(err) == "23505" }
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
