//go:build !unix

package main

// fileLimit is unknown here.
func fileLimit() uint64 { return 0 }
