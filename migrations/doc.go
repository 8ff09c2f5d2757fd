// Package migrations embeds the SQL migrations of both stores, so the binary carries its schema.
//
// Files are named NNNN_description.sql and applied in version order, each once, each in its own
// transaction; the stores record applied versions in a schema_migrations table (see
// store/postgres and store/sqlite, which own the runners). A migration is never edited after it
// ships: a change is a new file with the next number, added to both directories.
package migrations
