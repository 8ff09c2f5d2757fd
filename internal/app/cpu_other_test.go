//go:build !unix

package app_test

import "time"

// processCPU is not measured here.
func processCPU() (user, system time.Duration) { return 0, 0 }
