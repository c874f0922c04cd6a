package allreduce

// This file wires the AVX-512 GHASH (gmac_amd64.s) into gmac: CPU feature
// detection and the assembly declaration.

import "golang.org/x/sys/cpu"

// useGMACAVX512 is whether gmac.tag runs the assembly GHASH; tests switch it
// off to exercise the standard-library fallback.
var useGMACAVX512 = gmacAVX512Supported()

// gmacAVX512Supported reports whether the CPU and the OS support what
// gmac_amd64.s uses: AVX-512F/BW/VL (x/sys/cpu clears these unless the OS
// saves the opmask and ZMM state), 512-bit VPCLMULQDQ and GFNI (the
// EVEX-encoded VGF2P8AFFINEQB).
func gmacAVX512Supported() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
		cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasAVX512GFNI && cpu.X86.HasPCLMULQDQ
}

// ghashBlocks folds nblocks (> 0) 16-byte blocks at data into the GHASH state
// *y (a GCM block): y = (...((y ^ X1)·H ^ X2)·H ... ^ Xn)·H, with htab as
// built by newGMAC.
//
//go:noescape
func ghashBlocks(y *[16]byte, htab *[gmacTableSize][2]uint64, data *byte, nblocks int)
