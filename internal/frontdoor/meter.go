package frontdoor

import (
	"context"
	"net/http"
	"time"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// Meter is where rate limits, budgets and the usage ledger plug into the front door. Admit runs
// before any upstream call (and may refuse); the returned Ticket's Finish runs exactly once after
// the calls, with what was delivered.
type Meter interface {
	Admit(ctx context.Context, a Admission) (Ticket, error)
}

// Doorman is an optional part of a Meter: it turns a key's request away before its body is
// read when the key is known to be at a limit no request of it can pass now (requests per
// minute, requests in flight), so a client over its limits cannot make the gateway read and
// decode its bodies. It answers from memory; leave runs when the request is done.
type Doorman interface {
	Door(ctx context.Context, k *store.Key) (leave func(), err error)
}

// Admission describes a request about to call upstream.
type Admission struct {
	// RequestID is the gateway's id for the request; ClientRequestID the client's, if any.
	RequestID       string
	ClientRequestID string
	Key             *store.Key
	Entry           *catalog.Entry
	Request         *providers.Request
}

// Ticket settles an admitted request.
type Ticket interface {
	Finish(ctx context.Context, o Outcome) Receipt
}

// Outcome is what an admitted request ended with.
type Outcome struct {
	Delivered  int
	Withheld   int
	FailedCall int
	Status     string // store.StatusOK, StatusFailed, StatusIndeterminate
	ErrorKind  providers.Kind
	Provider   string
	Channel    string
	// Made describes each delivered image: the channel that served it (a request that failed
	// over, or fanned out over several channels, is billed at each channel's price) and what
	// its upstream reported making, when it did (billed instead of what was asked, "auto").
	Made     []Made
	Latency  time.Duration
	Upstream time.Duration
	// NotAttempted: the request failed before any upstream call (after admission); it is not a
	// ledger event.
	NotAttempted bool
}

// Made is one delivered image as billing sees it.
type Made struct {
	Channel string
	// Size and Quality are what the upstream reported making (zero when it did not say).
	Size    providers.Size
	Quality string
}

// Receipt carries response headers from the meter (cost, rate-limit state).
type Receipt struct {
	Header http.Header
	// Err, when set, means the request's charge could not be recorded: nothing may be delivered,
	// and the client gets Err instead.
	Err error
}

func (r Receipt) setHeaders(h http.Header) {
	for k, vs := range r.Header {
		h[k] = vs
	}
}

// HeaderError is an error with response headers to send along (for example a rate-limit refusal
// with its x-ratelimit-* headers).
type HeaderError struct {
	Err    error
	Header http.Header
}

func (e *HeaderError) Error() string { return e.Err.Error() }
func (e *HeaderError) Unwrap() error { return e.Err }

// NopMeter admits everything and records nothing.
type NopMeter struct{}

// Admit admits.
func (NopMeter) Admit(context.Context, Admission) (Ticket, error) { return nopTicket{}, nil }

type nopTicket struct{}

func (nopTicket) Finish(context.Context, Outcome) Receipt { return Receipt{} }

func (c *call) admission() Admission {
	return Admission{Key: c.key, Entry: c.entry, Request: c.req}
}

// ChannelGate protects upstream accounts: it admits one upstream call of n images of w×h to a
// channel, or refuses with how long until it would fit (Never when it cannot: the call alone
// exceeds the channel's limit). leave is called once the call returned, with the images it
// delivered.
// Never is the retry-after of a ChannelGate refusal that waiting cannot cure.
const Never time.Duration = -1

type ChannelGate interface {
	Enter(ctx context.Context, channel string, n, width, height int) (leave func(delivered int), retryAfter time.Duration, ok bool, err error)
}
