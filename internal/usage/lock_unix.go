//go:build unix

package usage

import (
	"os"
	"syscall"
)

// lockExclusive takes an exclusive, non-blocking advisory lock on f.
func lockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// unlock releases the lock taken by lockExclusive.
func unlock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
