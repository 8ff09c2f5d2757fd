//go:build !unix

package usage

import "os"

// lockExclusive does nothing where flock is not available: each gateway process must be given
// its own outbox directory.
func lockExclusive(*os.File) error { return nil }

// unlock does nothing.
func unlock(*os.File) error { return nil }
