//go:build unix

package benchcpu

import (
	"syscall"
	"time"
)

// Now samples the process's CPU time so far, or zeros when it cannot be read.
func Now() Sample {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return Sample{}
	}
	return Sample{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}
