// Package sqlite implements store.Store on an embedded SQLite database (modernc.org/sqlite, pure
// Go, no cgo): the default store, so the gateway runs with nothing else installed.
//
// The database runs in WAL mode with foreign keys on and a busy timeout; the writer commits with
// synchronous=FULL, so a write is on disk when it returns. Writes go through one
// connection and every multi-statement write is a BEGIN IMMEDIATE transaction, so a budget hold
// is checked and placed atomically even when several processes share the file; reads use a
// separate pool of read-only connections, which WAL lets run beside the writer. The path
// ":memory:" opens a private in-memory database on a single connection (for tests).
//
// Times are stored as INTEGER microseconds since the Unix epoch (UTC), the same precision as
// Postgres; the models list is a JSON array.
package sqlite
