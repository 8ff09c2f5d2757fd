// Package money holds exact currency amounts.
//
// An Amount is an integer count of micro-units (1e-6 of a currency unit): ¥0.0032 is 3200 and
// $0.08 is 80000. Amounts are never floats; they are parsed from and printed as decimal strings.
package money

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Scale is the number of micro-units in one currency unit.
const Scale = 1_000_000

// Amount is an exact amount of money in micro-units (1e-6 of a currency unit).
type Amount int64

// Parse reads a decimal string such as "0.0032", "25", "-1.5" with at most six fractional digits.
func Parse(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("money: empty amount")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("money: %q is not a decimal amount", s)
	}
	if hasDot && frac == "" {
		return 0, fmt.Errorf("money: %q is not a decimal amount", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("money: %q has more than 6 decimal places", s)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("money: %q is not a decimal amount", s)
		}
	}
	var w int64
	if whole != "" {
		var err error
		w, err = strconv.ParseInt(whole, 10, 64)
		if err != nil || w > (1<<63-1)/Scale-1 {
			return 0, fmt.Errorf("money: %q is out of range", s)
		}
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	a := w*Scale + f
	if neg {
		a = -a
	}
	return Amount(a), nil
}

// MustParse is Parse for constants in catalogs; it panics on a malformed amount.
func MustParse(s string) Amount {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// String prints the amount as a decimal string without trailing zeros: "0.0064", "25", "-1.5".
func (a Amount) String() string {
	var b [24]byte
	return string(a.append(b[:0]))
}

// append appends the String form of a to b.
func (a Amount) append(b []byte) []byte {
	u := uint64(a)
	if a < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/Scale, 10)
	if f := u % Scale; f != 0 {
		var d [7]byte // '.' and six digits, then trailing zeros trimmed
		d[0] = '.'
		for i := 6; i > 0; i-- {
			d[i] = byte('0' + f%10)
			f /= 10
		}
		n := 7
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return b
}

// AppendText appends the String form of a to b (encoding.TextAppender).
func (a Amount) AppendText(b []byte) ([]byte, error) { return a.append(b), nil }

// MarshalText prints the amount as a decimal string, so JSON carries "0.0064", never a float.
func (a Amount) MarshalText() ([]byte, error) { return a.append(nil), nil }

// UnmarshalText parses a decimal string.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}
