package admin

import (
	"errors"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// FuzzParseFields: any admin JSON body parses into fields or fails with an error naming the
// problem; it never panics, never accepts a limit or budget out of range, and never a name or
// model name that is not printable text.
func FuzzParseFields(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","models":["x"],"expires_in":"720h","budget":"25.00","budget_period":"monthly","rpm":60,"map_nearest":true}`,
		`{"budget":null,"expires_at":null}`, `{"rpm":-1}`, `{"budget":"-3"}`, `{"budget":1e400}`, `{"expires_in":"-5h"}`, `[]`, `{`,
		`{"rpm":2147483648}`, `{"name":"a\u0000"}`, `{"models":["\u001b"]}`, `{"budget":"1000000000.5"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fl, err := ParseFields([]byte(body), time.Unix(1_800_000_000, 0))
		if err != nil {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Message == "" {
				t.Fatalf("error is not a client-safe *providers.Error: %v", err)
			}
			return
		}
		for _, p := range []*int{fl.RPM, fl.IPM, fl.MPPM, fl.Concurrency} {
			if p != nil && (*p < 0 || *p > MaxLimit) {
				t.Fatalf("limit %d accepted from %s", *p, body)
			}
		}
		if fl.Budget != nil && (*fl.Budget < 0 || *fl.Budget > MaxBudget) {
			t.Fatalf("budget %v accepted from %s", *fl.Budget, body)
		}
		if fl.Name != nil && CheckText("name", *fl.Name, MaxNameLen) != nil {
			t.Fatalf("name %q accepted from %s", *fl.Name, body)
		}
		if fl.Models != nil {
			for _, m := range *fl.Models {
				if m == "" || CheckText("models", m, MaxModelLen) != nil {
					t.Fatalf("model %q accepted from %s", m, body)
				}
			}
		}
	})
}
