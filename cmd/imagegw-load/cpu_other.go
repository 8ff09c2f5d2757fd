//go:build !unix

package main

import "time"

// processCPU is unknown here: the CPU per request is not reported.
func processCPU() time.Duration { return 0 }
