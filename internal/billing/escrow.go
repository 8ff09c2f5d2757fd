package billing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// SliceStore is the part of store.Store the escrow uses.
type SliceStore interface {
	ClaimSlice(ctx context.Context, s store.Slice, need, want money.Amount, ttl time.Duration) (store.Claim, error)
	ReturnSlice(ctx context.Context, id string, amount money.Amount) error
	RenewSlices(ctx context.Context, ids []string, ttl time.Duration) (lost []string, err error)
	SweepSlices(ctx context.Context) (int, error)
}

// Escrow errors (test with errors.Is).
var (
	// ErrInsufficientBudget: the key's budget cannot hold the amount. The error is an
	// *InsufficientError with the key's position.
	ErrInsufficientBudget = store.ErrInsufficientBudget
	// ErrUnavailable: the store could not be reached within the deadline and this replica's slice
	// of the key's budget does not cover the amount (or its lease ran out).
	ErrUnavailable = errors.New("billing: budget store unavailable")
)

// InsufficientError is the refusal of a hold, with the key's position as last seen.
type InsufficientError struct {
	Amount  money.Amount  // what the hold asked for
	Balance store.Balance // budget, spent and reserved by every replica's slices
	Local   money.Amount  // what this replica's slice still had unreserved
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("billing: insufficient budget for %s", e.Amount)
}

// Is makes errors.Is(err, ErrInsufficientBudget) true.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficientBudget }

// EscrowOptions configure an Escrow. Store is required.
type EscrowOptions struct {
	Store SliceStore
	// Replica names this process in slice ids; default random.
	Replica string
	// TTL is a slice's lease: a slice its replica stops renewing (crash, partition) stops counting
	// against the budget after TTL. Default 30s.
	TTL time.Duration
	// Window sizes a claim: about this long of the key's recent spend. Default 5s.
	Window time.Duration
	// Idle is how long an unused slice is kept before its unspent part is given back; default 2s.
	Idle time.Duration
	// Timeout bounds every store call; default 2s.
	Timeout time.Duration
	// Landed reports the instant before which every recorded charge is in the store's ledger
	// (usage.Recorder.Landed). Slices are renewed while they have charges after it, so a slice
	// never stops counting while its charges are still on their way to the ledger. Nil: charges
	// are assumed to land at once.
	Landed func() time.Time
	// Logger receives claim failures and lost slices; nil means no logging.
	Logger *zap.Logger
	// Metrics count claims; nil means no metrics.
	Metrics *Metrics
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Escrow enforces budgets without a per-request write to a shared row. Per key and budget period,
// this replica claims a slice of what remains (one store transaction, see store.ClaimSlice),
// places holds against it in memory, and gives back what it did not use. The sum of every
// replica's slices never exceeds the budget, so replicas never overspend together; a replica's
// slice stops counting by itself TTL after the replica stops renewing it.
//
// A request's charge reaches the store through the usage ledger (its event names the slice),
// which moves the cost from the slice to the key's spend in one transaction.
type Escrow struct {
	o    EscrowOptions
	next uint64 // slice sequence, under mu

	mu       sync.Mutex
	accounts map[account]*acct
}

type account struct {
	keyID, period string
	start         time.Time
}

// acct is this replica's position in one key and period.
type acct struct {
	a  account
	mu sync.Mutex
	// slice is the current slice id; granted is what it holds for us (claimed minus returned);
	// used is what holds and charges took from it.
	slice         string
	granted, used money.Amount
	holds         int
	held          money.Amount
	validUntil    time.Time // the lease as this replica counts it (conservatively)
	lastUse       time.Time
	lastCharge    time.Time
	rate          float64 // recent spend, amount units per second (EWMA)
	rateAt        time.Time
	claim         *claimCall // the claim in flight; nil when none
	// After a refused claim: the key's availability as the store saw it, until refusedUntil.
	refusedUntil time.Time
	refused      store.Balance
	// After a claim that could not reach the store: callers needing a claim fail fast until.
	downUntil time.Time
	downErr   error
}

// NewEscrow returns an Escrow; call Run to renew and return slices, and Close when done.
func NewEscrow(o EscrowOptions) *Escrow {
	if o.Replica == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.Replica = hex.EncodeToString(b[:])
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Second
	}
	if o.Idle <= 0 {
		o.Idle = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Escrow{o: o, accounts: map[account]*acct{}}
}

// Hold is budget reserved in memory for one request.
type Hold struct {
	e      *Escrow
	ac     *acct
	slice  string
	amount money.Amount
	done   bool
}

// Slice is the slice the hold was taken from: the usage event of its charge names it.
func (h *Hold) Slice() string { return h.slice }

// Hold reserves amount of the key's budget for the period of the given kind starting at start.
// It answers from memory when this replica's slice covers the amount; otherwise it claims more
// from the store (one transaction, bounded by the timeout, shared by concurrent callers). No
// caller waits longer than the timeout, nor past its request's store deadline (store.Within):
// a claim that has not answered by then leaves it with ErrUnavailable, and while the store is
// unreachable, callers that need a claim are refused at once for a second after a failed one.
func (e *Escrow) Hold(ctx context.Context, keyID, period string, start time.Time, amount money.Amount) (*Hold, error) {
	if amount < 0 {
		return nil, fmt.Errorf("billing: hold of %s", amount)
	}
	if amount == 0 {
		// Nothing to reserve (every image free): no slice needed, even for an overspent key.
		return &Hold{e: e, done: true}, nil
	}
	ac := e.account(account{keyID, store.NormalizePeriod(period), start})
	counted, waited := false, false
	for {
		ac.mu.Lock()
		now := e.o.Now()
		if !counted {
			ac.observe(now, amount)
			counted = true
		}
		if now.Before(ac.validUntil) && ac.granted-ac.used >= amount {
			h := ac.take(e, amount, now)
			e.refillEarly(ac, amount, now)
			ac.mu.Unlock()
			return h, nil
		}
		if now.Before(ac.refusedUntil) && ac.available(now)+refusedAvail(ac.refused) < amount {
			err := &InsufficientError{Amount: amount, Balance: ac.refused, Local: ac.available(now)}
			ac.mu.Unlock()
			e.o.Metrics.claim("refused_cached")
			return nil, err
		}
		if now.Before(ac.downUntil) {
			err := ac.downErr
			ac.mu.Unlock()
			return nil, err
		}
		c := ac.claim
		if c == nil {
			if !now.Before(ac.validUntil) && ac.slice != "" {
				// The lease ran out (or was never renewed): this slice may no longer count in the
				// store. Holds already taken from it settle against it; new ones go to a fresh slice.
				ac.slice, ac.granted, ac.used = "", 0, 0
			}
			need := amount - max(ac.granted-ac.used, 0)
			c = e.startClaim(ac, need, max(need, ac.window(e), 2*amount))
		}
		ac.mu.Unlock()
		if !waited {
			waited = true
			e.o.Metrics.holdWaited()
		}
		if err := e.await(ctx, c); err != nil {
			return nil, err
		}
	}
}

// claimCall is a claim in flight; callers that need budget meanwhile wait for it.
type claimCall struct {
	done chan struct{}
	err  error // set before done closes when the store could not be reached
}

// refillEarly claims the next part of the slice in the background once a busy key (at least one
// hold like this one a second, at its recent rate) has less than half the claim window of spend
// left in it, so that its holds in the steady state never wait for the store. A quiet key claims
// when a hold does not fit, as before: for it a claim is rare, and claiming ahead would only keep
// budget from other replicas. Nothing is claimed while a claim is in flight, and for a while
// after the store refused or failed (a hold that does not fit then asks, or fails fast, as
// before). ac.mu is held.
func (e *Escrow) refillEarly(ac *acct, amount money.Amount, now time.Time) {
	if ac.claim != nil || now.Before(ac.refusedUntil) || now.Before(ac.downUntil) || ac.rate < float64(amount) {
		return
	}
	window := ac.window(e)
	if ac.granted-ac.used >= window/2 {
		return
	}
	// need is one more hold like this one: a budget that cannot pay for it is refused now (and
	// the refusal is remembered), while holds that fit in what is left go on.
	e.startClaim(ac, amount, max(window, 2*amount))
}

// window is the key's recent spend over the claim window: the size of a claim.
func (ac *acct) window(e *Escrow) money.Amount {
	return money.Amount(ac.rate * e.o.Window.Seconds())
}

// startClaim starts a claim of need to want more for the account's slice (creating one if it
// has none), detached from any caller (a grant must be recorded even when the callers went
// away); ac.mu is held.
func (e *Escrow) startClaim(ac *acct, need, want money.Amount) *claimCall {
	if ac.slice == "" {
		ac.slice = e.newSliceID(ac.a)
	}
	sl := store.Slice{ID: ac.slice, KeyID: ac.a.keyID, Period: ac.a.period, PeriodStart: ac.a.start}
	c := &claimCall{done: make(chan struct{})}
	ac.claim = c
	go e.runClaim(ac, c, sl, need, want)
	return c
}

// runClaim asks the store and records the answer on the account.
func (e *Escrow) runClaim(ac *acct, c *claimCall, sl store.Slice, need, want money.Amount) {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.Timeout)
	sent := e.o.Now()
	res, err := e.o.Store.ClaimSlice(ctx, sl, need, want, e.o.TTL)
	cancel()
	ac.mu.Lock()
	defer ac.mu.Unlock()
	defer close(c.done)
	ac.claim = nil
	now := e.o.Now()
	switch {
	case errors.Is(err, store.ErrInsufficientBudget):
		e.o.Metrics.claim("refused")
		ac.refusedUntil, ac.refused = now.Add(time.Second/2), res.Balance
	case err != nil:
		e.o.Metrics.claim("error")
		e.o.Logger.Warn("budget claim failed", zap.String("key_id", sl.KeyID), zap.Error(err))
		c.err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		ac.downUntil, ac.downErr = now.Add(min(time.Second, e.o.Timeout)), c.err
	default:
		e.o.Metrics.claim("granted")
		// Nothing rotates the slice while a claim is in flight, so the grant is the current slice's.
		ac.granted += res.Granted
		ac.validUntil = e.leaseEnd(sent)
		ac.refusedUntil, ac.downUntil = time.Time{}, time.Time{}
	}
}

// await waits for a claim, no longer than the timeout and the request's store deadline.
func (e *Escrow) await(ctx context.Context, c *claimCall) error {
	t := time.NewTimer(store.Within(ctx, e.o.Timeout))
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("billing: waiting for a budget claim: %w", ctx.Err())
	case <-t.C:
		select {
		case <-c.done:
			return c.err
		default:
		}
		return fmt.Errorf("%w: the budget store did not answer in time", ErrUnavailable)
	}
}

// leaseEnd is when a lease renewed by a call sent at sent ends, as this replica counts it: a
// tenth of the TTL early, so the store never drops a slice this replica still spends from.
func (e *Escrow) leaseEnd(sent time.Time) time.Time {
	return sent.Add(e.o.TTL - e.o.TTL/10)
}

func (e *Escrow) newSliceID(a account) string {
	e.mu.Lock()
	e.next++
	n := e.next
	e.mu.Unlock()
	return e.o.Replica + "/" + strconv.FormatUint(n, 36) + "/" + a.keyID
}

func (e *Escrow) account(a account) *acct {
	e.mu.Lock()
	defer e.mu.Unlock()
	ac, ok := e.accounts[a]
	if !ok {
		ac = &acct{a: a}
		e.accounts[a] = ac
	}
	return ac
}

// available is the unreserved part of the slice while its lease holds.
func (ac *acct) available(now time.Time) money.Amount {
	if !now.Before(ac.validUntil) {
		return 0
	}
	return max(ac.granted-ac.used, 0)
}

// observe updates the spend rate with a hold of amount at now.
func (ac *acct) observe(now time.Time, amount money.Amount) {
	const tau = 2.0 // seconds
	if ac.rateAt.IsZero() {
		ac.rateAt = now
	}
	dt := now.Sub(ac.rateAt).Seconds()
	if dt > 0 {
		decay := 1 / (1 + dt/tau)
		ac.rate *= decay
		ac.rateAt = now
	}
	ac.rate += float64(amount) / tau
}

// take reserves amount; ac.mu is held.
func (ac *acct) take(e *Escrow, amount money.Amount, now time.Time) *Hold {
	ac.used += amount
	ac.held += amount
	ac.holds++
	ac.lastUse = now
	return &Hold{e: e, ac: ac, slice: ac.slice, amount: amount}
}

// Settle turns the hold into a charge of cost (at most the amount held; more is charged but
// reported): the rest goes back to the slice. It returns the slice the charge belongs to.
// Settling or releasing twice does nothing.
func (h *Hold) Settle(cost money.Amount) string {
	h.finish(cost)
	return h.slice
}

// Release frees the hold without a charge.
func (h *Hold) Release() { h.finish(0) }

func (h *Hold) finish(cost money.Amount) {
	ac := h.ac
	if ac == nil {
		return // a hold of nothing
	}
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if h.done {
		return
	}
	h.done = true
	ac.holds--
	ac.held -= h.amount
	now := h.e.o.Now()
	ac.lastUse = now
	if cost > 0 {
		ac.lastCharge = now
	}
	if ac.slice == h.slice {
		ac.used -= h.amount - cost
	}
}

// Stats is a snapshot of an Escrow.
type Stats struct {
	Holds    int          // holds open in this process
	Held     money.Amount // their amounts
	Reserved money.Amount // what this replica's live slices hold, used or not
	Accounts int
}

// Stats returns the current holds and reservations.
func (e *Escrow) Stats() Stats {
	now := e.o.Now()
	var s Stats
	for _, ac := range e.snapshot() {
		ac.mu.Lock()
		s.Holds += ac.holds
		s.Held += ac.held
		if now.Before(ac.validUntil) {
			s.Reserved += ac.granted
		}
		ac.mu.Unlock()
		s.Accounts++
	}
	return s
}

func (e *Escrow) snapshot() []*acct {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*acct, 0, len(e.accounts))
	for _, ac := range e.accounts {
		out = append(out, ac)
	}
	return out
}

// Run renews live slices, gives back idle ones and sweeps expired slices of every replica, until
// ctx ends. Call it once.
func (e *Escrow) Run(ctx context.Context) {
	tick := time.NewTicker(min(e.o.Idle/2, e.o.TTL/6))
	defer tick.Stop()
	lastRenew, lastSweep := e.o.Now(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := e.o.Now()
		e.giveBackIdle(ctx, now)
		if now.Sub(lastRenew) >= e.o.TTL/3 {
			lastRenew = now
			e.renew(ctx)
		}
		if now.Sub(lastSweep) >= time.Minute {
			lastSweep = now
			e.sweep(ctx)
		}
	}
}

// giveBackIdle returns the unused part of slices not used for Idle, and forgets accounts that
// have nothing left to track.
func (e *Escrow) giveBackIdle(ctx context.Context, now time.Time) {
	landed := e.landed(now)
	idle := func(ac *acct) bool { return now.Sub(ac.lastUse) >= e.o.Idle && ac.claim == nil }
	for _, ac := range e.snapshot() {
		if !e.giveBack(ctx, ac, now, idle) {
			continue
		}
		e.mu.Lock()
		ac.mu.Lock()
		if ac.holds == 0 && ac.claim == nil && ac.granted <= ac.used && landed.After(ac.lastCharge) && now.Sub(ac.lastUse) >= e.o.Idle {
			delete(e.accounts, ac.a)
		}
		ac.mu.Unlock()
		e.mu.Unlock()
	}
}

func (e *Escrow) landed(now time.Time) time.Time {
	if e.o.Landed == nil {
		return now
	}
	return e.o.Landed()
}

// renew extends every slice that still matters (holds open, budget unused, or charges not yet in
// the ledger) in one store call. Lost slices are abandoned: new holds claim a fresh one.
func (e *Escrow) renew(ctx context.Context) {
	now := e.o.Now()
	landed := e.landed(now)
	var ids []string
	byID := map[string]*acct{}
	for _, ac := range e.snapshot() {
		ac.mu.Lock()
		if ac.slice != "" && now.Before(ac.validUntil) && (ac.holds > 0 || ac.granted > ac.used || !landed.After(ac.lastCharge)) {
			ids = append(ids, ac.slice)
			byID[ac.slice] = ac
		}
		ac.mu.Unlock()
	}
	if len(ids) == 0 {
		return
	}
	sent := e.o.Now()
	var lost []string
	err := e.call(ctx, func(ctx context.Context) (err error) {
		lost, err = e.o.Store.RenewSlices(ctx, ids, e.o.TTL)
		return err
	})
	if err != nil {
		e.o.Logger.Warn("renewing budget slices failed; they lapse unless a later renewal succeeds", zap.Int("slices", len(ids)), zap.Error(err))
		return
	}
	lostSet := map[string]bool{}
	for _, id := range lost {
		lostSet[id] = true
	}
	end := e.leaseEnd(sent)
	for id, ac := range byID {
		ac.mu.Lock()
		if ac.slice == id {
			if lostSet[id] {
				e.o.Logger.Warn("a budget slice expired before it was renewed; claiming a fresh one", zap.String("slice", id))
				ac.slice, ac.granted, ac.used, ac.validUntil = "", 0, 0, time.Time{}
			} else {
				ac.validUntil = end
			}
		}
		ac.mu.Unlock()
	}
}

func (e *Escrow) sweep(ctx context.Context) {
	var n int
	err := e.call(ctx, func(ctx context.Context) (err error) {
		n, err = e.o.Store.SweepSlices(ctx)
		return err
	})
	if err != nil {
		e.o.Metrics.sweepFailed()
		e.o.Logger.Warn("sweeping expired budget slices failed", zap.Error(err))
		return
	}
	e.o.Metrics.swept(n)
}

// call runs f under the store timeout.
func (e *Escrow) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	return f(ctx)
}

// Close gives back the unused part of every slice (best effort, bounded by ctx): the budget is
// free for other replicas at once instead of after the TTL.
func (e *Escrow) Close(ctx context.Context) {
	now := e.o.Now()
	for _, ac := range e.snapshot() {
		if ctx.Err() != nil {
			return
		}
		e.giveBack(ctx, ac, now, nil)
	}
}

// giveBack returns the unused part of ac's slice to the store when only (nil: always) holds for
// ac. The amount is taken out of the slice first, so no hold can spend it while it is on its way
// back; if the store call fails it is put back (it is still this replica's in the store). It
// reports whether only held and nothing failed.
func (e *Escrow) giveBack(ctx context.Context, ac *acct, now time.Time, only func(*acct) bool) bool {
	ac.mu.Lock()
	if only != nil && !only(ac) {
		ac.mu.Unlock()
		return false
	}
	unused, id := ac.granted-ac.used, ac.slice
	if unused <= 0 || !now.Before(ac.validUntil) {
		ac.mu.Unlock()
		return true
	}
	ac.granted -= unused
	ac.mu.Unlock()
	err := e.call(ctx, func(ctx context.Context) error { return e.o.Store.ReturnSlice(ctx, id, unused) })
	if err == nil {
		return true
	}
	e.o.Logger.Warn("giving back a budget slice failed; it lapses after its TTL unless used", zap.String("slice", id), zap.Error(err))
	ac.mu.Lock()
	if ac.slice == id {
		ac.granted += unused
	}
	ac.mu.Unlock()
	return false
}

// refusedAvail is what a refused claim saw remaining.
func refusedAvail(b store.Balance) money.Amount {
	if b.Budget == nil {
		return 0
	}
	return max(*b.Budget-b.Spent-b.Held, 0)
}
