// Package providers defines what every image provider adapter speaks: the canonical request and
// result, the small Provider interface with optional interfaces for operations only some
// providers have, the registry of adapter factories, each model's capabilities and price, and
// the shared error kinds.
//
// An adapter translates a canonical Request into its upstream's wire format and the answer back.
// It owns no HTTP routing, no auth and no billing. The front door validates a request against the
// model's capabilities before an adapter sees it, so an adapter may trust sizes, counts and
// parameters; it maps them to its wire format and nothing more.
//
// Optional operations are discovered by type assertion, the way database/sql/driver does it:
//
//	if e, ok := p.(providers.Editor); ok { res, err = e.Edit(ctx, req) }
//
// Do dispatches a request to the right method and answers KindUnsupported when the provider lacks it.
//
// Upstreams are not trusted (hostile.go). An adapter writes every client-facing Message itself;
// an upstream's param and code reach Error.Param and Error.Code only through the adapter's fixed
// list of known names; an upstream's free text goes only into Error.Err, through UpstreamText;
// request ids through RequestID; and every error an adapter returns passes ScrubError with the
// channel's key. The clients Config.Check hands out never follow a redirect (ErrRedirect).
package providers
