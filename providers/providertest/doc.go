// Package providertest holds what every adapter's tests share: fault scripting for fake
// upstreams (Script, Fault) and the conformance suite every adapter runs (Run).
//
// A fake wraps its handler with a Script; a test pushes faults (a status and body, a delay, a
// truncated or malformed body, an HTML error page, a connection reset, a slow drip) that the next
// requests suffer, in order, before the fake answers normally again.
//
// The suite also plays a hostile upstream: EchoFaults puts the adapter's own key in every field of
// every error shape, and redirects point elsewhere; the adapter's errors (and, with Harness.Logs,
// its log lines) must hold no trace of the key, and the redirect's target must never be called.
package providertest
