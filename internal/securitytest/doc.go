// Package securitytest is the gateway's security suite: a whole gateway (internal/gatewaytest)
// in front of a hostile OpenAI-compatible upstream that echoes our API key in every field of its
// errors, redirects, bombs and trickles, driven by hostile clients (forged request ids, huge and
// endless bodies, connection floods, malformed admin input). Each test asserts the safe outcome;
// every response, log line and /metrics scrape of the suite is grepped for the secrets.
//
// The package has only tests; `go test ./internal/securitytest/` runs it, and CI runs it with
// everything else.
package securitytest
