//go:build !amd64

package allreduce

// This file wires the GMAC fallback on architectures without the assembly
// GHASH: tag always uses the standard library's AES-GCM.

// useGMACAVX512 is always false here; it is a variable so that tests can set
// it like on amd64.
var useGMACAVX512 = false

// gmacAVX512Supported reports whether the assembly GHASH could run: never.
func gmacAVX512Supported() bool { return false }

// ghashBlocks is never called when useGMACAVX512 is false.
func ghashBlocks(y *[16]byte, htab *[gmacTableSize][2]uint64, data *byte, nblocks int) {
	panic("allreduce: no assembly GHASH on this architecture")
}
