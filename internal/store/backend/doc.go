// Package backend opens the store a database URL names: SQLite (the embedded default) or
// Postgres. It is the one place that knows both implementations, so the rest of the gateway
// depends only on the store.Store interface.
package backend
