#include "textflag.h"

// func hasAVX2() bool
TEXT ·hasAVX2(SB), NOSPLIT, $0-1
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, R8
	ANDL $0x18000000, R8 // OSXSAVE and AVX
	CMPL R8, $0x18000000
	JNE  no
	XORL CX, CX
	XGETBV               // XCR0: the OS saves XMM and YMM state
	ANDL $6, AX
	CMPL AX, $6
	JNE  no
	MOVL $7, AX
	XORL CX, CX
	CPUID
	ANDL $0x20, BX       // AVX2
	JZ   no
	MOVB $1, ret+0(FP)
	RET
no:
	MOVB $0, ret+0(FP)
	RET

// func addF32AVX2(dst, src *float32, n int)
TEXT ·addF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VADDPS  (DI), Y0, Y0
	VADDPS  32(DI), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func scaleF32AVX2(v *float32, f float32, n int)
TEXT ·scaleF32AVX2(SB), NOSPLIT, $0-24
	MOVQ         v+0(FP), DI
	VBROADCASTSS f+8(FP), Y2
	MOVQ         n+16(FP), CX
loop:
	VMULPS  (DI), Y2, Y0
	VMULPS  32(DI), Y2, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, DI
	SUBQ    $16, CX
	JNZ     loop
	VZEROUPPER
	RET

// func addBF16AVX2(dst *float32, src *uint16, n int)
TEXT ·addBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VADDPS    (DI), Y0, Y0
	VADDPS    32(DI), Y1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET

// func decodeBF16AVX2(dst *float32, src *uint16, n int)
TEXT ·decodeBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
loop:
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET

DATA bf16bias<>+0(SB)/4, $0x00007fff
GLOBL bf16bias<>(SB), RODATA|NOPTR, $4
DATA bf16one<>+0(SB)/4, $0x00000001
GLOBL bf16one<>(SB), RODATA|NOPTR, $4
DATA bf16abs<>+0(SB)/4, $0x7fffffff
GLOBL bf16abs<>(SB), RODATA|NOPTR, $4
DATA bf16inf<>+0(SB)/4, $0x7f800000
GLOBL bf16inf<>(SB), RODATA|NOPTR, $4
DATA bf16quiet<>+0(SB)/4, $0x00000040
GLOBL bf16quiet<>(SB), RODATA|NOPTR, $4

// ROUND rounds the 8 floats in X to bfloat16 in the low half of each dword
// (round to nearest even; a NaN keeps its top bits and is quieted), using
// T1-T3 as scratch. Y10-Y14 hold the constants.
#define ROUND(X, T1, T2, T3) \
	VPSRLD    $16, X, T1     \ // hi = b >> 16
	VPAND     Y11, T1, T2    \ // lsb of hi
	VPADDD    Y10, X, T3     \
	VPADDD    T2, T3, T3     \
	VPSRLD    $16, T3, T3    \ // (b + 0x7fff + lsb) >> 16
	VPAND     Y12, X, X      \ // |b|
	VPCMPGTD  Y13, X, X      \ // NaN: |b| > Inf
	VPOR      Y14, T1, T1    \ // hi | quiet bit
	VPBLENDVB X, T1, T3, X     // NaN ? hi|quiet : rounded

// func encodeBF16AVX2(dst *uint16, src *float32, n int)
TEXT ·encodeBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTD bf16bias<>(SB), Y10
	VPBROADCASTD bf16one<>(SB), Y11
	VPBROADCASTD bf16abs<>(SB), Y12
	VPBROADCASTD bf16inf<>(SB), Y13
	VPBROADCASTD bf16quiet<>(SB), Y14
loop:
	VMOVDQU   (SI), Y0
	VMOVDQU   32(SI), Y1
	ROUND(Y0, Y2, Y3, Y4)
	ROUND(Y1, Y5, Y6, Y7)
	VPACKUSDW Y1, Y0, Y0     // per 128-bit lane: 4 of Y0, 4 of Y1
	VPERMQ    $0xD8, Y0, Y0  // back in order
	VMOVDQU   Y0, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET

// func accumBF16AVX2(dst *uint16, src *float32, n int)
TEXT ·accumBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTD bf16bias<>(SB), Y10
	VPBROADCASTD bf16one<>(SB), Y11
	VPBROADCASTD bf16abs<>(SB), Y12
	VPBROADCASTD bf16inf<>(SB), Y13
	VPBROADCASTD bf16quiet<>(SB), Y14
loop:
	VPMOVZXWD (DI), Y0
	VPMOVZXWD 16(DI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VADDPS    (SI), Y0, Y0
	VADDPS    32(SI), Y1, Y1
	ROUND(Y0, Y2, Y3, Y4)
	ROUND(Y1, Y5, Y6, Y7)
	VPACKUSDW Y1, Y0, Y0
	VPERMQ    $0xD8, Y0, Y0
	VMOVDQU   Y0, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JNZ       loop
	VZEROUPPER
	RET
