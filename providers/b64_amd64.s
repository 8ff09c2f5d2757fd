//go:build !purego

#include "textflag.h"

// BROADCAST fills each byte of the Y register with the constant's (its eight bytes alike).
#define BROADCAST(c, y) MOVQ c, DX; MOVQ DX, X0; VPBROADCASTQ X0, y

// func base64RunAVX2(s []byte) int
//
// The length of the longest prefix of s, in whole blocks of 32 bytes, whose bytes are all in the
// standard base64 alphabet. Per block, with x the bytes as signed int8 (bytes of 0x80 and above
// are negative and fail every test) and y = x | 0x20 (A-Z folded onto a-z):
// letters 0x60 < y < 0x7B, '/' and digits 0x2E < x < 0x3A, '+' x == 0x2B.
TEXT ·base64RunAVX2(SB), NOSPLIT, $0-32
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), CX
	XORQ AX, AX

	BROADCAST($0x2020202020202020, Y6)  // case bit
	BROADCAST($0x6060606060606060, Y7)  // 'a'-1
	BROADCAST($0x7b7b7b7b7b7b7b7b, Y8)  // 'z'+1
	BROADCAST($0x2e2e2e2e2e2e2e2e, Y9)  // '/'-1
	BROADCAST($0x3a3a3a3a3a3a3a3a, Y10) // '9'+1
	BROADCAST($0x2b2b2b2b2b2b2b2b, Y11) // '+'

loop:
	CMPQ CX, $32
	JB   done
	VMOVDQU  (SI)(AX*1), Y1
	VPOR     Y6, Y1, Y2  // y
	VPCMPGTB Y7, Y2, Y3  // y > 0x60
	VPCMPGTB Y2, Y8, Y4  // 0x7B > y
	VPAND    Y3, Y4, Y3  // a letter
	VPCMPGTB Y9, Y1, Y4  // x > 0x2E
	VPCMPGTB Y1, Y10, Y5 // 0x3A > x
	VPAND    Y4, Y5, Y4  // '/' or a digit
	VPCMPEQB Y11, Y1, Y5 // '+'
	VPOR     Y3, Y4, Y3
	VPOR     Y3, Y5, Y3
	VPMOVMSKB Y3, DX
	NOTL     DX
	TESTL    DX, DX
	JNZ      done
	ADDQ     $32, AX
	SUBQ     $32, CX
	JMP      loop

done:
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
