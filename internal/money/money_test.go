package money

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestStringIsTheShortestDecimal(t *testing.T) {
	for _, c := range []struct {
		a    Amount
		want string
	}{
		{0, "0"}, {1, "0.000001"}, {6400, "0.0064"}, {25 * Scale, "25"}, {-1500000, "-1.5"},
		{1234567891, "1234.567891"}, {10 * Scale, "10"}, {100010, "0.10001"},
		{math.MaxInt64, "9223372036854.775807"}, {math.MinInt64, "-9223372036854.775808"},
	} {
		if got := c.a.String(); got != c.want {
			t.Errorf("Amount(%d).String() = %q, want %q", int64(c.a), got, c.want)
		}
		if txt, _ := c.a.MarshalText(); string(txt) != c.want {
			t.Errorf("Amount(%d).MarshalText() = %q, want %q", int64(c.a), txt, c.want)
		}
		if c.a == math.MinInt64 || c.a == math.MaxInt64 {
			continue // beyond what Parse accepts
		}
		if p, err := Parse(c.want); err != nil || p != c.a {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.want, p, err, int64(c.a))
		}
	}
}

// TestStringMatchesThePrintfDefinition checks the digit loop against the plain definition
// (whole part, then six fraction digits with trailing zeros trimmed) over a spread of values.
func TestStringMatchesThePrintfDefinition(t *testing.T) {
	def := func(a int64) string {
		sign, u := "", uint64(a)
		if a < 0 {
			sign, u = "-", -u
		}
		s := fmt.Sprintf("%s%d", sign, u/Scale)
		if f := u % Scale; f != 0 {
			s += "." + strings.TrimRight(fmt.Sprintf("%06d", f), "0")
		}
		return s
	}
	for v := int64(-3_000_000); v <= 3_000_000; v += 997 {
		for _, a := range []int64{v, v * 1_000_003} {
			if got, want := Amount(a).String(), def(a); got != want {
				t.Fatalf("Amount(%d).String() = %q, want %q", a, got, want)
			}
		}
	}
}

func BenchmarkString(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = Amount(i * 1001).String()
	}
}
