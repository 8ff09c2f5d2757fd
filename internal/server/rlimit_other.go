//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package server

// fallbackMaxConns is the connection cap on systems without RLIMIT_NOFILE.
const fallbackMaxConns = 4096

// openFileLimit is not known here: DefaultMaxConns uses fallbackMaxConns.
func openFileLimit() (uint64, bool) { return 0, false }

// fdExhausted cannot tell descriptor exhaustion apart here.
func fdExhausted(error) bool { return false }
