package ratelimit

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// The scenario table runs unchanged against the Local and the Redis limiter: parity is these
// tables passing on both. Rates use an hour period where exact counts matter (no refill during
// the test) and sub-second emission intervals where refill is the point, with sleeps leaving
// at least 100ms of slack.

type op uint8

const (
	opAdmit op = iota
	opGiveBack
	opRelease
	opRenew
	opSleep
	// opCrash stops the limiter's renewal without releasing anything: its owner died.
	opCrash
)

type want struct {
	refused       bool      // the decision is a refusal (default: allowed)
	refusedBy     Dimension // checked when refused
	unsatisfiable bool
	// remaining maps a dimension to its expected Remaining.
	remaining map[Dimension]int64
	// retryMax, when set, requires 0 < RetryAfter <= retryMax.
	retryMax time.Duration
	err      error // for renew
}

type step struct {
	op      op
	grant   string // admit stores the grant under this name; the other ops use it
	subject string // default "s"
	limits  *Limits
	cost    Cost
	times   int // admit repeats; each must match want
	sleep   time.Duration
	want    want
}

type scenario struct {
	name   string
	limits Limits
	ttl    time.Duration
	steps  []step
}

var (
	oneReq = Cost{Requests: 1}
	hour   = time.Hour
)

func perHour(n int64) Rate { return Rate{Count: n, Period: hour} }

var scenarios = []scenario{
	{
		name:   "requests boundary: N allowed, N+1 refused",
		limits: Limits{Requests: perHour(5)},
		steps: []step{
			{op: opAdmit, cost: oneReq, want: want{remaining: map[Dimension]int64{DimRequests: 4}}},
			{op: opAdmit, cost: oneReq, times: 4},
			{op: opAdmit, cost: oneReq, times: 3, want: want{refused: true, refusedBy: DimRequests,
				remaining: map[Dimension]int64{DimRequests: 0}, retryMax: 12 * time.Minute}},
			// Another subject is independent.
			{op: opAdmit, subject: "other", cost: oneReq, times: 5},
			{op: opAdmit, subject: "other", cost: oneReq, want: want{refused: true, refusedBy: DimRequests}},
		},
	},
	{
		name: "refill over time",
		// One every 2 s: 1.25 tokens after the first sleep (one admitted, then 0.25 left), 2.5
		// after the second (two, then 0.5). So each refusal holds while the next token is 1-1.5 s
		// away; with one every 400 ms (0.2-0.3 s) a loaded CI machine's stall between two admits
		// let a token in.
		limits: Limits{Requests: Rate{Count: 5, Period: 10 * time.Second}},
		steps: []step{
			{op: opAdmit, cost: oneReq, times: 5},
			{op: opAdmit, cost: oneReq, want: want{refused: true, refusedBy: DimRequests, retryMax: 2 * time.Second}},
			{op: opSleep, sleep: 2500 * time.Millisecond},
			{op: opAdmit, cost: oneReq},
			{op: opAdmit, cost: oneReq, want: want{refused: true, refusedBy: DimRequests}},
			{op: opSleep, sleep: 4500 * time.Millisecond},
			{op: opAdmit, cost: oneReq, times: 2},
			{op: opAdmit, cost: oneReq, want: want{refused: true, refusedBy: DimRequests}},
		},
	},
	{
		name:   "burst above and below count",
		limits: Limits{Requests: Rate{Count: 10, Period: hour, Burst: 3}},
		steps: []step{
			{op: opAdmit, cost: oneReq, times: 3},
			{op: opAdmit, cost: oneReq, want: want{refused: true, refusedBy: DimRequests}},
		},
	},
	{
		name:   "images: cost n, refusal consumes nothing, give-back",
		limits: Limits{Requests: perHour(10), Images: perHour(6)},
		steps: []step{
			{op: opAdmit, grant: "a", cost: CostOf(4, 512, 512),
				want: want{remaining: map[Dimension]int64{DimRequests: 9, DimImages: 2}}},
			{op: opAdmit, cost: CostOf(4, 512, 512), want: want{refused: true, refusedBy: DimImages,
				remaining: map[Dimension]int64{DimRequests: 9, DimImages: 2}, retryMax: 21 * time.Minute}},
			// Only 1 of the 4 images was delivered: 3 come back.
			{op: opGiveBack, grant: "a", cost: Undelivered(4, 1, 512, 512)},
			{op: opAdmit, cost: CostOf(5, 512, 512),
				want: want{remaining: map[Dimension]int64{DimRequests: 8, DimImages: 0}}},
			// Giving back more than the grant still holds is clamped: 1 of its 4 images is left.
			{op: opGiveBack, grant: "a", cost: Cost{Images: 4}},
			{op: opAdmit, cost: CostOf(1, 512, 512), want: want{remaining: map[Dimension]int64{DimImages: 0}}},
			{op: opAdmit, cost: CostOf(1, 512, 512), want: want{refused: true, refusedBy: DimImages}},
		},
	},
	{
		name:   "megapixels in kilopixels with give-back",
		limits: Limits{Megapixels: Rate{Count: 10 * KilopixelsPerMegapixel, Period: hour}},
		steps: []step{
			// 2 × 1024×1024 = 2,097,152 px = 2,098 kilopixels.
			{op: opAdmit, grant: "a", cost: CostOf(2, 1024, 1024),
				want: want{remaining: map[Dimension]int64{DimMegapixels: 10000 - 2098}}},
			{op: opAdmit, cost: CostOf(2, 1024, 1024), times: 3},
			{op: opAdmit, cost: CostOf(2, 1024, 1024), want: want{refused: true, refusedBy: DimMegapixels,
				remaining: map[Dimension]int64{DimMegapixels: 10000 - 4*2098}}},
			{op: opGiveBack, grant: "a", cost: Undelivered(2, 0, 1024, 1024)},
			{op: opAdmit, cost: CostOf(1, 1024, 1024),
				want: want{remaining: map[Dimension]int64{DimMegapixels: 10000 - 3*2098 - 1049}}},
		},
	},
	{
		name:   "all three rate dimensions; the first refusing is reported",
		limits: Limits{Requests: perHour(3), Images: perHour(4), Megapixels: Rate{Count: 1000, Period: hour}},
		steps: []step{
			{op: opAdmit, cost: CostOf(2, 500, 500), want: want{remaining: map[Dimension]int64{
				DimRequests: 2, DimImages: 2, DimMegapixels: 500}}},
			// 3 images refuse on images and on megapixels; images comes first.
			{op: opAdmit, cost: CostOf(3, 500, 500), want: want{refused: true, refusedBy: DimImages}},
			{op: opAdmit, cost: CostOf(1, 1000, 1000), want: want{refused: true, refusedBy: DimMegapixels,
				remaining: map[Dimension]int64{DimRequests: 2, DimImages: 2, DimMegapixels: 500}}},
			{op: opAdmit, cost: CostOf(2, 500, 500), want: want{remaining: map[Dimension]int64{
				DimRequests: 1, DimImages: 0, DimMegapixels: 0}}},
		},
	},
	{
		name:   "cost above burst is unsatisfiable",
		limits: Limits{Requests: perHour(10), Images: perHour(3)},
		steps: []step{
			{op: opAdmit, cost: CostOf(4, 256, 256), want: want{refused: true, refusedBy: DimImages, unsatisfiable: true,
				remaining: map[Dimension]int64{DimRequests: 10, DimImages: 3}}},
			{op: opAdmit, cost: CostOf(3, 256, 256)},
		},
	},
	{
		name:   "give back the whole request restores a full bucket",
		limits: Limits{Requests: perHour(2)},
		steps: []step{
			{op: opAdmit, grant: "a", cost: oneReq},
			{op: opGiveBack, grant: "a", cost: oneReq},
			{op: opAdmit, cost: oneReq, want: want{remaining: map[Dimension]int64{DimRequests: 1}}},
			{op: opAdmit, cost: oneReq},
			{op: opAdmit, cost: oneReq, want: want{refused: true, refusedBy: DimRequests}},
		},
	},
	{
		name:   "concurrency leases: limit, release, idempotent release",
		limits: Limits{Requests: perHour(100), Concurrency: 2},
		steps: []step{
			{op: opAdmit, grant: "a", cost: oneReq, want: want{remaining: map[Dimension]int64{DimConcurrency: 1}}},
			{op: opAdmit, grant: "b", cost: oneReq, want: want{remaining: map[Dimension]int64{DimConcurrency: 0}}},
			// Refused on concurrency: the request is not charged.
			{op: opAdmit, cost: oneReq, times: 2, want: want{refused: true, refusedBy: DimConcurrency,
				remaining: map[Dimension]int64{DimRequests: 98, DimConcurrency: 0}, retryMax: DefaultLeaseTTL}},
			{op: opRelease, grant: "a"},
			{op: opRelease, grant: "a"},
			{op: opAdmit, grant: "c", cost: oneReq, want: want{remaining: map[Dimension]int64{DimRequests: 97, DimConcurrency: 0}}},
			{op: opAdmit, cost: oneReq, want: want{refused: true, refusedBy: DimConcurrency}},
			{op: opRelease, grant: "b"},
			{op: opRelease, grant: "c"},
			{op: opAdmit, cost: oneReq, want: want{remaining: map[Dimension]int64{DimConcurrency: 1}}},
		},
	},
	{
		name:   "leases expire: a crashed holder's slots free themselves",
		limits: Limits{Concurrency: 2},
		ttl:    300 * time.Millisecond,
		steps: []step{
			{op: opAdmit, grant: "a"},
			{op: opAdmit, grant: "b"},
			{op: opAdmit, want: want{refused: true, refusedBy: DimConcurrency, retryMax: 300 * time.Millisecond}},
			{op: opCrash},
			{op: opSleep, sleep: 450 * time.Millisecond},
			{op: opAdmit, times: 2},
			{op: opRenew, grant: "a", want: want{err: ErrLeaseLost}},
		},
	},
	{
		name:   "live leases are renewed in the background past several TTLs",
		limits: Limits{Concurrency: 1},
		ttl:    time.Second,
		steps: []step{
			{op: opAdmit, grant: "a"},
			{op: opSleep, sleep: 3500 * time.Millisecond}, // 3.5 TTLs, no Renew call
			{op: opAdmit, want: want{refused: true, refusedBy: DimConcurrency, retryMax: time.Second}},
			{op: opRenew, grant: "a"},
			{op: opRelease, grant: "a"},
			{op: opAdmit},
		},
	},
	{
		name:   "renew keeps a long request's slot",
		limits: Limits{Concurrency: 1},
		ttl:    400 * time.Millisecond,
		steps: []step{
			{op: opAdmit, grant: "a"},
			{op: opSleep, sleep: 250 * time.Millisecond},
			{op: opRenew, grant: "a"},
			{op: opSleep, sleep: 250 * time.Millisecond}, // past the first TTL
			{op: opAdmit, want: want{refused: true, refusedBy: DimConcurrency}},
			{op: opRelease, grant: "a"},
			{op: opRenew, grant: "a", want: want{err: ErrLeaseLost}},
			{op: opAdmit},
		},
	},
	{
		name:   "unlimited subject",
		limits: Limits{},
		steps: []step{
			{op: opAdmit, grant: "a", cost: CostOf(10, 2048, 2048), times: 50},
			{op: opGiveBack, grant: "a", cost: Undelivered(10, 0, 2048, 2048)},
			{op: opRelease, grant: "a"},
			{op: opRenew, grant: "a"},
		},
	},
}

// runScenario plays sc against lim; subjects are prefixed with base.
func runScenario(t *testing.T, lim Limiter, sc scenario) {
	ctx := context.Background()
	grants := map[string]*Grant{}
	for i, st := range sc.steps {
		subject := KeySubject("s")
		if st.subject != "" {
			subject = KeySubject(st.subject)
		}
		limits := sc.limits
		if st.limits != nil {
			limits = *st.limits
		}
		switch st.op {
		case opSleep:
			time.Sleep(st.sleep)
		case opAdmit:
			for n := range max(st.times, 1) {
				d, err := lim.Admit(ctx, Request{Subject: subject, Limits: limits, Cost: st.cost, LeaseTTL: sc.ttl})
				if err != nil {
					t.Fatalf("step %d (admit #%d): %v", i, n+1, err)
				}
				checkDecision(t, i, n, d, st.want)
				if st.grant != "" && d.Grant != nil {
					grants[st.grant] = d.Grant
				}
			}
		case opGiveBack:
			if err := lim.GiveBack(ctx, mustGrant(t, grants, st.grant), st.cost); err != nil {
				t.Fatalf("step %d (give back): %v", i, err)
			}
		case opRelease:
			if err := lim.Release(ctx, mustGrant(t, grants, st.grant)); err != nil {
				t.Fatalf("step %d (release): %v", i, err)
			}
		case opRenew:
			err := lim.Renew(ctx, mustGrant(t, grants, st.grant))
			if !errors.Is(err, st.want.err) || (err != nil) != (st.want.err != nil) {
				t.Fatalf("step %d (renew): err = %v, want %v", i, err, st.want.err)
			}
		case opCrash:
			if err := lim.(interface{ Close() error }).Close(); err != nil {
				t.Fatalf("step %d (crash): %v", i, err)
			}
		}
	}
	// The grants were live (referenced) until here: the background renewal must not have
	// treated them as abandoned.
	runtime.KeepAlive(grants)
}

func mustGrant(t *testing.T, grants map[string]*Grant, name string) *Grant {
	t.Helper()
	g, ok := grants[name]
	if !ok {
		t.Fatalf("no grant %q was stored", name)
	}
	return g
}

func checkDecision(t *testing.T, step, n int, d Decision, w want) {
	t.Helper()
	if d.Allowed == w.refused {
		t.Fatalf("step %d admit #%d: allowed = %v, want %v (decision %+v)", step, n+1, d.Allowed, !w.refused, d)
	}
	if d.Allowed != (d.Grant != nil) {
		t.Fatalf("step %d admit #%d: allowed = %v but grant = %v", step, n+1, d.Allowed, d.Grant)
	}
	if w.refused {
		if d.RefusedBy != w.refusedBy {
			t.Fatalf("step %d admit #%d: refused by %v, want %v (decision %+v)", step, n+1, d.RefusedBy, w.refusedBy, d)
		}
		if d.Unsatisfiable != w.unsatisfiable {
			t.Fatalf("step %d admit #%d: unsatisfiable = %v, want %v", step, n+1, d.Unsatisfiable, w.unsatisfiable)
		}
		if !d.Unsatisfiable && d.RetryAfter <= 0 {
			t.Fatalf("step %d admit #%d: refused with RetryAfter %v", step, n+1, d.RetryAfter)
		}
	} else if d.RefusedBy != DimNone || d.RetryAfter != 0 {
		t.Fatalf("step %d admit #%d: allowed but RefusedBy %v RetryAfter %v", step, n+1, d.RefusedBy, d.RetryAfter)
	}
	if w.retryMax > 0 && (d.RetryAfter <= 0 || d.RetryAfter > w.retryMax) {
		t.Fatalf("step %d admit #%d: RetryAfter = %v, want in (0, %v]", step, n+1, d.RetryAfter, w.retryMax)
	}
	for dim, rem := range w.remaining {
		if got := d.quota(dim).Remaining; got != rem {
			t.Fatalf("step %d admit #%d: %v remaining = %d, want %d (decision %+v)", step, n+1, dim, got, rem, d)
		}
	}
}

// implementations returns a fresh limiter of each kind. Redis runs fail-closed so a Redis problem
// fails the test instead of being hidden by the fallback.
func implementations() []struct {
	name string
	new  func(t *testing.T) Limiter
} {
	return []struct {
		name string
		new  func(t *testing.T) Limiter
	}{
		{"local", func(t *testing.T) Limiter {
			l := NewLocal(LocalOptions{})
			t.Cleanup(func() { _ = l.Close() })
			return l
		}},
		{"redis", func(t *testing.T) Limiter {
			c := needRedis(t)
			r := NewRedis(c, RedisOptions{Prefix: testPrefix(t, c), Policy: FailClosed, Timeout: time.Second})
			t.Cleanup(func() { _ = r.Close() })
			return r
		}},
		{"redis-cluster", func(t *testing.T) Limiter {
			u := needCluster(t)
			r, _, _ := clusterGateway(t, u, RedisOptions{Prefix: clusterPrefix(t, clusterAdmin(t, u)), Policy: FailClosed,
				Timeout: time.Second})
			return r
		}},
	}
}

func TestScenarios(t *testing.T) {
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					runScenario(t, impl.new(t), sc)
				})
			}
		})
	}
}
