package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

const usageColumns = `request_id, time, key_id, model, provider, channel, operation, n_requested,
	n_delivered, width, height, steps, cost, currency, status, error_kind, latency_ms, upstream_ms, client_request_id,
	upstream_cost, upstream_list_cost, upstream_currency`

// InsertUsage writes the events in one transaction, skipping request ids already in the ledger,
// and adds the cost of those it inserted to their keys' spend (see addSpend).
//
// A batch is first inserted without asking which rows went in: when every row did (the writer's
// usual case, events never written before), all of them are charged. When the row counts show
// some were skipped (a replay, a retried batch, an id twice in the batch), the transaction is
// rolled back and the batch inserted again with RETURNING, which names the rows inserted.
// RETURNING costs about a third of a row's insert (BenchmarkInsertUsage), so only the rare
// batch pays it.
func (s *Store) InsertUsage(ctx context.Context, events []store.UsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	for _, e := range events {
		if e.RequestID == "" {
			return fmt.Errorf("sqlite: insert usage: an event has no request id (key %s, model %s)", e.KeyID, e.Model)
		}
	}
	err := s.insertUsage(ctx, events, false)
	if errors.Is(err, errSkipped) {
		err = s.insertUsage(ctx, events, true)
	}
	if err != nil {
		return fmt.Errorf("sqlite: insert usage: %w", err)
	}
	return nil
}

// errSkipped rolls back a batch some of whose rows were already in the ledger, inserted
// without RETURNING.
var errSkipped = errors.New("rows already in the ledger")

// insertUsage inserts events in one transaction, in statements of usageInsertRows rows. With
// returning, each statement names the rows it inserted and only those are charged; without,
// it fails with errSkipped unless every row went in.
func (s *Store) insertUsage(ctx context.Context, events []store.UsageEvent, returning bool) error {
	stmts, err := s.prepareInserts(ctx, returning)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		var charged []store.UsageEvent
		args := make([]any, 0, usageInsertRows[0]*usageColumnCount)
		for rest := events; len(rest) > 0; {
			if len(rest) < len(events) {
				// Between statements, let the goroutines queued behind this one run: a batch
				// of 500 rows is 3-5 ms of CPU, and Go preempts a running goroutine only after
				// 10 ms, so on two cores requests readied on this P would wait for the ledger.
				// (imagegw-load's rate scenario on tmpfs: goroutines waiting over 1 ms for a P
				// 0.37-0.63 % -> 0.21-0.30 %, the proxy's 0.06-0.16 %.)
				runtime.Gosched()
			}
			i := 0 // the largest statement the rest fills
			for usageInsertRows[i] > len(rest) {
				i++
			}
			stmt, chunk := tx.StmtContext(ctx, stmts[i]), rest[:usageInsertRows[i]]
			rest = rest[len(chunk):]
			args = args[:0]
			for _, e := range chunk {
				args = append(args, e.RequestID, micros(e.Time), e.KeyID, e.Model, e.Provider, e.Channel,
					e.Operation, e.NRequested, e.NDelivered, e.Width, e.Height, e.Steps, int64(e.Cost), e.Currency,
					e.Status, e.ErrorKind, e.LatencyMS, e.UpstreamMS, e.ClientRequestID, int64(e.UpstreamCost), int64(e.UpstreamListCost),
					e.UpstreamCurrency)
			}
			if !returning {
				res, err := stmt.ExecContext(ctx, args...)
				if err != nil {
					return fmt.Errorf("requests %s…: %w", chunk[0].RequestID, err)
				}
				if n, err := res.RowsAffected(); err != nil || n != int64(len(chunk)) {
					return errors.Join(errSkipped, err)
				}
				for _, e := range chunk {
					if e.Cost > 0 && e.KeyID != "" {
						charged = append(charged, e)
					}
				}
				continue
			}
			first := make(map[string]int, len(chunk)) // a request id twice in a batch: the first wins
			for i, e := range chunk {
				if _, ok := first[e.RequestID]; !ok {
					first[e.RequestID] = i
				}
			}
			res, err := stmt.QueryContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("requests %s…: %w", chunk[0].RequestID, err)
			}
			for res.Next() {
				var id string
				if err := res.Scan(&id); err != nil {
					res.Close()
					return err
				}
				if e := chunk[first[id]]; e.Cost > 0 && e.KeyID != "" {
					charged = append(charged, e)
				}
			}
			if err := errors.Join(res.Err(), res.Close()); err != nil {
				return fmt.Errorf("requests %s…: %w", chunk[0].RequestID, err)
			}
		}
		return addSpend(ctx, tx, charged)
	})
}

// Ledger rows go in with statements of 32, 8 and 1 rows (22 parameters each, far below
// SQLite's limit), prepared once: per-statement costs (parsing, binding through database/sql,
// the VM's setup) are most of a row's cost when each row is its own statement.
var usageInsertRows = [...]int{32, 8, 1}

const usageColumnCount = 22

// prepareInserts prepares the ledger's inserts (with RETURNING or without) on the writer
// connection the first time (and again after a failure); call it outside a transaction, which
// holds that one connection.
func (s *Store) prepareInserts(ctx context.Context, returning bool) ([len(usageInsertRows)]*sql.Stmt, error) {
	s.insertMu.Lock()
	defer s.insertMu.Unlock()
	k := 0
	if returning {
		k = 1
	}
	for i, rows := range usageInsertRows {
		if s.inserts[k][i] == nil {
			st, err := s.w.PrepareContext(ctx, buildInsertUsageSQL(rows, returning))
			if err != nil {
				return s.inserts[k], fmt.Errorf("prepare: %w", err)
			}
			s.inserts[k][i] = st
		}
	}
	return s.inserts[k], nil
}

func buildInsertUsageSQL(rows int, returning bool) string {
	row := "(" + strings.Repeat("?, ", usageColumnCount-1) + "?)"
	var b strings.Builder
	b.WriteString("INSERT INTO usage_events (" + usageColumns + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT (request_id) DO NOTHING")
	if returning {
		b.WriteString(" RETURNING request_id")
	}
	return b.String()
}

// where builds the WHERE clause for f: Since is inclusive, Until exclusive.
func where(f store.UsageFilter) (string, []any) {
	var conds []string
	var args []any
	if f.KeyID != "" {
		conds = append(conds, "key_id = ?")
		args = append(args, f.KeyID)
	}
	if f.Model != "" {
		conds = append(conds, "model = ?")
		args = append(args, f.Model)
	}
	if !f.Since.IsZero() {
		conds = append(conds, "time >= ?")
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "time < ?")
		args = append(args, micros(f.Until))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListUsage returns matching events, newest first (ties by request id, descending), at most
// limit of them (0: all). The filter's Since is inclusive and Until exclusive.
func (s *Store) ListUsage(ctx context.Context, f store.UsageFilter, limit int) ([]store.UsageEvent, error) {
	w, args := where(f)
	q := `SELECT ` + usageColumns + ` FROM usage_events` + w + ` ORDER BY time DESC, request_id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list usage: %w", err)
	}
	defer rows.Close()
	var events []store.UsageEvent
	for rows.Next() {
		var e store.UsageEvent
		var t, cost, upCost, upList int64
		if err := rows.Scan(&e.RequestID, &t, &e.KeyID, &e.Model, &e.Provider, &e.Channel, &e.Operation,
			&e.NRequested, &e.NDelivered, &e.Width, &e.Height, &e.Steps, &cost, &e.Currency, &e.Status,
			&e.ErrorKind, &e.LatencyMS, &e.UpstreamMS, &e.ClientRequestID, &upCost, &upList, &e.UpstreamCurrency); err != nil {
			return nil, fmt.Errorf("sqlite: list usage: %w", err)
		}
		e.Time, e.Cost = fromMicros(t), money.Amount(cost)
		e.UpstreamCost, e.UpstreamListCost = money.Amount(upCost), money.Amount(upList)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list usage: %w", err)
	}
	return events, nil
}

// SumUsage aggregates matching events per group and currency, ordered by group then currency,
// summing both the keys' charges (Cost) and the providers' (UpstreamCost). Days are UTC dates
// ("2026-11-22").
func (s *Store) SumUsage(ctx context.Context, f store.UsageFilter, groupBy string) ([]store.UsageGroup, error) {
	var g string
	switch groupBy {
	case store.GroupByDay:
		g = `strftime('%Y-%m-%d', time / 1000000, 'unixepoch')`
	case store.GroupByModel:
		g = `model`
	case store.GroupByKey:
		g = `key_id`
	case store.GroupByChannel:
		g = `channel`
	default:
		return nil, fmt.Errorf("sqlite: sum usage: unknown grouping %q (want %q, %q, %q or %q)",
			groupBy, store.GroupByDay, store.GroupByModel, store.GroupByKey, store.GroupByChannel)
	}
	w, wargs := where(f)
	args := append([]any{store.StatusFailed, store.StatusIndeterminate}, wargs...)
	q := `SELECT ` + g + ` AS grp, currency, COUNT(*), COALESCE(SUM(n_delivered), 0), COALESCE(SUM(cost), 0),
			COALESCE(SUM(upstream_cost), 0), COALESCE(SUM(status = ?), 0), COALESCE(SUM(status = ?), 0)
		FROM usage_events` + w + `
		GROUP BY grp, currency ORDER BY grp, currency`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sum usage: %w", err)
	}
	defer rows.Close()
	var groups []store.UsageGroup
	for rows.Next() {
		var u store.UsageGroup
		var cost, upCost int64
		if err := rows.Scan(&u.Group, &u.Currency, &u.Requests, &u.Images, &cost, &upCost, &u.Failed, &u.Indeterminate); err != nil {
			return nil, fmt.Errorf("sqlite: sum usage: %w", err)
		}
		u.Cost, u.UpstreamCost = money.Amount(cost), money.Amount(upCost)
		groups = append(groups, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sum usage: %w", err)
	}
	return groups, nil
}
