// Package storetest is the conformance suite every store.Store implementation passes, and the
// helpers other packages' tests use to get a store: Run checks an implementation, PostgresURL
// gives a test its own empty schema on the test Postgres server.
//
// It is an ordinary (non-test) package so any package's tests can import it; it imports
// "testing" and must not be imported by production code.
package storetest
