//go:build !race

package faulttest

// raceBuild: the tests run without the race detector, and so is the child gateway built.
const raceBuild = false
