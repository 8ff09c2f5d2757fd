// Package meter is where rate limits, budgets and the usage ledger meet the front door. It
// implements frontdoor.Meter (and frontdoor.Quoter, frontdoor.ChannelGate):
//
//	Admit:  price the worst case (internal/billing) → the key's rate limits (internal/ratelimit)
//	        → free images → a budget hold in memory (billing.Escrow) → the request journaled as
//	        begun (internal/usage), refusing with 429 (or 503) before any upstream call
//	Finish: settle the hold at what was delivered (or release it) → give back undelivered images
//	        to the limiter → the usage event made durable in the journal → cost headers
//
// A governed request makes no database round trip in the steady state: budgets are spent from
// this replica's slice of them (claimed in bulk, see billing.Escrow), the charge is durable in
// the local journal (fsync'd, group commit) before the response that carries its cost header,
// and the journal's writer moves it to the ledger in batches, which in the same transaction adds
// it to the key's spend. The budget position is therefore the ledger's sum, and a crash loses
// nothing: the journal is replayed at the next start, and requests that were in flight become
// indeterminate ledger rows.
//
// A request that delivers nothing costs nothing. One whose outcome is indeterminate (the client
// went away, or the upstream timed out after it may have generated and billed) is not charged to
// the key either, but its usage event says "indeterminate" so it can be reconciled against the
// provider's bill. Requests refused at admission never reach an upstream and are counted in
// metrics, not in the ledger.
package meter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/ratelimit"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/usage"
	"github.com/imagegw/imagegw/providers"
)

// Recorder journals usage events (internal/usage.Recorder).
type Recorder interface {
	// Begin journals a request about to call upstream; the Entry's Commit or Abort ends it.
	Begin(ev store.UsageEvent) (*usage.Entry, error)
}

// Limits are per-minute request, image and megapixel limits and a concurrency limit; 0 means
// unlimited.
type Limits struct {
	RPM, IPM, MPPM, Concurrency int
}

func (l Limits) zero() bool { return l.RPM == 0 && l.IPM == 0 && l.MPPM == 0 && l.Concurrency == 0 }

func (l Limits) limits() ratelimit.Limits {
	return ratelimit.LimitsPerMinute(int64(l.RPM), int64(l.IPM), int64(l.MPPM), int64(l.Concurrency))
}

// Options wire a Meter.
type Options struct {
	// Store answers free-image quotas and budget positions for quotes.
	Store  store.Store
	Engine *billing.Engine
	// Escrow holds budgets in memory (required for keys with a budget).
	Escrow  *billing.Escrow
	Limiter ratelimit.Limiter
	// KeyFreeImages gives every key the models' free images (Price.FreeImages) before it pays;
	// off, they only lower the operator's cost, once per channel (the upstream account's quota).
	KeyFreeImages bool
	// UnpricedWithBudget lets keys with a budget use models without a price (free to them);
	// off, such a request is refused: a budget would not bound it.
	UnpricedWithBudget bool
	// KeyDefaults apply to keys that set no limit of their own.
	KeyDefaults Limits
	// Channels are the per-channel limits protecting upstream accounts (SetChannels replaces
	// them on a configuration reload).
	Channels map[string]Limits
	Recorder Recorder
	Metrics  *billing.Metrics
	Logger   *zap.Logger
	// StoreTimeout bounds each store call on the request path (free images, quotes); default 2s.
	StoreTimeout time.Duration
	// LeaseTTL bounds how long a concurrency slot outlives a crashed process.
	LeaseTTL time.Duration
	Now      func() time.Time
}

// Meter admits, settles and records requests.
type Meter struct {
	o Options
	// channels are the per-channel limits in force (Options.Channels, then SetChannels').
	channels atomic.Pointer[map[string]Limits]
	// exhausted remembers free quotas found used up (key and model → until when), so keys whose
	// free images are gone make no store call for them.
	exhausted sync.Map
	// doors are the keys' doorman states (key id → *door).
	doors sync.Map
}

// door is what this replica knows of a key before reading a request's body: how many of its
// requests are in here now, and until when its requests-per-minute limit is known to refuse.
type door struct {
	inside       atomic.Int64
	blockedUntil atomic.Int64 // unix nanoseconds
}

func (m *Meter) door(keyID string) *door {
	if d, ok := m.doors.Load(keyID); ok {
		return d.(*door)
	}
	d, _ := m.doors.LoadOrStore(keyID, &door{})
	return d.(*door)
}

// Door turns a request away before its body is read when its key is, on what this replica
// knows, at a limit the request cannot pass: the key's concurrency limit is taken by its
// requests in this process alone (so it is taken across replicas too), or the limiter refused
// the key's requests per minute until a time not reached yet. It makes no network call; the
// limiter still decides every request that gets in.
func (m *Meter) Door(_ context.Context, k *store.Key) (func(), error) {
	if k == nil || m.o.Limiter == nil {
		return func() {}, nil
	}
	lim := m.keyLimits(k)
	if lim.zero() {
		return func() {}, nil
	}
	d := m.door(k.ID)
	if until := d.blockedUntil.Load(); until != 0 {
		if wait := time.Duration(until - m.o.Now().UnixNano()); wait > 0 {
			return nil, &providers.Error{Kind: providers.KindRateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("Rate limit reached for requests per minute (limit %d) on this API key. Retry after %s.", lim.RPM, wait.Round(time.Millisecond))}
		}
	}
	if n := d.inside.Add(1); lim.Concurrency > 0 && n > int64(lim.Concurrency) {
		d.inside.Add(-1)
		return nil, &providers.Error{Kind: providers.KindRateLimited, RetryAfter: ratelimit.MinConcurrencyRetryAfter,
			Message: fmt.Sprintf("Rate limit reached for requests in flight (limit %d) on this API key. Retry after %s.", lim.Concurrency, ratelimit.MinConcurrencyRetryAfter)}
	}
	var once sync.Once
	return func() { once.Do(func() { d.inside.Add(-1) }) }, nil
}

// refused remembers a refusal of the key's requests per minute for Door.
func (m *Meter) refused(keyID string, d ratelimit.Decision) {
	if d.RefusedBy == ratelimit.DimRequests && !d.Unsatisfiable && d.Requests.RetryAfter > 0 {
		m.door(keyID).blockedUntil.Store(m.o.Now().Add(d.Requests.RetryAfter).UnixNano())
	}
}

// exhaustedFor is how long a used-up free quota is believed without asking the store again
// (images given back by failed requests are offered again after it).
const exhaustedFor = time.Minute

// New returns a Meter.
func New(o Options) *Meter {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 2 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = ratelimit.DefaultLeaseTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Meter{o: o}
	m.SetChannels(o.Channels)
	return m
}

// SetChannels replaces the per-channel limits (a configuration reload): upstream calls admitted
// from now on are counted against them; a channel not in limits has none.
func (m *Meter) SetChannels(limits map[string]Limits) {
	l := maps.Clone(limits)
	m.channels.Store(&l)
}

var (
	_ frontdoor.Meter       = (*Meter)(nil)
	_ frontdoor.Quoter      = (*Meter)(nil)
	_ frontdoor.ChannelGate = (*Meter)(nil)
	_ frontdoor.Doorman     = (*Meter)(nil)
)

// keyLimits are the key's own limits over the defaults.
func (m *Meter) keyLimits(k *store.Key) Limits {
	l := m.o.KeyDefaults
	if k == nil {
		return l
	}
	for _, f := range []struct {
		v   *int
		dst *int
	}{{k.RPM, &l.RPM}, {k.IPM, &l.IPM}, {k.MPPM, &l.MPPM}, {k.Concurrency, &l.Concurrency}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return l
}

// ticket is one admitted request.
type ticket struct {
	m      *Meter
	a      frontdoor.Admission
	quote  billing.Quote
	priced bool
	// others are the quotes of the channels whose price differs from the primary's (a fallback
	// is billed at its own price), and worst the highest of their totals.
	others  map[string]*billing.Quote
	worst   money.Amount
	grant   *ratelimit.Grant
	cost    ratelimit.Cost
	header  http.Header
	free    int
	hold    *billing.Hold
	entry   *usage.Entry
	started time.Time
}

// Admit prices the request, checks the key's rate limits, takes free images and places the
// budget hold. A refusal happens before any upstream call.
func (m *Meter) Admit(ctx context.Context, a frontdoor.Admission) (frontdoor.Ticket, error) {
	a = keyPriced(a)
	t := &ticket{m: m, a: a, header: http.Header{}, started: m.o.Now()}
	if err := t.price(); err != nil {
		return nil, err
	}
	if lim := m.keyLimits(a.Key); a.Key != nil && m.o.Limiter != nil && !lim.zero() {
		if err := m.admitLimits(ctx, t, &a, lim); err != nil {
			return nil, err
		}
	}

	if (t.priced || t.worst > 0) && a.Key != nil {
		if err := t.reserve(ctx); err != nil {
			t.undo(ctx)
			return nil, err
		}
	}
	if m.o.Recorder != nil {
		if err := t.begin(ctx); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// price quotes t's request (on every channel with a price of its own). It is out of Admit's
// line, as admitLimits is: a quote is 0.2 KB of locals.
//
//go:noinline
func (t *ticket) price() error {
	m, a := t.m, &t.a
	var err error
	t.quote, err = m.o.Engine.Quote(&a.Entry.Model, a.Request) // straight into t: a quote is 0.2 KB
	switch {
	case err == nil:
		t.priced = true
	case errors.Is(err, billing.ErrUnpriced):
		// A model without a price is free to use; Validate warned about it at start.
		t.quote = billing.Quote{}
	default:
		return &providers.Error{Kind: providers.KindInternal, Message: "The request could not be priced.", Err: err}
	}
	if a.Entry.MixedPrices() {
		if err := t.priceRoutes(); err != nil {
			return err
		}
	}
	if !t.priced && t.worst == 0 && a.Key != nil && a.Key.Budget != nil && !m.o.UnpricedWithBudget {
		return unpricedWithBudget(a.Entry.Name)
	}
	return nil
}

//go:noinline
func unpricedWithBudget(model string) error {
	return &providers.Error{Kind: providers.KindPermissionDenied, Param: "model",
		Message: fmt.Sprintf("The model '%s' has no price, so this API key's budget could not bound it; "+
			"the operator can price it in config (models[].price) or allow budgeted keys to use unpriced models (billing.unpriced_with_budget: true).", model)}
}

// admitLimits takes the key's rate and concurrency limits for t. It, begin and the limiter's
// own call are out of Admit's line: their locals would make Admit's frame 1.6 KB of the 8 KB
// stack a request's goroutine starts with.
//
//go:noinline
func (m *Meter) admitLimits(ctx context.Context, t *ticket, a *frontdoor.Admission, lim Limits) error {
	w, h := a.Request.Width, a.Request.Height
	if w == 0 && t.priced {
		w, h = t.quote.Width, t.quote.Height
	}
	t.cost = ratelimit.CostOf(a.Request.N, w, h)
	d, err := m.o.Limiter.Admit(ctx, ratelimit.Request{Subject: ratelimit.KeySubject(a.Key.ID), Limits: lim.limits(), Cost: t.cost, LeaseTTL: m.o.LeaseTTL})
	if err != nil {
		return unavailable("The rate limiter is unavailable.", err)
	}
	d.SetHeaders(t.header)
	if !d.Allowed {
		m.refused(a.Key.ID, d)
		return &frontdoor.HeaderError{Header: t.header, Err: refusal(d, lim)}
	}
	t.grant = d.Grant
	return nil
}

// begin journals the start of t's request (see usage.Recorder.Begin); on failure, what Admit
// took is given back.
//
//go:noinline
func (t *ticket) begin(ctx context.Context) error {
	e, err := t.m.o.Recorder.Begin(t.event(&frontdoor.Outcome{}))
	if err != nil {
		t.undo(ctx)
		return unavailable("The usage ledger is unavailable.", err)
	}
	t.entry = e
	return nil
}

// keyPriced is the admission with its entry priced for its key: a key with its own markup pays
// the providers' cost × that markup, not the model's or the deployment's.
func keyPriced(a frontdoor.Admission) frontdoor.Admission {
	if a.Key != nil && a.Key.Markup != nil {
		a.Entry = a.Entry.WithMarkup(*a.Key.Markup)
	}
	return a
}

// priceRoutes quotes the request on each channel whose price differs from the primary's.
//
//go:noinline
func (t *ticket) priceRoutes() error {
	primary := &t.a.Entry.Routes[0].Price
	for i := range t.a.Entry.Routes[1:] {
		r := &t.a.Entry.Routes[1+i]
		if r.Price.Equal(primary) {
			continue
		}
		if _, done := t.others[r.Channel]; done {
			continue
		}
		m := *r.Model
		m.Price = r.Price
		q, err := t.m.o.Engine.Quote(&m, t.a.Request)
		if err != nil && !errors.Is(err, billing.ErrUnpriced) {
			return &providers.Error{Kind: providers.KindInternal, Message: "The request could not be priced.", Err: err}
		}
		if t.others == nil {
			t.others = map[string]*billing.Quote{}
		}
		t.others[r.Channel] = &q
		t.worst = max(t.worst, q.For(q.Images))
	}
	return nil
}

// settle is what the request owes for what it delivered. Images are priced in groups of the
// same channel and the same reported size and quality: at their channel's price (the primary's,
// unless the channel charges its own), and at what the upstream reported making where it said
// (gpt-image with size or quality "auto"), never above the admission quote's price per image
// (the hold). Free images (the key's, for the primary's price) go to the first images.
func (t *ticket) settle(ctx context.Context, o *frontdoor.Outcome) (billing.Settlement, upstreamCost) {
	delivered := max(o.Delivered, 0)
	type group struct {
		channel string
		size    providers.Size
		quality string
	}
	// The groups in order of first appearance with their counts: a slice, not a map (a request
	// has a handful of groups at most, and a map is 0.5 KB of its stack).
	type counted struct {
		group
		n int
	}
	var room [2]counted
	order := room[:0]
	count := func(g group, n int) {
		for i := range order {
			if order[i].group == g {
				order[i].n += n
				return
			}
		}
		order = append(order, counted{g, n})
	}
	for _, m := range o.Made[:min(len(o.Made), delivered)] {
		count(group{m.Channel, m.Size, m.Quality}, 1)
	}
	if rest := delivered - min(len(o.Made), delivered); rest > 0 {
		count(group{}, rest)
	}
	s, up := billing.Settlement{}, upstreamCost{}
	freeLeft := t.free
	for _, gc := range order {
		g, n := gc.group, gc.n
		route := t.route(g.channel)
		base, q, c, own := t.groupQuotes(route, g.size, g.quality)
		if !own && t.priced {
			f := min(n, freeLeft)
			freeLeft -= f
			s.FreeUsed += f
			n -= f
		}
		s.Charged += n
		s.Cost += min(q.For(n), base.For(n))
		paid := gc.n
		if route.Cost.FreeImages > 0 {
			free := min(t.m.channelFree(ctx, route, paid), paid)
			up.free += free
			paid -= free
		}
		up.add(c, paid)
	}
	s.FreeReturned = freeLeft
	return s, up
}

// unpriced is the quote of what has no price: every amount zero. Read only.
var unpriced billing.Quote

// groupQuotes are the quotes of a group of images settle bills: base, the admission's quote on
// the group's channel (the channel's own when it charges its own, own); q, base again at what the
// upstream reported making; c, what the provider charges for them (at the channel's cost). They
// are pointers, and this is out of settle's line: a quote is 0.2 KB, and settle runs deep in a
// request's stack.
//
//go:noinline
func (t *ticket) groupQuotes(route *catalog.Route, size providers.Size, quality string) (base, q, c *billing.Quote, own bool) {
	base, q = &unpriced, &unpriced
	if b, ok := t.others[route.Channel]; ok {
		base, own = b, true
		q = t.requote(base, route, size, quality)
	} else if t.priced {
		base = &t.quote
		q = t.requote(base, route, size, quality)
	}
	c = q
	switch {
	case route.Cost.Equal(&route.Price):
	case route.Cost.IsZero():
		c = &unpriced // the upstream's cost is not configured: nothing to add
	default:
		c = t.quoteAt(route, &route.Cost, size, quality)
	}
	return base, q, c, own
}

// upstreamCost is what the providers charge for a request's images.
type upstreamCost struct {
	cost, list money.Amount
	currency   string // of list; "" when unpriced or mixed
	mixed      bool
	free       int // images from the upstream accounts' free quotas
}

func (u *upstreamCost) add(q *billing.Quote, n int) {
	if n <= 0 || q.ListCurrency == "" {
		return
	}
	u.cost += q.For(n)
	switch {
	case u.mixed:
	case u.currency == "" || u.currency == q.ListCurrency:
		u.currency, u.list = q.ListCurrency, u.list+q.ListFor(n)
	default:
		u.mixed, u.currency, u.list = true, "", 0
	}
}

// route is the entry's route of a channel (the primary for "").
func (t *ticket) route(channel string) *catalog.Route {
	routes := t.a.Entry.Routes
	for i := range routes {
		if routes[i].Channel == channel {
			return &routes[i]
		}
	}
	return &routes[0]
}

// requote prices the request again at the size and quality an upstream reported making, when
// they differ from what was asked; else (or when that cannot be priced) it is base.
func (t *ticket) requote(base *billing.Quote, route *catalog.Route, size providers.Size, quality string) *billing.Quote {
	if !t.reported(size, quality) {
		return base
	}
	q, err := t.quoteOn(route, &route.Price, size, quality)
	if err != nil {
		return base
	}
	return q
}

// quoteAt prices the request on route at price p (and what the upstream reported making); a
// quote with zero amounts when it cannot be priced.
func (t *ticket) quoteAt(route *catalog.Route, p *providers.Price, size providers.Size, quality string) *billing.Quote {
	q, _ := t.quoteOn(route, p, size, quality)
	return q
}

// reported says whether the upstream reported making something other than what was asked.
func (t *ticket) reported(size providers.Size, quality string) bool {
	req := t.a.Request
	return !size.IsZero() && (size.W != req.Width || size.H != req.Height) || quality != "" && quality != req.Quality
}

// quoteOn prices the request at p on route, at size and quality where given. The request and
// model it prices are copies on the heap, as is the quote: on a request's stack they are 1.5 KB,
// deep in it (gpt-image's "auto" sizes are priced here, once the image is made).
func (t *ticket) quoteOn(route *catalog.Route, p *providers.Price, size providers.Size, quality string) (*billing.Quote, error) {
	req := clone(t.a.Request)
	if !size.IsZero() {
		req.Width, req.Height, req.AspectRatio = size.W, size.H, ""
	}
	if quality != "" {
		req.Quality = quality
	}
	m := clone(route.Model)
	m.Price = *p
	q := new(billing.Quote)
	err := t.m.o.Engine.QuoteInto(q, m, req)
	return q, err
}

// clone is a copy of *v on the heap (made there, not copied through the stack).
//
//go:noinline
func clone[T any](v *T) *T {
	c := new(T)
	*c = *v
	return c
}

// unavailable is a 503 with a short Retry-After: a dependency of the gateway failed.
func unavailable(msg string, err error) *providers.Error {
	return &providers.Error{Kind: providers.KindUnavailable, Message: msg + " Retry shortly.", RetryAfter: time.Second, Err: err}
}

func refusal(d ratelimit.Decision, lim Limits) *providers.Error {
	what := map[ratelimit.Dimension]string{
		ratelimit.DimRequests:    fmt.Sprintf("requests per minute (limit %d)", lim.RPM),
		ratelimit.DimImages:      fmt.Sprintf("images per minute (limit %d)", lim.IPM),
		ratelimit.DimMegapixels:  fmt.Sprintf("megapixels per minute (limit %d)", lim.MPPM),
		ratelimit.DimConcurrency: fmt.Sprintf("requests in flight (limit %d)", lim.Concurrency),
	}[d.RefusedBy]
	if what == "" {
		what = d.RefusedBy.String()
	}
	msg := "Rate limit reached for " + what + " on this API key."
	if d.Unsatisfiable {
		msg += " This request alone exceeds the limit; ask for fewer or smaller images."
		return &providers.Error{Kind: providers.KindRateLimited, Message: msg, Final: true}
	}
	msg += " Retry after " + d.RetryAfter.Round(time.Millisecond).String() + "."
	return &providers.Error{Kind: providers.KindRateLimited, RetryAfter: d.RetryAfter, Message: msg}
}

// reserve takes free images and holds the worst-case cost of the rest against the key's budget.
func (t *ticket) reserve(ctx context.Context) error {
	m, k, q := t.m, t.a.Key, t.quote
	if q.FreeImages > 0 && m.o.KeyFreeImages {
		free, err := m.takeFree(ctx, k.ID, t.a.Entry.Name, q.Images, q.FreeImages)
		if err != nil {
			return unavailable("The billing store is unavailable.", err)
		}
		t.free = free
	}
	if k.Budget == nil {
		return nil
	}
	if m.o.Escrow == nil {
		return &providers.Error{Kind: providers.KindInternal, Message: "Budgets are not configured on this gateway."}
	}
	amount := max(q.ForCharged(q.Images, t.free), t.worst) // the worst case over the channels
	h, err := m.o.Escrow.Hold(ctx, k.ID, k.BudgetPeriod, billing.PeriodStart(k.BudgetPeriod, t.started), amount)
	var ierr *billing.InsufficientError
	switch {
	case errors.As(err, &ierr):
		if m.o.Metrics != nil {
			m.o.Metrics.Rejected(t.a.Entry.Name)
		}
		msg := fmt.Sprintf("This API key's budget is used up: this request could cost up to %s %s.", amount, q.Currency)
		if rem, ok := billing.Remaining(ierr.Balance); ok {
			msg = fmt.Sprintf("This API key's budget is used up: this request could cost up to %s %s and %s %s remain (budget %s, spent %s, reserved by requests in flight and other gateways %s).",
				amount, q.Currency, rem+ierr.Local, q.Currency, k.Budget, ierr.Balance.Spent, ierr.Balance.Held-ierr.Local)
		}
		return &providers.Error{Kind: providers.KindQuotaExceeded, Message: msg}
	case err != nil:
		return unavailable("The billing store is unavailable.", err)
	}
	t.hold = h
	return nil
}

// takeFree takes up to n images of the key's free quota for model, asking the store only while
// the quota is not known to be used up.
func (m *Meter) takeFree(ctx context.Context, keyID, model string, n, quota int) (int, error) {
	return m.takeFrom(ctx, freeKey(keyID, model), n, func(ctx context.Context) (int, error) {
		return m.o.Store.ConsumeFreeImages(ctx, keyID, model, n, quota)
	})
}

// takeFrom takes up to n free images with consume, unless the pool ck is known to be used up
// (then it makes no store call); a pool found short is believed used up for exhaustedFor.
func (m *Meter) takeFrom(ctx context.Context, ck string, n int, consume func(context.Context) (int, error)) (int, error) {
	if until, ok := m.exhausted.Load(ck); ok && m.o.Now().Before(until.(time.Time)) {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, store.Within(ctx, m.o.StoreTimeout))
	defer cancel()
	free, err := consume(ctx)
	if err == nil && free < n {
		m.exhausted.Store(ck, m.o.Now().Add(exhaustedFor))
	}
	return free, err
}

// channelFree takes up to n images of the free quota of the channel's upstream account for the
// route's model (one pool per channel and upstream model, whatever id spelled it, across
// replicas); it returns how many it got. A store failure counts as none (the cost recorded is
// then the full one).
func (m *Meter) channelFree(ctx context.Context, route *catalog.Route, n int) int {
	model := route.Model.Upstream
	if model == "" {
		model = route.Model.ID
	}
	free, err := m.takeFrom(ctx, "channel\x00"+route.Channel+"\x00"+model, n, func(ctx context.Context) (int, error) {
		return m.o.Store.ConsumeUpstreamFree(ctx, route.Channel, model, n, route.Cost.FreeImages)
	})
	if err != nil {
		m.o.Logger.Warn("upstream free images", zap.String("channel", route.Channel), zap.Error(err))
		return 0
	}
	return free
}

// returnFree gives back free images not delivered.
func (m *Meter) returnFree(ctx context.Context, keyID, model string, n int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.StoreTimeout)
	defer cancel()
	if err := m.o.Store.ReturnFreeImages(ctx, keyID, model, n); err != nil {
		m.o.Logger.Warn("return free images", zap.String("key_id", keyID), zap.Error(err))
		return
	}
	m.exhausted.Delete(freeKey(keyID, model))
}

// freeKey names a key's free quota for a model in Meter.exhausted.
func freeKey(keyID, model string) string { return keyID + "\x00" + model }

// undo gives back what Admit took when a later step refused the request.
func (t *ticket) undo(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if t.free > 0 {
		t.m.returnFree(ctx, t.a.Key.ID, t.a.Entry.Name, t.free)
	}
	if t.hold != nil {
		t.hold.Release()
	}
	if t.grant != nil {
		_ = t.m.o.Limiter.GiveBack(ctx, t.grant, t.cost)
		_ = t.m.o.Limiter.Release(ctx, t.grant)
	}
}

// Finish settles the request at what was delivered and makes its usage event durable. When the
// event cannot be made durable, the receipt carries an error and nothing may be delivered.
func (t *ticket) Finish(ctx context.Context, o frontdoor.Outcome) frontdoor.Receipt {
	m, req := t.m, t.a.Request
	delivered := max(o.Delivered, 0)
	s, up := t.settle(ctx, &o)
	var slice string
	if t.a.Key != nil {
		if s.FreeReturned > 0 {
			m.returnFree(ctx, t.a.Key.ID, t.a.Entry.Name, s.FreeReturned)
		}
		if t.hold != nil {
			if delivered == 0 {
				t.hold.Release()
			} else {
				slice = t.hold.Settle(s.Cost)
			}
		}
		if s.FreeUsed > 0 && m.o.Metrics != nil {
			m.o.Metrics.FreeImages(t.a.Entry.Name, s.FreeUsed)
		}
	}
	if t.grant != nil {
		w, h := req.Width, req.Height
		if w == 0 && t.priced {
			w, h = t.quote.Width, t.quote.Height
		}
		if und := ratelimit.Undelivered(req.N, delivered, w, h); und.Images > 0 || und.Kilopixels > 0 {
			_ = m.o.Limiter.GiveBack(ctx, t.grant, und)
		}
		_ = m.o.Limiter.Release(ctx, t.grant)
	}
	var receipt frontdoor.Receipt
	if t.entry != nil {
		if o.NotAttempted {
			t.entry.Abort()
		} else if err := t.commit(&o, s.Cost, slice, &up); err != nil {
			receipt.Err = unavailable("The usage ledger is unavailable; nothing was charged.", err)
			s.Cost = 0
		}
	}
	currency := m.o.Engine.Currency()
	if s.Cost > 0 && m.o.Metrics != nil {
		m.o.Metrics.Charged(t.a.Entry.Name, currency, s.Cost)
	}
	t.header.Set("X-Imagegw-Cost", s.Cost.String())
	t.header.Set("X-Imagegw-Currency", currency)
	receipt.Header = t.header
	return receipt
}

// commit journals the request's final event (usage.Entry.Commit). It is out of Finish's line,
// as settle is: the event is 0.3 KB, and Finish runs deep in a request's stack.
//
//go:noinline
func (t *ticket) commit(o *frontdoor.Outcome, cost money.Amount, slice string, up *upstreamCost) error {
	ev := t.event(o)
	ev.Cost, ev.Slice = cost, slice
	ev.UpstreamCost, ev.UpstreamListCost, ev.UpstreamCurrency = up.cost, up.list, up.currency
	return t.entry.Commit(&ev)
}

// event is the request's usage event for outcome o (cost and slice not set).
func (t *ticket) event(o *frontdoor.Outcome) store.UsageEvent {
	req := t.a.Request
	ev := store.UsageEvent{
		RequestID: t.a.RequestID, ClientRequestID: t.a.ClientRequestID, Time: t.started.UTC(), Model: t.a.Entry.Name, Provider: o.Provider, Channel: o.Channel,
		Operation: string(req.Operation), NRequested: req.N, NDelivered: max(o.Delivered, 0), Width: req.Width, Height: req.Height,
		Currency: t.m.o.Engine.Currency(), Status: o.Status, ErrorKind: string(o.ErrorKind),
		LatencyMS: o.Latency.Milliseconds(), UpstreamMS: o.Upstream.Milliseconds(),
	}
	if t.a.Key != nil {
		ev.KeyID = t.a.Key.ID
	}
	if t.priced {
		ev.Steps = t.quote.Steps
		if ev.Width == 0 {
			ev.Width, ev.Height = t.quote.Width, t.quote.Height
		}
	}
	if ev.Provider == "" {
		ev.Provider = t.a.Entry.OwnedBy
	}
	// What the upstream reported making, when every image agrees (gpt-image's "auto").
	if len(o.Made) > 0 && !o.Made[0].Size.IsZero() {
		same := true
		for _, m := range o.Made[1:] {
			same = same && m.Size == o.Made[0].Size
		}
		if same {
			ev.Width, ev.Height = o.Made[0].Size.W, o.Made[0].Size.H
		}
	}
	return ev
}

// Quote answers POST /v1/images/quote: the worst-case cost of the request, nothing generated,
// nothing held.
func (m *Meter) Quote(r *http.Request, a frontdoor.Admission) (any, error) {
	a = keyPriced(a)
	q, err := m.o.Engine.Quote(&a.Entry.Model, a.Request)
	if errors.Is(err, billing.ErrUnpriced) {
		return map[string]any{"model": a.Entry.Name, "cost": "0", "currency": m.o.Engine.Currency(), "images": a.Request.N,
			"rule": "this model has no price configured"}, nil
	}
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindInternal, Message: "The request could not be priced.", Err: err}
	}
	out := map[string]any{
		"model": a.Entry.Name, "cost": q.Total.String(), "currency": q.Currency, "images": q.Images,
		"per_image": q.PerImage.String(), "width": q.Width, "height": q.Height, "megapixels": q.Megapixels(),
		"rule": q.Rule(), "unit": string(q.Unit), "list_price": q.ListAmount.String(), "list_currency": q.ListCurrency,
		"size_estimated": q.SizeEstimated,
	}
	if q.Steps > 0 {
		out["steps"] = q.Steps
	}
	if q.FreeImages > 0 {
		out["free_images_per_key"] = q.FreeImages
	}
	if k := a.Key; k != nil && k.Budget != nil {
		ctx, cancel := context.WithTimeout(r.Context(), store.Within(r.Context(), m.o.StoreTimeout))
		defer cancel()
		if b, err := m.o.Store.Balance(ctx, k.ID, k.BudgetPeriod, billing.PeriodStart(k.BudgetPeriod, m.o.Now())); err == nil {
			if rem, ok := billing.Remaining(b); ok {
				out["budget_remaining"] = rem.String()
				out["affordable"] = q.Total <= rem
			}
		}
	}
	return out, nil
}

// channelSlotWait caps how long a call waits for a concurrency slot of a channel before trying
// again (the front door waits at most once, up to its MaxQueueWait).
const channelSlotWait = time.Second

// Enter admits one upstream call to a channel against the channel's limits.
func (m *Meter) Enter(ctx context.Context, channel string, n, width, height int) (func(int), time.Duration, bool, error) {
	lim, ok := (*m.channels.Load())[channel]
	if !ok || lim.zero() || m.o.Limiter == nil {
		return func(int) {}, 0, true, nil
	}
	cost := ratelimit.CostOf(n, width, height)
	d, err := m.o.Limiter.Admit(ctx, ratelimit.Request{Subject: ratelimit.ChannelSubject(channel), Limits: lim.limits(), Cost: cost, LeaseTTL: m.o.LeaseTTL})
	if err != nil {
		return nil, 0, false, err
	}
	if !d.Allowed {
		ra := d.RetryAfter
		switch {
		case d.Unsatisfiable:
			ra = frontdoor.Never
		case d.RefusedBy == ratelimit.DimConcurrency:
			// The hint is when the earliest lease would expire; a live call usually ends sooner,
			// so a short wait for a slot is still worth it.
			ra = min(ra, channelSlotWait)
		}
		return nil, ra, false, nil
	}
	return func(delivered int) {
		bg := context.WithoutCancel(ctx)
		if und := ratelimit.Undelivered(n, delivered, width, height); und.Images > 0 || und.Kilopixels > 0 {
			_ = m.o.Limiter.GiveBack(bg, d.Grant, und)
		}
		_ = m.o.Limiter.Release(bg, d.Grant)
	}, 0, true, nil
}
