package billing

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// HoldSweeper is the part of store.Store the sweeper uses.
type HoldSweeper interface {
	SweepHolds(ctx context.Context, now time.Time) (int, error)
	OpenHolds(ctx context.Context) (int, error)
}

// SweeperOptions configure RunSweeper.
type SweeperOptions struct {
	// Interval between sweeps; default one minute.
	Interval time.Duration
	// Timeout of one sweep's store calls; default 30 seconds.
	Timeout time.Duration
	// Logger receives failures and non-empty sweeps; nil means no logging.
	Logger *zap.Logger
	// Metrics, when set, count swept holds and errors and track open holds.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RunSweeper deletes expired budget holds (left by requests whose process crashed before
// settling) once at start and then every Interval, until ctx is done. Each process may run one:
// sweeping is idempotent. It returns when ctx is done.
func RunSweeper(ctx context.Context, st HoldSweeper, opts SweeperOptions) {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		SweepOnce(ctx, st, opts)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepOnce runs one sweep: it deletes holds that expired before opts.Now() and refreshes the
// open-holds gauge. It returns how many holds it deleted (0 on failure, which is logged).
func SweepOnce(ctx context.Context, st HoldSweeper, opts SweeperOptions) int {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if ctx.Err() != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	n, err := st.SweepHolds(ctx, opts.Now())
	if err != nil {
		if opts.Metrics != nil {
			opts.Metrics.sweepErrors.Inc()
		}
		opts.Logger.Warn("budget hold sweep failed", zap.Error(err))
		return 0
	}
	if n > 0 {
		opts.Logger.Info("expired budget holds swept", zap.Int("holds", n))
		if opts.Metrics != nil {
			opts.Metrics.swept.Add(float64(n))
		}
	}
	if opts.Metrics != nil {
		if open, err := st.OpenHolds(ctx); err == nil {
			opts.Metrics.holdsOpen.Set(float64(open))
		} else {
			opts.Logger.Warn("counting open budget holds failed", zap.Error(err))
		}
	}
	return n
}
