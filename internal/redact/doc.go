// Package redact is the gateway's one redaction point: a Redactor knows every configured secret
// (the upstream API keys of all channels, the admin token) and scrubs them from text that leaves
// the process — log lines (through the zap core returned by Core) and client-facing error
// messages (through String).
//
// A secret is found in its raw form and in the forms it takes when it passes through a URL or a
// JSON string (percent-encoded with upper- or lower-case hex, '+' for space, JSON-escaped with or
// without HTML escaping), wherever those differ from the raw form. Every occurrence is replaced
// with Placeholder. Other transformations (base64, splitting, reversing) are not recognised:
// the redactor is the backstop, not a licence to put secrets into messages; adapters still keep
// upstream text out of client-facing errors in the first place.
//
// Scrubbing is cheap when no secret occurs, which is the common case: String returns its
// argument without allocating, and the zap core passes fields through untouched.
package redact
