package usage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/store"
)

// Writer is the part of store.Store a Recorder writes to.
type Writer interface {
	// InsertUsage writes events, skipping request ids already in the ledger.
	InsertUsage(ctx context.Context, events []store.UsageEvent) error
}

// Options configure a Recorder. Dir is required.
type Options struct {
	// Dir holds the journal (config billing.outbox_dir). One process per directory.
	Dir string
	// BatchSize is the most journal lines the writer reads for one insert (a request's begin
	// line and its event are two, so about half as many events); default 1024. A SQLite row
	// costs about a fifth less CPU in batches of 512 than of 128 (BenchmarkInsertUsage).
	BatchSize int
	// FlushInterval is how long the writer lets a partial batch fill before inserting it (and how
	// often an idle writer looks at the journal); default 50ms. With a full batch's worth of
	// events waiting it inserts at once; Flush and Close do not wait for it.
	FlushInterval time.Duration
	// RetryInterval is how often the store is retried while it fails; default 2s.
	RetryInterval time.Duration
	// WriteTimeout bounds one insert; default 5s.
	WriteTimeout time.Duration
	// SegmentBytes is the size at which the journal starts a new file; default 64 MiB.
	SegmentBytes int64
	// NoSync skips the fsync of charges: they survive a crash of the process (SIGKILL) but not
	// of the machine. Default false: a charge is fsync'd (group commit) before Commit returns.
	NoSync bool
	// SyncAfter > 0 fsyncs charges in the background instead of before Commit returns: a flush
	// starts at once after a quiet spell, and flushes start at most SyncAfter apart, so a charge
	// is on the disk within SyncAfter plus one fsync of its Commit. A crash of the machine can
	// lose that much; a crash of the process loses nothing. Ignored with NoSync.
	SyncAfter time.Duration
	// SyncGap is the least time between two fsyncs while the journal is busy (appends arriving
	// at 4,000 a second or more, about 2,000 requests): waiting out the rest of it lets one fsync
	// cover more charges, which saves kernel CPU at high rates and adds at most SyncGap to a
	// charge's latency. A quiet journal fsyncs at once. Default 1ms (measured: +30% max req/s
	// on 2 cores); negative: never wait.
	SyncGap time.Duration
	// Logger receives outages, recoveries and corrupt journal lines; nil means no logging.
	Logger *zap.Logger
	// Registerer receives the metrics; nil means no metrics.
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1024
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 2 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 64 << 20
	}
	if o.SyncGap == 0 {
		o.SyncGap = time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// ErrNotDurable wraps every failure to make an event durable: the request it belongs to must
// not deliver (or, for a begin, must not start).
var ErrNotDurable = errors.New("usage: event not durable")

// InterruptedKind is the error kind of the indeterminate ledger row written for a request
// whose process died between Begin and Commit.
const InterruptedKind = "interrupted"

// Recorder writes the usage ledger through a durable local journal. See the package
// documentation.
type Recorder struct {
	opts  Options
	store Writer
	j     *journal
	log   *zap.Logger
	m     *metrics
	run   string
	seq   atomic.Uint64

	wake    chan struct{}
	urgent  chan struct{} // Flush and Close: insert what is there without letting batches fill
	done    chan struct{}
	dirty   chan struct{} // SyncAfter: a charge was appended since the flusher last looked
	flushed chan struct{} // SyncAfter: closed when the flusher has stopped
	// base is the context of the writer's store calls; Close cancels it when its own context
	// ends, so a hung insert cannot hold shutdown up.
	base       context.Context
	cancelBase context.CancelFunc
	closeOnce  sync.Once
	closeErr   error

	appended atomic.Int64 // event lines appended by this process
	inserted atomic.Int64 // event lines of this process the writer has put in the store
	oldLeft  atomic.Int64 // lower bound of events left by earlier processes, until replayed
	open     atomic.Int64 // begun and not yet committed, as the writer has read them
	dropped  atomic.Int64
	landed   atomic.Int64 // unix nanos: every event appended before it is in the store

	pmu      sync.Mutex
	progress chan struct{} // closed and replaced after every writer cycle
}

// Open opens (and locks) the journal in opts.Dir and starts the writer, which first replays
// what earlier processes left (writing an indeterminate row for each request they began and
// never finished). ctx bounds only the opening. Close the Recorder before closing the store.
func Open(ctx context.Context, st Writer, opts Options) (*Recorder, error) {
	opts.defaults()
	if st == nil {
		return nil, errors.New("usage: recorder: no store")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("usage: open recorder: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	j, torn, err := openJournal(opts.Dir, opts.SegmentBytes, opts.SyncGap)
	if err != nil {
		return nil, err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	r := &Recorder{
		opts: opts, store: st, j: j, log: opts.Logger, m: m, run: hex.EncodeToString(b[:]),
		wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), done: make(chan struct{}), progress: make(chan struct{}),
	}
	r.base, r.cancelBase = context.WithCancel(context.Background())
	m.bind(r)
	if opts.SyncAfter > 0 && !opts.NoSync {
		r.dirty, r.flushed = make(chan struct{}, 1), make(chan struct{})
		go r.flusher()
		r.log.Info("usage journal: charges are fsync'd in the background, not before their responses (a machine crash can lose the last interval's)",
			zap.Duration("interval", opts.SyncAfter))
	}
	switch {
	case opts.NoSync:
	case j.ring != nil:
		r.log.Info("usage journal: fsyncs go through io_uring while busy or slow")
	default: // e.g. a container runtime's default seccomp profile refuses io_uring_setup
		r.log.Info("usage journal: io_uring unavailable, every fsync is an fdatasync (a blocking fsync holds a scheduler slot for its duration)",
			zap.Error(j.ringErr))
	}
	if torn > 0 {
		r.log.Warn("usage journal: a last line was torn (a crash during an append); it will be skipped", zap.Int("files", torn))
	}
	if old := j.bytes; old > 0 {
		r.oldLeft.Store(1)
		r.log.Info("usage journal: replaying what a previous process left", zap.Int64("bytes", old), zap.String("dir", opts.Dir))
	}
	go r.writer()
	return r, nil
}

// Entry is a request journaled as begun; Commit ends it.
type Entry struct {
	r   *Recorder
	seq uint64
}

// Begin journals that the request ev describes is about to call upstream (written, not
// fsync'd: it survives a crash of the process). If the process dies before Commit, the ledger
// gets an indeterminate row for it (no cost, error kind "interrupted"), so the provider's bill
// can be reconciled.
func (r *Recorder) Begin(ev store.UsageEvent) (*Entry, error) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	ev.Status, ev.ErrorKind, ev.Cost, ev.NDelivered, ev.Slice = store.StatusIndeterminate, InterruptedKind, 0, 0, ""
	seq := r.seq.Add(1)
	var ls [1]line // one copy of the line on the stack, not two
	ls[0].fill(kindBegin, r.run, seq, &ev)
	if _, err := r.j.append(ls[:]...); err != nil {
		return nil, r.fail(ev.RequestID, err)
	}
	return &Entry{r: r, seq: seq}, nil
}

// Commit journals the request's final event (setting its time when it has none). When it
// returns nil the event is durable (fsync'd, unless NoSync or SyncAfter) and will be in the
// store exactly once. An error wraps ErrNotDurable: the caller must not deliver what the event
// charges for.
func (e *Entry) Commit(ev *store.UsageEvent) error {
	return e.r.record(ev, e.seq)
}

// Abort ends a begun request that never reached an upstream: no ledger row. It is not fsync'd
// (a lost abort leaves an indeterminate row with no cost, which is only noise).
func (e *Entry) Abort() {
	if _, err := e.r.j.append(line{Kind: kindAbort, Run: e.r.run, Seq: e.seq, RequestID: "-"}); err != nil {
		e.r.log.Warn("usage journal: abort not written", zap.Error(err))
	}
}

// Record journals an event that had no Begin; see Commit.
func (r *Recorder) Record(ev store.UsageEvent) error {
	return r.record(&ev, 0)
}

func (r *Recorder) record(ev *store.UsageEvent, seq uint64) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	run := ""
	if seq != 0 {
		run = r.run
	}
	var ls [1]line
	ls[0].fill(kindEvent, run, seq, ev)
	if !r.opts.NoSync && r.dirty == nil {
		return r.commit(&ls[0])
	}
	if _, err := r.j.append(ls[:]...); err != nil {
		return r.fail(ev.RequestID, err)
	}
	r.appended.Add(1)
	r.wakeWriter()
	if r.dirty != nil {
		select {
		case r.dirty <- struct{}{}:
		default:
		}
	}
	return nil
}

// commit journals l and waits until it is fsync'd (the journal writes it with the other charges
// of its fsync). A failed fsync is only logged: the line is written (it survives a crash of the
// process and will reach the store), so the request may deliver; only a crash of the machine
// could now lose it. Out of record's line, which runs deep in a request's stack.
//
//go:noinline
func (r *Recorder) commit(l *line) error {
	start := time.Now()
	werr, serr := r.j.commit(l)
	r.m.syncs.Observe(time.Since(start).Seconds())
	if werr != nil {
		return r.fail(l.RequestID, werr)
	}
	r.appended.Add(1)
	r.wakeWriter()
	if serr != nil {
		r.syncFailed(l.RequestID, serr)
	}
	return nil
}

// syncFailed logs a charge's failed fsync; out of commit's line, where its fields would take
// stack on every charge.
//
//go:noinline
func (r *Recorder) syncFailed(requestID string, err error) {
	r.log.Error("usage journal: fsync failed; the event is written but may not survive a machine crash",
		zap.String("request_id", requestID), zap.Error(err))
}

// wakeWriter tells the writer that lines are waiting.
func (r *Recorder) wakeWriter() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// flusher fsyncs the journal in the background (Options.SyncAfter): after a quiet spell at once,
// otherwise SyncAfter after the start of the last flush. It stops when the writer's context
// ends; the journal's close flushes what is left.
func (r *Recorder) flusher() {
	defer close(r.flushed)
	var last time.Time
	failing := false
	for {
		select {
		case <-r.dirty:
		case <-r.base.Done():
			return
		}
		if wait := r.opts.SyncAfter - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.base.Done():
				t.Stop()
				return
			}
		}
		last = time.Now()
		// Logged once per streak of failures (they would repeat every SyncAfter), and the end.
		switch err := r.j.syncAll(); {
		case err != nil && !failing:
			failing = true
			r.log.Error("usage journal: background fsync failed; charges are written but may not survive a machine crash until one succeeds", zap.Error(err))
		case err == nil && failing:
			failing = false
			r.log.Info("usage journal: background fsyncs succeed again")
		}
	}
}

func (r *Recorder) fail(requestID string, err error) error {
	r.dropped.Add(1)
	r.m.dropped.Inc()
	r.log.Error("usage event could not be made durable; its request is refused", zap.String("request_id", requestID), zap.Error(err))
	return fmt.Errorf("%w: %w", ErrNotDurable, err)
}

// Landed reports the instant before which every event recorded in this process is in the store.
func (r *Recorder) Landed() time.Time {
	return time.Unix(0, r.landed.Load())
}

// Flush returns once every event recorded before the call is in the store, or when ctx ends
// (the events stay durable in the journal either way).
func (r *Recorder) Flush(ctx context.Context) error {
	t0 := time.Now()
	for {
		r.pmu.Lock()
		ch := r.progress
		r.pmu.Unlock()
		if !r.Landed().Before(t0) {
			return nil
		}
		select {
		case r.urgent <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-r.done:
			if !r.Landed().Before(t0) {
				return nil
			}
			return errors.New("usage: recorder is closed")
		case <-ctx.Done():
			return fmt.Errorf("usage: flush: %w (%d events wait in the journal)", ctx.Err(), r.Stats().Pending)
		}
	}
}

// Close stops accepting events, waits (until ctx ends) for the writer to put every journaled
// event in the store, and closes the journal. Events still in the journal are not lost: the next
// Recorder on the directory replays them. Close returns an error when events could not be made
// durable during the Recorder's life (their requests were refused), so the process can exit
// non-zero. Closing twice returns the first result.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.j.stopAppends()
		flushErr := r.Flush(ctx)
		r.cancelBase()
		<-r.done
		if r.flushed != nil {
			<-r.flushed
		}
		if err := r.j.close(); err != nil {
			r.closeErr = err
		}
		if flushErr != nil {
			r.log.Warn("usage events left in the journal at shutdown; the next start replays them",
				zap.Int64("events", r.Stats().Pending), zap.String("dir", r.opts.Dir), zap.Error(flushErr))
		}
		if n := r.dropped.Load(); n > 0 {
			r.closeErr = errors.Join(r.closeErr, fmt.Errorf("usage: %d events could not be made durable", n))
		}
	})
	return r.closeErr
}

// Stats is a snapshot of a Recorder's state.
type Stats struct {
	// Pending events are durable in the journal and not yet in the store (a lower bound while
	// an earlier process's journal is being replayed).
	Pending int64
	// Open requests began and have not committed.
	Open int64
	// JournalBytes is the journal's size on disk.
	JournalBytes int64
	// Dropped events could not be made durable.
	Dropped int64
	// StoreDown is true while the last store call failed.
	StoreDown bool
}

// Stats returns the journal's state.
func (r *Recorder) Stats() Stats {
	return Stats{
		Pending: max(r.appended.Load()+r.oldLeft.Load()-r.inserted.Load(), 0), Open: r.open.Load(),
		JournalBytes: r.j.diskBytes(), Dropped: r.dropped.Load(), StoreDown: r.m.storeDown(),
	}
}

// beginKey identifies a begin line across processes.
type beginKey struct {
	run string
	seq uint64
}

// runOf is run, as this process's own string when it is this process's run: a begin's key then
// holds no string of its own.
func (r *Recorder) runOf(run string) string {
	if run == r.run {
		return r.run
	}
	return run
}

// pos is where a read got to in one segment.
type readTo struct {
	seg *segment
	off int64
}

// writer moves journaled events to the store. It reads the segments in order, first those of
// earlier processes (ending their unfinished requests as indeterminate), and deletes a segment
// once every event in it is in the store and every request begun in it has ended.
func (r *Recorder) writer() {
	defer close(r.done)
	// open is every begun request not yet ended, by the segment its begin is in; interrupted
	// holds the events of those an earlier process began (what the ledger gets for them if
	// they never end). A request of this process needs only its segment: a few dozen bytes a
	// request in flight, not a copy of its event.
	open := map[beginKey]*segment{}
	interrupted := map[beginKey]store.UsageEvent{}
	oldDone := false
	rush := false // a Flush waits: no lingering until caught up
	var lastInsert time.Time
	// Reused from batch to batch (and cleared after each, so they hold no strings).
	var lines []line
	var lineSeg []*segment
	var batch []store.UsageEvent
	tick := time.NewTicker(r.opts.FlushInterval)
	defer tick.Stop()
	for r.base.Err() == nil {
		sampled := time.Now()
		segs, sizes, sealed := r.j.snapshot()
		select {
		case <-r.urgent:
			rush = true
		default:
		}
		if wait := r.opts.FlushInterval - time.Since(lastInsert); oldDone && !rush && wait > 0 && unread(segs, sizes) < lingerBytes {
			// Let the batch fill: fewer, larger inserts. Charges are durable in the journal
			// meanwhile; only their arrival in the store waits.
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.urgent:
				rush = true
			case <-r.base.Done():
			}
			t.Stop()
			continue
		}
		if !oldDone && oldRead(segs, sizes) {
			// Every line of the earlier processes is in: what they began and never finished is
			// an indeterminate row.
			var batch []store.UsageEvent
			for k := range open { // all an earlier process's: this one's segments are read after
				batch = append(batch, interrupted[k])
			}
			if len(batch) > 0 && !r.insert(batch) {
				r.wait(r.opts.RetryInterval)
				continue
			}
			if n := len(open); n > 0 {
				r.log.Warn("usage journal: requests in flight when an earlier process died are in the ledger as indeterminate",
					zap.Int("requests", n))
			}
			for k, seg := range open {
				seg.open--
				delete(open, k)
			}
			clear(interrupted)
			oldDone = true
			r.oldLeft.Store(0)
			continue
		}
		clear(lines)
		clear(lineSeg)
		clear(batch)
		lines, lineSeg, batch = lines[:0], lineSeg[:0], batch[:0]
		var reads []readTo
		caughtUp := true
		for i, seg := range segs {
			if seg.old != !oldDone {
				continue
			}
			if seg.read < sizes[i] && len(lines) < r.opts.BatchSize {
				n := len(lines)
				var off int64
				var bad []corruptLine
				var err error
				lines, off, bad, err = r.j.read(seg, seg.read, sizes[i], r.opts.BatchSize-n, lines)
				if err != nil {
					lines = lines[:n] // none of this read counts
					r.log.Error("usage journal: read failed", zap.Error(err))
					caughtUp = false
					break
				}
				for _, b := range bad {
					r.m.corrupt.Inc()
					r.log.Error("usage journal: skipping a line that does not decode", zap.String("path", b.path),
						zap.Int64("offset", b.offset), zap.Error(b.err))
				}
				for range len(lines) - n {
					lineSeg = append(lineSeg, seg)
				}
				reads = append(reads, readTo{seg, off})
				if off < sizes[i] {
					// Lines are applied in journal order (a commit after its begin), so a
					// later segment waits until this one is read to its end.
					caughtUp = false
					break
				}
			} else if seg.read < sizes[i] {
				caughtUp = false
			}
		}
		for _, l := range lines {
			if l.Kind == kindEvent {
				batch = append(batch, l.event())
			}
		}
		if len(batch) > 0 {
			lastInsert = time.Now()
			if !r.insert(batch) {
				r.wait(r.opts.RetryInterval)
				continue
			}
		}
		// Apply what the batch did.
		var inserted int64
		for i, l := range lines {
			k := beginKey{l.Run, l.Seq}
			switch {
			case l.Kind == kindBegin:
				k.run = r.runOf(l.Run)
				open[k] = lineSeg[i]
				if lineSeg[i].old {
					interrupted[k] = l.event()
				}
				lineSeg[i].open++
				continue
			case l.Kind == kindAbort || l.Seq != 0: // an abort, or the event ending its begin
				if seg, ok := open[k]; ok {
					seg.open--
					delete(open, k)
					delete(interrupted, k)
				}
			}
			if l.Kind != kindAbort && !lineSeg[i].old {
				inserted++
			}
		}
		for _, rd := range reads {
			rd.seg.read = rd.off
		}
		r.inserted.Add(inserted)
		n := 0
		for _, seg := range open {
			if !seg.old {
				n++
			}
		}
		r.open.Store(int64(n))
		r.collect(segs, sizes, sealed)
		if caughtUp && oldDone {
			r.landed.Store(sampled.UnixNano())
			rush = false
		}
		r.pmu.Lock()
		close(r.progress)
		r.progress = make(chan struct{})
		r.pmu.Unlock()
		if len(lines) == 0 && caughtUp && oldDone {
			select {
			case <-r.wake:
			case <-tick.C:
			case <-r.base.Done():
			}
		}
	}
}

// lingerBytes is the unread journal above which the writer inserts at once: about a batch
// (BatchSize's default of 1,024 lines, at about 400 bytes each).
const lingerBytes = 400 << 10

// unread is how much of the journal the writer has not read.
func unread(segs []*segment, sizes []int64) int64 {
	var n int64
	for i, seg := range segs {
		n += sizes[i] - seg.read
	}
	return n
}

// oldRead reports whether the writer has read every segment of earlier processes.
func oldRead(segs []*segment, sizes []int64) bool {
	for i, seg := range segs {
		if seg.old && seg.read < sizes[i] {
			return false
		}
	}
	return true
}

// collect deletes the sealed segments the writer is done with and empties the active one when
// everything in it is done.
func (r *Recorder) collect(segs []*segment, sizes []int64, sealed []bool) {
	for i, seg := range segs {
		last := i == len(segs)-1
		if seg.open != 0 {
			continue
		}
		if !last && sealed[i] {
			if seg.read >= sizes[i] { // a sealed segment's size no longer changes
				if err := r.j.remove(seg); err != nil {
					r.log.Error("usage journal: removing a finished file failed", zap.Error(err))
				}
			}
			continue
		}
		if last && seg.read > 0 {
			if ok, err := r.j.truncateActive(seg, seg.read); err != nil {
				r.log.Error("usage journal: truncate failed", zap.Error(err))
			} else if ok {
				seg.read = 0
			}
		}
	}
}

// insert writes one batch with the write timeout and reports success.
func (r *Recorder) insert(batch []store.UsageEvent) bool {
	ctx, cancel := context.WithTimeout(r.base, r.opts.WriteTimeout)
	defer cancel()
	start := time.Now()
	err := r.store.InsertUsage(ctx, batch)
	result := "ok"
	if err != nil {
		result = "error"
		r.m.failures.Inc()
	} else {
		r.m.written.Add(float64(len(batch)))
	}
	r.m.batchDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err != nil {
		if !r.m.storeDown() && r.base.Err() == nil {
			r.log.Warn("usage store unreachable; events wait in the journal until it is back", zap.Error(err),
				zap.Duration("retry_every", r.opts.RetryInterval))
		}
		r.m.setDown(true)
		return false
	}
	if r.m.storeDown() {
		r.log.Info("usage store reachable again")
		r.m.setDown(false)
	}
	return true
}

// wait sleeps d, or until Close.
func (r *Recorder) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.base.Done():
	}
}
