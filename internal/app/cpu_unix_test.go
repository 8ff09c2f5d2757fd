//go:build unix

package app_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used so far in user space and in the kernel, or
// zeros when it cannot be read.
func processCPU() (user, system time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
