// GHASH with 512-bit VPCLMULQDQ for gmac (see gmac.go for the field and the
// representations).
//
// Representation. GCM numbers the bits of a block from the most significant
// bit of byte 0: bit 7-k of byte b is the coefficient of x^(8b+k). Loaded
// little-endian into a 128-bit lane, reversing the bits within every byte
// (one VGF2P8AFFINEQB with the bit-reversal matrix) gives the natural form N:
// bit i of the lane is the coefficient of x^i, the low 64-bit word holds
// x^0..x^63 and the high word x^64..x^127. In this form a carry-less product
// is the polynomial product, with no reflection and no shift, and no byte
// shuffle is needed (the affine step runs on a different port than
// VPCLMULQDQ, the bottleneck).
//
// Multiplication, per 128-bit lane, of a by a table entry h:
//   lo = a.lo·h.lo, hi = a.hi·h.hi, mid = a.lo·h.hi ^ a.hi·h.lo
//   c  = lo ^ mid·x^64 ^ hi·x^128    (degree <= 254)
//
// Reduction modulo g = x^128 + r, r = x^7+x^2+x+1 = 0x87 (so x^128 ≡ r):
//   write c = d0 + d1·x^64 + d2·x^128 + d3·x^192 (64-bit words; d3 = hi.hi,
//   d2 = hi.lo ^ mid.hi, d1 = lo.hi ^ mid.lo, d0 = lo.lo).
//   step 1: d3·x^192 ≡ (d3·r)·x^64; T = CLMUL(d3, r) has degree <= 69, so
//           T.lo goes into d1 and T.hi into d2.
//   step 2: d2·x^128 ≡ d2·r; U = CLMUL(d2 ^ T.hi, r) has degree <= 70, so
//           U goes into d1:d0 and the result is d1:d0 ^ U (< x^128).
//   Regrouped with W = mid ^ T:
//     result = lo ^ W·x^64 ^ CLMUL(hi.lo, r) ^ CLMUL(W.hi, r)   (mod x^128)
//   Everything is linear, so per lane only
//     T = CLMUL(hi.hi, r), W = mid ^ T, B = lo ^ CLMUL(hi.lo, r)
//   are formed; B and W of the four lanes are summed, and the rest,
//     result = B ^ (W << 64) ^ CLMUL(W.hi, r),
//   is done once on 128 bits (W << 64 drops W.hi, which the CLMUL covers).
//
// Aggregation. The state is folded in Horner's way, n blocks at a time,
//   y' = (y ^ X1)·H^n ^ X2·H^(n-1) ^ ... ^ Xn·H,
// with the n products summed unreduced and one reduction: n = 64 in the main
// loop, then 16, 4 and 1 for what is left. The table holds H^64..H^1 in
// natural form, so its last n entries serve any n.

#include "textflag.h"

// The GF(2) matrix for VGF2P8AFFINEQB that reverses the bits of each byte:
// byte j of the qword selects input bit j for output bit 7-j.
DATA gmacBitrev<>+0(SB)/8, $0x8040201008040201
GLOBL gmacBitrev<>(SB), RODATA|NOPTR, $8

// r = x^7+x^2+x+1, broadcast to every qword.
DATA gmacPoly<>+0(SB)/8, $0x87
GLOBL gmacPoly<>(SB), RODATA|NOPTR, $8

// Table offsets (bytes) of H^16, H^4 and H^1 in the 64-entry table.
#define TAB16 768
#define TAB4 960
#define TAB1 1008

// LOAD2(off): Z1, Z2 = the 8 blocks at off(DX), in natural form.
#define LOAD2(off) \
	VMOVDQU64      off(DX), Z1      \
	VMOVDQU64      off+64(DX), Z2   \
	VGF2P8AFFINEQB $0, Z31, Z1, Z1  \
	VGF2P8AFFINEQB $0, Z31, Z2, Z2

// MULACC2(off): multiplies Z1 by the 4 table entries at off(SI) and Z2 by
// the next 4, and XORs the products into Z5 (lo), Z6 (hi) and Z7 (mid).
// The table vectors are loaded into Z24, Z25 first: VPCLMULQDQ with a memory
// operand is markedly slower here. Clobbers Z16-Z25.
#define MULACC2(off) \
	VMOVDQU64  off(SI), Z24        \
	VMOVDQU64  off+64(SI), Z25     \
	VPCLMULQDQ $0x00, Z24, Z1, Z16 \
	VPCLMULQDQ $0x00, Z25, Z2, Z17 \
	VPCLMULQDQ $0x11, Z24, Z1, Z18 \
	VPCLMULQDQ $0x11, Z25, Z2, Z19 \
	VPCLMULQDQ $0x01, Z24, Z1, Z20 \
	VPCLMULQDQ $0x10, Z24, Z1, Z21 \
	VPCLMULQDQ $0x01, Z25, Z2, Z22 \
	VPCLMULQDQ $0x10, Z25, Z2, Z23 \
	VPTERNLOGQ $0x96, Z17, Z16, Z5 \
	VPTERNLOGQ $0x96, Z19, Z18, Z6 \
	VPTERNLOGQ $0x96, Z21, Z20, Z7 \
	VPTERNLOGQ $0x96, Z23, Z22, Z7

// MULACC1(off): Z1 times the 4 table entries at off(SI), XORed into Z5 (lo),
// Z6 (hi) and Z7 (mid). Clobbers Z16-Z19, Z24.
#define MULACC1(off) \
	VMOVDQU64  off(SI), Z24        \
	VPCLMULQDQ $0x00, Z24, Z1, Z16 \
	VPCLMULQDQ $0x11, Z24, Z1, Z17 \
	VPCLMULQDQ $0x01, Z24, Z1, Z18 \
	VPCLMULQDQ $0x10, Z24, Z1, Z19 \
	VPXORQ     Z16, Z5, Z5         \
	VPXORQ     Z17, Z6, Z6         \
	VPTERNLOGQ $0x96, Z19, Z18, Z7

// ZEROACC: clears the lo, hi and mid accumulators (VEX zeroing clears all
// 512 bits).
#define ZEROACC \
	VPXOR X5, X5, X5 \
	VPXOR X6, X6, X6 \
	VPXOR X7, X7, X7

// PREFOLD: per lane, from Z5 (lo), Z6 (hi), Z7 (mid) forms B (in Z5) and
// W (in Z7). Z30 = r in every qword, so the immediate only picks hi's word.
// Clobbers Z8, Z9.
#define PREFOLD \
	VPCLMULQDQ $0x11, Z30, Z6, Z8 \ // T = hi.hi·r
	VPCLMULQDQ $0x00, Z30, Z6, Z9 \ // hi.lo·r
	VPXORQ     Z8, Z7, Z7         \ // W = mid ^ T
	VPXORQ     Z9, Z5, Z5         // B = lo ^ hi.lo·r

// LANESUM: sums the four lanes of Z5 and of Z7 into X5 and X7.
// Clobbers Z8, Z9.
#define LANESUM \
	VEXTRACTI64X4 $1, Z5, Y8 \
	VEXTRACTI64X4 $1, Z7, Y9 \
	VPXOR         Y8, Y5, Y5 \
	VPXOR         Y9, Y7, Y7 \
	VEXTRACTI128  $1, Y5, X8 \
	VEXTRACTI128  $1, Y7, X9 \
	VPXOR         X8, X5, X5 \
	VPXOR         X9, X7, X7

// FINISH: X0 = B ^ (W << 64) ^ W.hi·r from X5 = B, X7 = W (the VEX writes
// leave Z0's upper lanes zero). Clobbers X7, X8.
#define FINISH \
	VPCLMULQDQ $0x11, X30, X7, X8 \
	VPSLLDQ    $8, X7, X7         \
	VPXOR      X8, X7, X7         \
	VPXOR      X7, X5, X0

// func ghashBlocks(y *[16]byte, htab *[64][2]uint64, data *byte, nblocks int)
//
// Registers:
//   DI  y (GHASH state, a GCM block; read at entry, written at exit)
//   SI  htab: H^64 .. H^1 in natural form, 16 bytes each, low word first
//   DX  data (advanced as blocks are consumed)
//   CX  blocks left
//   X0  the state in natural form; Z0's upper three lanes are always zero,
//       so XORing Z0 into a 4-block vector adds the state to its first block
//   Z1, Z2  data vectors of 4 blocks each (natural form)
//   Z5, Z6, Z7  lo, hi, mid product accumulators (then B in Z5, W in Z7)
//   Z8, Z9, Z16-Z23  temporaries; Z24, Z25  table vectors
//   Z30  r in every qword; Z31  the bit-reversal matrix in every qword
TEXT ·ghashBlocks(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ htab+8(FP), SI
	MOVQ data+16(FP), DX
	MOVQ nblocks+24(FP), CX

	VPBROADCASTQ gmacBitrev<>(SB), Z31
	VPBROADCASTQ gmacPoly<>(SB), Z30

	VMOVDQU        (DI), X0
	VGF2P8AFFINEQB $0, X31, X0, X0

loop64:
	CMPQ CX, $64
	JB   loop16

	ZEROACC

	// Blocks 9..64 do not depend on the state: multiply them first.
	LOAD2(128)
	MULACC2(128)
	LOAD2(256)
	MULACC2(256)
	LOAD2(384)
	MULACC2(384)
	LOAD2(512)
	MULACC2(512)
	LOAD2(640)
	MULACC2(640)
	LOAD2(768)
	MULACC2(768)
	LOAD2(896)
	MULACC2(896)
	LOAD2(0)
	VPXORQ Z0, Z1, Z1
	MULACC2(0)

	PREFOLD
	LANESUM
	FINISH

	ADDQ $1024, DX
	SUBQ $64, CX
	JMP  loop64

loop16:
	CMPQ CX, $16
	JB   loop4

	ZEROACC
	LOAD2(128)
	MULACC2(TAB16+128)
	LOAD2(0)
	VPXORQ Z0, Z1, Z1
	MULACC2(TAB16)

	PREFOLD
	LANESUM
	FINISH

	ADDQ $256, DX
	SUBQ $16, CX
	JMP  loop16

loop4:
	CMPQ CX, $4
	JB   loop1

	ZEROACC
	VMOVDQU64      (DX), Z1
	VGF2P8AFFINEQB $0, Z31, Z1, Z1
	VPXORQ         Z0, Z1, Z1
	MULACC1(TAB4)

	PREFOLD
	LANESUM
	FINISH

	ADDQ $64, DX
	SUBQ $4, CX
	JMP  loop4

loop1:
	// One block at a time, all in 128-bit registers: y' = (y ^ X)·H.
	TESTQ CX, CX
	JZ    done

	VMOVDQU        (DX), X1
	VGF2P8AFFINEQB $0, X31, X1, X1
	VPXOR          X0, X1, X1
	VPCLMULQDQ     $0x00, TAB1(SI), X1, X5
	VPCLMULQDQ     $0x11, TAB1(SI), X1, X6
	VPCLMULQDQ     $0x01, TAB1(SI), X1, X7
	VPCLMULQDQ     $0x10, TAB1(SI), X1, X8
	VPXOR          X8, X7, X7

	// PREFOLD on 128 bits.
	VPCLMULQDQ $0x11, X30, X6, X8
	VPCLMULQDQ $0x00, X30, X6, X9
	VPXOR      X8, X7, X7
	VPXOR      X9, X5, X5
	FINISH

	ADDQ $16, DX
	DECQ CX
	JMP  loop1

done:
	VGF2P8AFFINEQB $0, X31, X0, X0
	VMOVDQU        X0, (DI)
	VZEROUPPER
	RET
