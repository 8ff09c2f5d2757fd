//go:build !amd64 || purego

package providers

const hasAVX2 = false

// base64RunBlocks is 0: base64Run's portable loops read all of s.
func base64RunBlocks([]byte) int { return 0 }
