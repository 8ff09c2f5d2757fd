package usage

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// TestAppendLineIsTheJSON checks the hand-written encoder against encoding/json, byte for byte,
// over lines with every field empty, set, or hostile (escapes, invalid UTF-8, HTML, odd zones).
func TestAppendLineIsTheJSON(t *testing.T) {
	strs := []string{"", "a", "req_0123456789abcdef", "openai-compatible/flux-schnell", `quo"te`, `back\slash`,
		"tab\there", "nl\n", "\x00\x1f", "<b>&amp;</b>", "ünïcødé", "\xff\xfe bad utf-8", "line\u2028sep\u2029",
		"emoji 🖼"}
	ints := []int{0, 1, -1, 1024, math.MaxInt32}
	amounts := []money.Amount{0, 1, 6400, -1500000, money.Amount(math.MaxInt64), money.Amount(math.MinInt64)}
	zones := []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+30*60), time.FixedZone("lmt", 7*3600+13),
		time.FixedZone("minus", -8*3600)}
	times := []time.Time{{}, time.Date(2026, 12, 3, 16, 48, 54, 123456789, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Now()}
	r := rand.New(rand.NewPCG(1, 2))
	s := func() string { return strs[r.IntN(len(strs))] }
	i := func() int { return ints[r.IntN(len(ints))] }
	a := func() money.Amount { return amounts[r.IntN(len(amounts))] }
	for n := 0; n < 20000; n++ {
		l := line{Kind: s(), Run: s(), Seq: uint64(r.IntN(3)) * uint64(r.Uint32()), RequestID: s(),
			Time: times[r.IntN(len(times))].In(zones[r.IntN(len(zones))]), KeyID: s(), Model: s(), Provider: s(),
			Channel: s(), Operation: s(), NRequested: i(), NDelivered: i(), Width: i(), Height: i(), Steps: i(),
			Cost: a(), Currency: s(), Status: s(), ErrorKind: s(), LatencyMS: int64(i()), UpstreamMS: int64(i()),
			Slice: s(), ClientID: s(), UpstreamCost: a(), UpstreamListCost: a(), UpstreamCurrency: s()}
		want, werr := appendJSON(nil, &l)
		got, gerr := appendLine([]byte("prefix"), &l)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("line %+v: encoding/json error %v, appendLine error %v", l, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("line %+v:\n got %s\nwant %s", l, got[len("prefix"):], want)
		}
	}
}

func BenchmarkAppendLine(b *testing.B) {
	l := toLine(kindEvent, "1a2b3c4d", 42, event(7))
	var buf []byte
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = appendLine(buf[:0], &l)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = appendJSON(buf[:0], &l)
		}
	})
}

// toLine is the journal line of e (the recorder fills its lines in place, with line.fill).
func toLine(kind, run string, seq uint64, e store.UsageEvent) line {
	var l line
	l.fill(kind, run, seq, &e)
	return l
}
