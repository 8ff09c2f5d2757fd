package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/migrations"
)

// busyTimeout is how long a write waits for another process's write lock before failing.
const busyTimeout = 10 * time.Second

// Store is a store.Store backed by one SQLite database file.
type Store struct {
	w         *sql.DB // exactly one connection: every write, in BEGIN IMMEDIATE transactions
	r         *sql.DB // read-only connections; the same pool as w for ":memory:"
	closeOnce sync.Once
	closeErr  error

	// The ledger's inserts, without RETURNING and with, prepared on w when first needed (see
	// prepareInserts).
	insertMu sync.Mutex
	inserts  [2][len(usageInsertRows)]*sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path, creating its parent directory.
// The path ":memory:" opens a private in-memory database. Open does not migrate: call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite: open %q: the path may not contain '?'", path)
	}
	memory := path == ":memory:"
	if !memory {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("sqlite: open: create directory: %w", err)
			}
		}
	}

	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	params.Add("_pragma", "foreign_keys(1)")
	if !memory {
		params.Add("_pragma", "journal_mode(WAL)")
	}
	wparams := cloneValues(params)
	wparams.Set("_txlock", "immediate")
	// A multi-row INSERT inside a transaction keeps a statement journal; in memory it costs no
	// file writes (BenchmarkInsertUsage: about 15% less per ledger row).
	wparams.Add("_pragma", "temp_store(MEMORY)")
	if !memory {
		// FULL: a commit is on disk when it returns. The usage writer deletes journal lines
		// once InsertUsage returns, and with NORMAL a WAL commit may roll back after a power
		// loss or an OS crash: those ledger rows (and the spend they carry) would be gone from
		// both places. The cost is one fsync per batch, off the request path.
		wparams.Add("_pragma", "synchronous(FULL)")
	}

	w, err := sql.Open("sqlite", path+"?"+wparams.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer connection: writes in this process queue in the pool instead of spinning on
	// SQLITE_BUSY, and an in-memory database lives exactly as long as this connection.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, r: w}
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	if !memory {
		rparams := cloneValues(params)
		rparams.Set("_query_only", "1")
		r, err := sql.Open("sqlite", path+"?"+rparams.Encode())
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		if err := r.PingContext(ctx); err != nil {
			_ = r.Close()
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
		}
		s.r = r
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Ping checks both connection pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database; closing twice is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		s.insertMu.Lock()
		for _, sts := range s.inserts {
			for _, st := range sts {
				if st != nil {
					errs = append(errs, st.Close())
				}
			}
		}
		s.insertMu.Unlock()
		if s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return s.closeErr
}

// write runs fn in a BEGIN IMMEDIATE transaction on the writer connection, committing when fn
// returns nil. fn must use only tx: the writer pool has one connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations not yet recorded in schema_migrations, in order, each
// in its own immediate transaction (which also keeps two processes from applying one twice).
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrations.SQLite)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := s.write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, micros(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// micros is how a time is stored: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros reads a stored time, in UTC.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
