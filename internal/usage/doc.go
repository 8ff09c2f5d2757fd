// Package usage writes the usage ledger off the request path and reads it back for reports.
//
// # Recording
//
// A Recorder writes the ledger through a durable local journal: JSON-lines files
// (journal-NNNNNN.jsonl) in the configured directory, locked (flock) so two processes never
// share one. A request journals a begin line before it calls upstream (Begin: written, not
// fsync'd, so it survives a crash of the process) and its final event after (Commit, or Record
// for an event with no begin): the event is fsync'd before Commit returns, one fsync covering
// every append made before it started (group commit), and only then may the request deliver.
// Its line is staged rather than written by its caller: the leader of the next fsync writes the
// staged lines of all the charges waiting for it as one append, then fsyncs.
// With Options.SyncAfter, Commit returns once the event is written, and a background flusher
// fsyncs the journal (at once after a quiet spell, then at most SyncAfter apart); with NoSync,
// only the kernel's writeback does. Either way a crash of the process loses nothing.
// A request refused before any upstream call ends its begin with an abort line and leaves no row.
// Lines are written by a hand-rolled encoder, byte for byte what encoding/json writes. The active
// file is kept zero-filled a megabyte ahead of its appends (preallocated), so an append overwrites
// zeros instead of growing the file and the fsync after it flushes data, not the file system's
// metadata; a file's lines end at its first zero byte. While busy (appends arriving at 4,000 a
// second or more, about 2,000 requests) fsyncs start at least SyncGap apart; then, and whenever
// they are slow (averaging over 0.2 ms), they go through io_uring (package iouring), so the
// goroutine waiting for the disk does not hold one of the scheduler's Ps.
//
// A background writer moves events to the store in batches (BatchSize, or what FlushInterval
// gathered) with store.InsertUsage, which skips request ids already in the ledger, so an event
// written twice (a retried batch, a replay) lands exactly once. The lines this process appended
// reach the writer from memory (a bounded queue kept beside the files), so it neither reads back
// nor decodes what was just written; past the bound (the store down or slow) it reads them from
// the files. A file is deleted once every event in it is in the store and every request begun in
// it has ended; the active file is emptied (its lines overwritten with zeros) when the writer has
// caught up.
//
// While the store is down events wait in the journal and land in order, exactly once, when it is
// back. A new Recorder first replays what an earlier process left, writing an indeterminate row
// (no cost, error kind "interrupted") for each request that process began and never finished. A
// torn last line (a crash mid-append) is terminated when the journal is opened; a line that does
// not decode is skipped, logged with its offset and counted, never fatal.
//
// Close stops accepting events and waits (until its context ends) for the writer to put every
// journaled event in the store; what does not make it stays in the journal for the next start.
// Close the Recorder before closing the store.
//
// Metrics (namespace imagegw, subsystem usage) are in metrics.go: pending events, open
// requests, journal bytes, fsync latency, events written, batch duration, store down, corrupt
// lines and dropped events.
//
// # Reports
//
// Query and Report serve `imagegw usage` and GET /admin/v1/usage: events or sums by day, model
// or key, filtered by key, model and time, and, for one key, its budget position (spent, held,
// remaining) in the current budget period.
package usage
