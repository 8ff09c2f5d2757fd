//go:build race

package app_test

// raceBuild: the test binary runs with the race detector, whose instrumentation makes frames
// larger than they are in the gateway people run.
const raceBuild = true
