// Package store defines the gateway's persistent state: API keys, budgets with their holds, free
// quotas and the usage ledger. Implementations live in store/postgres (production, pgx) and
// store/sqlite (embedded default, modernc.org/sqlite); both pass the conformance suite in
// store/storetest. Amounts are integer micro-units (internal/money); times are UTC.
package store
