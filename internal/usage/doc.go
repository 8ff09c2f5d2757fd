// Package usage writes the usage ledger off the request path and reads it back for reports.
//
// # Recording
//
// A Recorder takes one store.UsageEvent per request with Record, which never waits for I/O in
// the common case: the event goes into a bounded in-memory queue. A background writer takes
// events from the queue and inserts them in batches (BatchSize events, or whatever is queued
// every FlushInterval) with store.InsertUsage, which skips request ids already in the ledger, so
// writing an event twice is harmless and every event ends up in the ledger exactly once.
//
// When an insert fails (the store is unreachable), the batch is appended to a durable local
// outbox instead: a JSON-lines file (outbox.jsonl) under the configured directory, fsync'd
// after every append. While the store is down, later batches go straight to the outbox and the
// writer retries the store every RetryInterval by replaying the outbox, oldest event first, in
// batches (yielding to live events whenever they fill half the queue); once all of it is in the
// store the file is truncated. A new Recorder replays what a
// previous process left in its outbox. If the queue is full, Record appends the event to the
// outbox itself (the one case where it does I/O) rather than drop it.
//
// A torn last line (a crash in the middle of an append) is terminated when the outbox is
// opened; a line that does not decode is skipped, logged with its offset and counted
// (imagegw_usage_outbox_corrupt_lines_total), never fatal. The directory is locked (flock) so
// two processes never share one outbox.
//
// Close flushes: it stops accepting events, drains the queue into the store (or, if the store is
// down or ctx ends first, into the outbox), and closes the outbox. Close the Recorder before
// closing the store.
//
// Metrics (namespace imagegw, subsystem usage): queue_depth, outbox_events, events_written_total,
// outbox_appends_total{reason}, write_failures_total, batch_duration_seconds,
// outbox_corrupt_lines_total, events_dropped_total.
//
// # Reports
//
// Query and Report serve `imagegw usage` and GET /admin/v1/usage: events or sums by day, model
// or key, filtered by key, model and time, and, for one key, its budget position (spent, held,
// remaining) in the current budget period.
package usage
