package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestCostOfAndUndelivered(t *testing.T) {
	tests := []struct {
		name string
		got  Cost
		want Cost
	}{
		{"one 1024²", CostOf(1, 1024, 1024), Cost{Requests: 1, Images: 1, Kilopixels: 1049}},
		{"four 1024² rounds the total, not each image", CostOf(4, 1024, 1024), Cost{Requests: 1, Images: 4, Kilopixels: 4195}},
		{"eight 2048²", CostOf(8, 2048, 2048), Cost{Requests: 1, Images: 8, Kilopixels: 33555}},
		{"exact thousand", CostOf(1, 1000, 1000), Cost{Requests: 1, Images: 1, Kilopixels: 1000}},
		{"no images", CostOf(0, 1024, 1024), Cost{Requests: 1}},
		{"unknown size", CostOf(2, 0, 0), Cost{Requests: 1, Images: 2}},
		{"nothing delivered", Undelivered(4, 0, 1024, 1024), Cost{Images: 4, Kilopixels: 4195}},
		{"one of four delivered", Undelivered(4, 1, 1024, 1024), Cost{Images: 3, Kilopixels: 4195 - 1049}},
		{"all delivered", Undelivered(4, 4, 1024, 1024), Cost{}},
		{"more than asked delivered", Undelivered(4, 9, 1024, 1024), Cost{}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
	// Partial give-backs add up to exactly the charge.
	c := CostOf(7, 333, 777)
	sum := Undelivered(7, 4, 333, 777).Kilopixels + Undelivered(4, 0, 333, 777).Kilopixels
	if sum != c.Kilopixels {
		t.Errorf("give-backs sum to %d kilopixels, charge was %d", sum, c.Kilopixels)
	}
}

func TestLimitsPerMinute(t *testing.T) {
	l := LimitsPerMinute(60, 120, 500, 4)
	want := Limits{
		Requests:    Rate{Count: 60, Period: time.Minute},
		Images:      Rate{Count: 120, Period: time.Minute},
		Megapixels:  Rate{Count: 500_000, Period: time.Minute},
		Concurrency: 4,
	}
	if l != want {
		t.Fatalf("got %+v, want %+v", l, want)
	}
	if LimitsPerMinute(0, 0, 0, 0) != (Limits{}) {
		t.Fatal("zeros must mean unlimited")
	}
}

func TestInvalidRequests(t *testing.T) {
	bad := []Request{
		{Subject: ""},
		{Subject: "key:{a}"},
		{Subject: KeySubject("a"), Limits: Limits{Requests: Rate{Count: -1, Period: time.Minute}}},
		{Subject: KeySubject("a"), Limits: Limits{Images: Rate{Count: 5}}},
		{Subject: KeySubject("a"), Limits: Limits{Concurrency: -2}},
		{Subject: KeySubject("a"), Cost: Cost{Images: -1}},
		{Subject: KeySubject("a"), LeaseTTL: time.Microsecond},
	}
	for _, impl := range implementations() {
		t.Run(impl.name, func(t *testing.T) {
			lim := impl.new(t)
			for _, req := range bad {
				if _, err := lim.Admit(context.Background(), req); !errors.Is(err, ErrInvalid) {
					t.Errorf("Admit(%+v) = %v, want ErrInvalid", req, err)
				}
			}
		})
	}
}

func TestSubjectClass(t *testing.T) {
	for s, want := range map[Subject]string{KeySubject("k1"): "key", ChannelSubject("ark-1"): "channel", "x": "other"} {
		if got := s.Class(); got != want {
			t.Errorf("%q.Class() = %q, want %q", s, got, want)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	d := Decision{
		Allowed:  true,
		Requests: Quota{Limit: 60, Remaining: 59, Reset: time.Second},
		Images:   Quota{Limit: 120, Remaining: 116, Reset: 2 * time.Second},
	}
	h := http.Header{}
	d.SetHeaders(h)
	want := map[string]string{
		"x-ratelimit-limit-requests":     "60",
		"x-ratelimit-remaining-requests": "59",
		"x-ratelimit-reset-requests":     "1s",
		"x-ratelimit-limit-images":       "120",
		"x-ratelimit-remaining-images":   "116",
		"x-ratelimit-reset-images":       "2s",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if h.Get("Retry-After") != "" {
		t.Error("Retry-After on an allowed request")
	}
	if len(h) != len(want) {
		t.Errorf("unexpected headers %v", h)
	}

	refused := Decision{RefusedBy: DimImages, RetryAfter: 1500 * time.Millisecond, Images: Quota{Limit: 5, Reset: 6*time.Minute + 20*time.Millisecond}}
	h = http.Header{}
	refused.SetHeaders(h)
	if h.Get("Retry-After") != "2" || h.Get("Retry-After-Ms") != "1500" || h.Get("X-Ratelimit-Reset-Images") != "6m0.02s" {
		t.Errorf("refused headers %v", h)
	}
	if h.Get("X-Ratelimit-Limit-Requests") != "" {
		t.Error("headers for an unlimited dimension")
	}

	never := Decision{RefusedBy: DimImages, Unsatisfiable: true, Images: Quota{Limit: 5, Remaining: 5}}
	h = http.Header{}
	never.SetHeaders(h)
	if h.Get("Retry-After") != "" {
		t.Error("Retry-After on an unsatisfiable request")
	}
}

func TestFormatReset(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                             "0s",
		-time.Second:                  "0s",
		300 * time.Microsecond:        "1ms",
		20 * time.Millisecond:         "20ms",
		1500 * time.Millisecond:       "1.5s",
		6 * time.Minute:               "6m0s",
		time.Second + time.Nanosecond: "1.001s",
	} {
		if got := FormatReset(d); got != want {
			t.Errorf("FormatReset(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseFailurePolicy(t *testing.T) {
	for in, want := range map[string]FailurePolicy{"": FailOpen, "open": FailOpen, "fail-open": FailOpen,
		"closed": FailClosed, "Fail-Closed": FailClosed} {
		got, err := ParseFailurePolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseFailurePolicy(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseFailurePolicy("sometimes"); err == nil {
		t.Error("an unknown policy parsed")
	}
	if FailOpen.String() != "fail-open" || FailClosed.String() != "fail-closed" {
		t.Error("policy names")
	}
}

func TestBreaker(t *testing.T) {
	clk := newFakeClock()
	b := newBreaker(3, time.Second, clk.Now)
	for range 2 {
		if !b.allow() || b.failure() {
			t.Fatal("opened before the threshold")
		}
	}
	b.success() // resets the consecutive count
	for range 2 {
		b.failure()
	}
	if !b.allow() {
		t.Fatal("opened on non-consecutive failures")
	}
	if !b.failure() || b.allow() {
		t.Fatal("not open after 3 consecutive failures")
	}
	clk.Advance(time.Second)
	if !b.allow() {
		t.Fatal("no probe after the cooldown")
	}
	if b.allow() {
		t.Fatal("two probes at once")
	}
	if b.failure() || b.allow() {
		t.Fatal("a failed probe must keep the circuit open for another cooldown")
	}
	clk.Advance(time.Second)
	if !b.allow() || !b.success() || !b.allow() || !b.allow() {
		t.Fatal("a successful probe must close the circuit")
	}
}
