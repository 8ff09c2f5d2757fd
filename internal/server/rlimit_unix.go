//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package server

import (
	"errors"
	"syscall"
)

// fallbackMaxConns is the connection cap when the open-file limit cannot be read.
const fallbackMaxConns = 4096

// openFileLimit returns the soft RLIMIT_NOFILE.
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 0, false
	}
	return uint64(rl.Cur), true //nolint:unconvert // int64 on some BSDs
}

// fdExhausted reports whether an accept failed because the process (EMFILE) or the system
// (ENFILE) is out of file descriptors.
func fdExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
