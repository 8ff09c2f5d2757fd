// Package providertest holds what every adapter's tests share: fault scripting for fake
// upstreams (Script, Fault) and the conformance suite every adapter runs (Run).
//
// A fake wraps its handler with a Script; a test pushes faults (a status and body, a delay, a
// truncated or malformed body, an HTML error page, a connection reset, a slow drip) that the next
// requests suffer, in order, before the fake answers normally again.
package providertest
