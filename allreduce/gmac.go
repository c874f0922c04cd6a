package allreduce

// This file holds a GMAC (AES-GCM with additional data only) tag computer
// whose output is bit-for-bit the tag of crypto/cipher's GCM Seal with a
// 12-byte nonce and an empty plaintext:
//
//	tag = GHASH_H(A zero-padded to 16 bytes || len64(A)*8 || 0^64) XOR E_K(N || 0x00000001)
//	H   = E_K(0^128)
//
// On amd64 CPUs with AVX-512, VPCLMULQDQ and GFNI the GHASH runs in assembly
// (gmac_amd64.s); everywhere else tag defers to the standard library's AEAD,
// so the result is the same on every machine.
//
// Representations. gfElem (the Go reference arithmetic used to build the
// table) holds a block as the 128-bit big-endian integer of its bytes, so
// the coefficient of x^i is bit 127-i (GCM's bit-reflected convention). The
// table and the assembly use the natural form instead: bit i is the
// coefficient of x^i, low 64-bit word first; it is the full bit reversal of
// the gfElem value, and what a little-endian load of the block becomes once
// the bits of every byte are reversed (see gmac_amd64.s).

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"math/bits"
)

// gmacTableSize is the number of powers of H the bulk GHASH multiplies by in
// one iteration of its main loop (64 blocks: 16 zmm vectors of 4 blocks,
// summed unreduced, one reduction).
const gmacTableSize = 64

// gmac computes AES-GMAC tags. A gmac is not safe for concurrent use: it
// keeps scratch buffers of its own, so use it from one goroutine at a time
// (give each goroutine its own gmac, or guard it with a lock).
type gmac struct {
	block cipher.Block // the AES block cipher (E_K)
	aead  cipher.AEAD  // the standard library's GCM, used by the fallback path

	// htab[j] is H^(64-j) in natural form, as {low, high} 64-bit words:
	// consecutive 128-bit lanes H^64..H^1, so that the last n entries are
	// the multipliers for a run of n blocks.
	htab [gmacTableSize][2]uint64

	// Scratch for E_K(J0) and the tag: Encrypt is called through an
	// interface, so stack arrays passed to it would escape to the heap.
	j0     [16]byte
	tagBuf [16]byte
}

// newGMAC returns a gmac for block, which must be an AES block cipher
// (crypto/aes, 128-, 192- or 256-bit key).
func newGMAC(block cipher.Block) (*gmac, error) {
	if block.BlockSize() != 16 {
		return nil, errors.New("allreduce: gmac needs a 128-bit block cipher")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	g := &gmac{block: block, aead: aead}

	var hb [16]byte
	block.Encrypt(hb[:], hb[:])
	h := gfElem{hi: binary.BigEndian.Uint64(hb[:8]), lo: binary.BigEndian.Uint64(hb[8:])}
	p := h // H^1
	for k := 1; k <= gmacTableSize; k++ {
		g.htab[gmacTableSize-k] = p.natural()
		p = p.mul(h)
	}
	return g, nil
}

// tag appends to dst the 16-byte GMAC tag of data under nonce and returns the
// extended slice; it equals cipher.NewGCM(block).Seal(dst, nonce, nil, data).
// A nonce of a length other than 12 goes to the standard library (which
// panics, as GCM's Seal does). tag allocates nothing when dst has room for
// the tag.
func (g *gmac) tag(dst, nonce, data []byte) []byte {
	if !useGMACAVX512 || len(nonce) != 12 {
		return g.aead.Seal(dst, nonce, nil, data)
	}

	var y [16]byte // GHASH state, a GCM block (noescape: stays on the stack)
	full := len(data) &^ 15
	if full > 0 {
		ghashBlocks(&y, &g.htab, &data[0], full/16)
	}
	// The partial block (zero-padded) and the length block.
	var last [32]byte
	n := 0
	if copy(last[:16], data[full:]) > 0 {
		n = 16
	}
	binary.BigEndian.PutUint64(last[n:], uint64(len(data))*8)
	ghashBlocks(&y, &g.htab, &last[0], n/16+1)

	copy(g.j0[:12], nonce)
	g.j0[12], g.j0[13], g.j0[14], g.j0[15] = 0, 0, 0, 1
	g.block.Encrypt(g.tagBuf[:], g.j0[:])
	for i := range g.tagBuf {
		g.tagBuf[i] ^= y[i]
	}
	return append(dst, g.tagBuf[:]...)
}

// gfElem is an element of GF(2^128) as GCM writes it: hi and lo are the
// big-endian halves of the block (the coefficient of x^i is bit 127-i of
// hi:lo). Only newGMAC and the tests use it: it is slow (bit by bit, with no
// branch on secret bits), which is fine for a one-off precomputation.
type gfElem struct{ hi, lo uint64 }

// mul returns a*b mod x^128+x^7+x^2+x+1 (the shift-and-add method of the GCM
// specification: walk a's coefficients from x^0 up, multiplying b by x).
func (a gfElem) mul(b gfElem) gfElem {
	var z gfElem
	v := b
	for i := 0; i < 128; i++ {
		// coefficient of x^i in a
		var bit uint64
		if i < 64 {
			bit = a.hi >> (63 - i) & 1
		} else {
			bit = a.lo >> (127 - i) & 1
		}
		mask := -bit
		z.hi ^= v.hi & mask
		z.lo ^= v.lo & mask
		// v *= x: every coefficient moves one bit towards the low end of hi:lo;
		// x^128 (which falls off bit 0) is x^7+x^2+x+1 = 0xE1 << 120.
		carry := -(v.lo & 1)
		v.lo = v.lo>>1 | v.hi<<63
		v.hi = v.hi>>1 ^ 0xE100000000000000&carry
	}
	return z
}

// natural returns a in natural form, {low word, high word}: bit i is the
// coefficient of x^i.
func (a gfElem) natural() [2]uint64 {
	return [2]uint64{bits.Reverse64(a.hi), bits.Reverse64(a.lo)}
}
