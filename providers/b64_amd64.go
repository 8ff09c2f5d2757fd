//go:build !purego

package providers

import "golang.org/x/sys/cpu"

// base64RunAVX2 is the length of the longest prefix of s, in whole blocks of 32 bytes, made only
// of the standard base64 alphabet (b64_amd64.s).
//
//go:noescape
func base64RunAVX2(s []byte) int

var hasAVX2 = cpu.X86.HasAVX2

// base64RunBlocks is where base64Run's portable loops take over: the prefix of s, in whole
// blocks, that AVX2 found to be alphabet (32 bytes a step, about five times the portable
// loops' speed), or 0 without AVX2 and for texts under two blocks, where loading the
// constants costs more than the blocks save.
func base64RunBlocks(s []byte) int {
	if !hasAVX2 || len(s) < 64 {
		return 0
	}
	return base64RunAVX2(s)
}
