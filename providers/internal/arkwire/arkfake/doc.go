// Package arkfake is the skeleton both strict fakes of providers/ark/fake and
// providers/modelverse/fake are built on: what the two upstreams do alike, while each fake keeps
// its vendor's models, rules, error envelopes, URL formats and answers.
//
// A Server holds the fake's configuration (Options, shared by both vendors' packages) and state,
// and offers the steps every API call goes through, in order: Record reads and records the call
// (LastRequest returns it); Check refuses, through the vendor's own wording, anything but a POST
// with "Authorization: Bearer <key>" and an application/json body of at most MaxRequestBytes
// that decodes with no unknown field; Wait applies the configured latency. Image URLs are the
// fake's own, under Base, signed with a per-fake HMAC key (Sign, Verify) and numbered (NextSeq);
// ServeImage answers GET and HEAD on them once the vendor has checked the signature and expiry
// on the fake's clock (Now, TTL). Grey, PNG and JPEG draw the deterministic images cheaply at
// any size, and ImageSeed gives the n-th image its seed.
package arkfake
