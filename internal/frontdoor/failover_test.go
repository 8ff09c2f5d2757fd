package frontdoor

import (
	"context"
	"fmt"
	"testing"

	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/providers"
)

type plainProvider struct{}

func (plainProvider) Name() string              { return "p" }
func (plainProvider) Models() []providers.Model { return nil }
func (plainProvider) Generate(context.Context, *providers.Request) (*providers.Result, error) {
	return nil, nil
}

// idempotentProvider declares every call idempotent.
type idempotentProvider struct{ plainProvider }

func (idempotentProvider) Idempotent(*providers.Request) bool { return true }

// TestFailoverOnlyWhereNothingWasMade: a call moves to the next channel only when no image can
// have been made upstream; a failure after the request was sent does not (unless the adapter
// declares the call idempotent) and makes the call indeterminate.
func TestFailoverOnlyWhereNothingWasMade(t *testing.T) {
	plain := catalog.Route{Channel: "a", Provider: plainProvider{}}
	idem := catalog.Route{Channel: "a", Provider: idempotentProvider{}}
	req := &providers.Request{}
	for _, c := range []struct {
		name     string
		route    catalog.Route
		err      error
		ok       bool
		reason   string
		billable bool
	}{
		{"refused connection", plain, &providers.Error{Kind: providers.KindUpstreamUnavailable}, true, "upstream_unavailable", false},
		{"5xx answer", plain, &providers.Error{Kind: providers.KindUpstreamUnavailable, Status: 503}, true, "upstream_unavailable", false},
		{"429 answer", plain, &providers.Error{Kind: providers.KindUpstreamRateLimited, Status: 429}, true, "upstream_rate_limited", false},
		{"credential refused", plain, &providers.Error{Kind: providers.KindUpstreamAuth, Status: 401}, true, "upstream_auth", false},
		{"model missing upstream", plain, &providers.Error{Kind: providers.KindModelNotFound, Status: 404}, true, "model_not_found", false},
		{"redirect", plain, &providers.Error{Kind: providers.KindUpstreamBadResponse, Err: fmt.Errorf("x: %w", providers.ErrRedirect)}, true, "upstream_bad_response", false},
		{"reset after send", plain, &providers.Error{Kind: providers.KindUpstreamUnavailable, AfterSend: true}, false, "after_send", true},
		{"reset after send, idempotent", idem, &providers.Error{Kind: providers.KindUpstreamUnavailable, AfterSend: true}, true, "upstream_unavailable", true},
		{"timeout", plain, &providers.Error{Kind: providers.KindUpstreamTimeout, AfterSend: true}, false, "after_send", true},
		{"timeout answer (504)", plain, &providers.Error{Kind: providers.KindUpstreamTimeout, Status: 504}, false, "", true},
		{"malformed answer", plain, &providers.Error{Kind: providers.KindUpstreamBadResponse, Status: 200}, false, "", false},
		{"content policy", plain, &providers.Error{Kind: providers.KindContentPolicy, Status: 400}, false, "", false},
		{"canceled", plain, context.Canceled, false, "", true},
	} {
		ok, reason := failover(&c.route, req, c.err)
		if ok != c.ok || reason != c.reason || mayHaveBilled(c.err) != c.billable {
			t.Errorf("%s: failover %v %q, billable %v; want %v %q, %v", c.name, ok, reason, mayHaveBilled(c.err), c.ok, c.reason, c.billable)
		}
	}
}
