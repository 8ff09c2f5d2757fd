package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	// Dir holds the outbox file (config billing.outbox_dir). One process per directory.
	Dir string
	// QueueSize bounds the in-memory queue; default 8192 events.
	QueueSize int
	// BatchSize is the most events per insert; default 256.
	BatchSize int
	// FlushInterval is how long an event may wait in a partial batch; default 500ms.
	FlushInterval time.Duration
	// RetryInterval is how often the store is retried while events wait in the outbox;
	// default 5s.
	RetryInterval time.Duration
	// WriteTimeout bounds one insert; default 10s.
	WriteTimeout time.Duration
	// Logger receives outages, recoveries and corrupt outbox lines; nil means no logging.
	Logger *zap.Logger
	// Registerer receives the metrics; nil means no metrics.
	Registerer prometheus.Registerer
}

func (o *Options) defaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 500 * time.Millisecond
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 5 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// maxStuck is how many events the writer keeps in memory when neither the store nor the outbox
// takes them (disk failing while the store is down); beyond it the oldest are dropped, loudly.
const maxStuck = 1 << 20

// Recorder writes usage events to the store in the background. See the package documentation.
type Recorder struct {
	opts   Options
	store  Writer
	outbox *outbox
	log    *zap.Logger
	m      *metrics

	// mu guards closed: Record holds it shared while it queues or spills, Close exclusively to
	// stop new events, so no event slips into the queue after the final drain.
	mu     sync.RWMutex
	closed bool

	queue   chan store.UsageEvent
	flushes chan flushRequest
	done    chan struct{}
	// base is the context of the writer's store calls; Close cancels it when its own context
	// ends, so a hung insert cannot hold shutdown up.
	base       context.Context
	cancelBase context.CancelFunc
	closeOnce  sync.Once
	closeErr   error

	// Writer-goroutine state.
	down      bool      // the last store call failed
	nextRetry time.Time // when down: the next replay attempt
	stuck     []store.UsageEvent
}

type flushRequest struct {
	ctx   context.Context
	close bool
	reply chan error
}

// Open opens (and locks) the outbox in opts.Dir, starts the writer that inserts into st and, if
// a previous process left events in the outbox, starts replaying them in the background. ctx
// bounds only the opening. Close the Recorder when done, before closing the store.
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
	ob, torn, err := openOutbox(opts.Dir)
	if err != nil {
		return nil, err
	}
	r := &Recorder{
		opts: opts, store: st, outbox: ob, log: opts.Logger, m: m,
		queue:   make(chan store.UsageEvent, opts.QueueSize),
		flushes: make(chan flushRequest),
		done:    make(chan struct{}),
	}
	r.base, r.cancelBase = context.WithCancel(context.Background())
	m.bind(r)
	if torn {
		r.log.Warn("usage outbox: the last line was torn (a crash during an append); it will be skipped", zap.String("path", ob.path))
	}
	if _, _, pending := ob.state(); pending > 0 {
		r.log.Info("usage outbox: replaying events left by a previous process", zap.Int("events", pending), zap.String("path", ob.path))
	}
	go r.run()
	return r, nil
}

// Record queues ev for the ledger. It does not wait for the store; when the queue is full it
// appends ev to the outbox (a local fsync'd write) instead of dropping it. A zero ev.Time is set
// to now. Record must not be called after Close (such events are dropped and counted).
func (r *Recorder) Record(ev store.UsageEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.m.dropped.Inc()
		r.log.Error("usage event recorded after the recorder was closed; dropped", zap.String("request_id", ev.RequestID))
		return
	}
	select {
	case r.queue <- ev:
		return
	default:
	}
	if err := r.outbox.append([]store.UsageEvent{ev}); err != nil {
		// The outbox failed too: wait for room in the queue rather than lose the event.
		r.log.Error("usage queue full and outbox append failed; waiting for the queue", zap.Error(err))
		r.queue <- ev
		return
	}
	r.m.outboxAppends.WithLabelValues(reasonQueueFull).Inc()
}

// Flush returns once every event recorded before the call is in the store or in the outbox,
// or when ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, reply: make(chan error, 1)}
	select {
	case r.flushes <- req:
	case <-r.done:
		return errors.New("usage: recorder is closed")
	case <-ctx.Done():
		return fmt.Errorf("usage: flush: %w", ctx.Err())
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("usage: flush: %w", ctx.Err())
	}
}

// Close stops accepting events and writes every queued event to the store, or to the outbox
// when the store is down or ctx ends first (when ctx ends, the store call in progress is
// cancelled). It then closes the outbox. Events in the outbox are replayed by the next
// Recorder. Close returns an error only when events could be written neither to the store nor
// to the outbox. Closing twice returns the first result.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		stop := context.AfterFunc(ctx, r.cancelBase)
		defer stop()
		req := flushRequest{ctx: ctx, close: true, reply: make(chan error, 1)}
		r.flushes <- req
		r.closeErr = <-req.reply
		<-r.done
		r.cancelBase()
		if err := r.outbox.close(); err != nil && r.closeErr == nil {
			r.closeErr = err
		}
	})
	return r.closeErr
}

// Stats is a snapshot of a Recorder's state.
type Stats struct {
	// Queued events wait in memory; Outbox events wait in the outbox file.
	Queued, Outbox int
	// StoreDown is true while the last store call failed.
	StoreDown bool
}

// Stats returns the queue and outbox depths. StoreDown is read without synchronisation with
// the writer and is only a hint.
func (r *Recorder) Stats() Stats {
	_, _, pending := r.outbox.state()
	return Stats{Queued: len(r.queue), Outbox: pending, StoreDown: r.m.storeDown()}
}

// run is the writer goroutine.
func (r *Recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(r.opts.FlushInterval)
	defer tick.Stop()
	batch := make([]store.UsageEvent, 0, r.opts.BatchSize)
	r.replay(r.base) // a previous process's events first
	for {
		select {
		case ev := <-r.queue:
			batch = append(batch, ev)
			// Take whatever else is queued without going back through select.
			for more := true; more && len(batch) < r.opts.BatchSize; {
				select {
				case ev := <-r.queue:
					batch = append(batch, ev)
				default:
					more = false
				}
			}
			if len(batch) >= r.opts.BatchSize {
				r.write(r.base, batch)
				batch = batch[:0]
			}
		case <-tick.C:
			if len(batch) > 0 {
				r.write(r.base, batch)
				batch = batch[:0]
			}
			r.retryStuck()
			if !r.down || !time.Now().Before(r.nextRetry) {
				r.replay(r.base)
			}
		case req := <-r.flushes:
			// Everything queued before the request: drain without waiting.
			for drained := false; !drained; {
				select {
				case ev := <-r.queue:
					batch = append(batch, ev)
					if len(batch) >= r.opts.BatchSize {
						r.write(r.base, batch)
						batch = batch[:0]
					}
				default:
					drained = true
				}
			}
			if len(batch) > 0 {
				r.write(r.base, batch)
				batch = batch[:0]
			}
			r.retryStuck()
			if !r.down {
				r.replay(r.base)
			}
			var err error
			if n := len(r.stuck); n > 0 {
				err = fmt.Errorf("usage: %d events could be written neither to the store nor to the outbox", n)
			}
			req.reply <- err
			if req.close {
				if n := len(r.stuck); n > 0 {
					r.m.dropped.Add(float64(n))
					r.log.Error("usage events lost at shutdown: the store and the outbox both failed", zap.Int("events", n))
				}
				return
			}
		}
	}
}

// write inserts batch, or appends it to the outbox when the insert fails or while the store is
// down (between retries). The batch slice may be reused by the caller afterwards.
func (r *Recorder) write(ctx context.Context, batch []store.UsageEvent) {
	if (!r.down || !time.Now().Before(r.nextRetry)) && ctx.Err() == nil {
		err := r.insert(ctx, batch)
		if err == nil {
			r.markUp()
			return
		}
		r.markDown(err)
	}
	if err := r.outbox.append(batch); err != nil {
		r.log.Error("usage outbox append failed; keeping the events in memory", zap.Error(err), zap.Int("events", len(batch)))
		r.keepStuck(batch)
		return
	}
	r.m.outboxAppends.WithLabelValues(reasonStoreDown).Add(float64(len(batch)))
}

// insert writes one batch to the store with the write timeout.
func (r *Recorder) insert(ctx context.Context, batch []store.UsageEvent) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
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
	return err
}

func (r *Recorder) markDown(err error) {
	if !r.down {
		r.log.Warn("usage store unreachable; events go to the outbox until it is back", zap.Error(err),
			zap.Duration("retry_every", r.opts.RetryInterval))
	}
	r.down = true
	r.m.setDown(true)
	r.nextRetry = time.Now().Add(r.opts.RetryInterval)
}

// replay writes the outbox to the store in order, in batches, and empties it when all of it is
// in. On a store error it stops and marks the store down; the replayed part is not sent again.
// It also stops, to be resumed on the next tick, when live events fill half the queue, so a
// long outbox does not starve them.
func (r *Recorder) replay(ctx context.Context) {
	for ctx.Err() == nil {
		if len(r.queue) > cap(r.queue)/2 {
			return
		}
		done, size, _ := r.outbox.state()
		if done >= size {
			if _, err := r.outbox.truncateIfDone(); err != nil {
				r.log.Error("usage outbox: truncate failed", zap.Error(err))
			}
			break
		}
		events, next, bad, err := r.outbox.read(done, size, r.opts.BatchSize)
		if err != nil {
			r.log.Error("usage outbox: read failed", zap.Error(err))
			return
		}
		for _, b := range bad {
			r.m.corrupt.Inc()
			r.log.Error("usage outbox: skipping a line that does not decode", zap.String("path", r.outbox.path),
				zap.Int64("offset", b.offset), zap.Error(b.err))
		}
		if len(events) > 0 {
			if err := r.insert(ctx, events); err != nil {
				r.markDown(err)
				return
			}
			r.markUp()
		}
		r.outbox.advance(next, len(events)+len(bad))
	}
}

func (r *Recorder) markUp() {
	if r.down {
		r.log.Info("usage store reachable again; replaying the outbox")
		r.down = false
		r.m.setDown(false)
	}
}

func (r *Recorder) keepStuck(batch []store.UsageEvent) {
	r.stuck = append(r.stuck, batch...)
	if over := len(r.stuck) - maxStuck; over > 0 {
		r.m.dropped.Add(float64(over))
		r.log.Error("usage events dropped: the store and the outbox both fail", zap.Int("events", over))
		r.stuck = append(r.stuck[:0], r.stuck[over:]...)
	}
}

// retryStuck moves events kept in memory to the store or the outbox.
func (r *Recorder) retryStuck() {
	if len(r.stuck) == 0 {
		return
	}
	stuck := r.stuck
	r.stuck = nil
	for len(stuck) > 0 {
		n := min(len(stuck), r.opts.BatchSize)
		r.write(r.base, stuck[:n])
		stuck = stuck[n:]
	}
}
