//go:build race

package faulttest

// raceBuild: the tests run with the race detector, and the child gateway is built with it too.
const raceBuild = true
