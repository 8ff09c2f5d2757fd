// Package postgres implements store.Store on Postgres with pgx v5 (pgxpool): the production
// store, shared by every gateway process.
//
// Budget holds are atomic across processes: PlaceHold locks the key's row for the period in
// budget_spend (SELECT … FOR UPDATE), then inserts the hold only if spent + unexpired holds +
// amount still fits the budget, all in one implicit transaction sent as one pipelined batch (a
// single network round trip). Settling deletes the hold and adds the spend in one transaction, so
// concurrent placers count a settled request exactly once. Migrate takes a session advisory
// lock, so processes starting together apply each migration once.
package postgres
