package admin

import (
	"errors"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// FuzzParseFields: any admin JSON body parses into fields or fails with an error naming the
// problem; it never panics and never accepts a negative limit or budget.
func FuzzParseFields(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","models":["x"],"expires_in":"720h","budget":"25.00","budget_period":"monthly","rpm":60,"map_nearest":true}`,
		`{"budget":null,"expires_at":null}`, `{"rpm":-1}`, `{"budget":"-3"}`, `{"budget":1e400}`, `{"expires_in":"-5h"}`, `[]`, `{`,
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
			if p != nil && *p < 0 {
				t.Fatalf("negative limit accepted from %s", body)
			}
		}
		if fl.Budget != nil && *fl.Budget < 0 {
			t.Fatalf("negative budget accepted from %s", body)
		}
	})
}
