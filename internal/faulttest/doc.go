// Package faulttest is the gateway's fault suite (issue 10): it puts a TCP fault proxy
// (internal/faultproxy) between the gateway and the real Postgres and Redis, kills gateway
// processes with SIGKILL and SIGTERM, overloads them, and checks what the money path
// promises: no request waits longer than the store deadline plus a margin, unbudgeted keys
// are served through a store outage, concurrency leases free themselves within their TTL,
// and after any fault the ledger equals the cost headers clients saw, with nothing lost or
// charged twice; a drain overrun loses nothing and a loss makes the exit code non-zero.
//
// The package has only tests. Postgres and Redis are the servers the rest of the test
// suite uses (127.0.0.1:5432 database test, 127.0.0.1:6379, or IMAGEGW_TEST_POSTGRES_URL and
// IMAGEGW_TEST_REDIS_URL); with CI=true a test that cannot reach them fails, elsewhere it
// skips with a message saying how to start them. Cases that need SIGKILL build the imagegw
// binary once per test run (with -race when the tests run with it, so the build reuses the
// test's compiled packages) and run it as a child process.
//
// -short shortens the 30-second store outage to a few seconds.
package faulttest
