// Package benchcpu measures the process's CPU time for benchmarks, where wall time per operation
// is mostly waiting (an fsync, a peer) rather than work.
package benchcpu

import "time"

// Since returns the CPU time the process has used since start was taken (Now), in user space
// and in all (user space and the kernel's syscalls); zeros where the OS does not tell.
func Since(start Sample) (user, total time.Duration) {
	now := Now()
	if start.user == 0 && start.system == 0 {
		return 0, 0
	}
	return now.user - start.user, now.user + now.system - start.user - start.system
}

// Sample is the process's CPU time at one moment.
type Sample struct{ user, system time.Duration }
