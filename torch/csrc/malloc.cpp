// The C library's allocator, tuned for training when the shim is loaded.
//
// glibc hands large blocks back to the kernel on every free: blocks over a
// threshold (dynamic, from 128 KiB) are mmap'd and unmapped, and the top of
// the heap is trimmed once 128 KiB are free there. LibTorch frees and
// allocates every activation and gradient each step, so the kernel zeroes
// fresh pages on every first touch: on the 2-core VM a third of a tiny-preset
// step was page faults. Keeping freed memory in the heap (mmap only above
// 32 MiB, the most glibc allows; trim only above 2 GiB; grow the heap 256 MiB
// at a time) cut a learning-test step by a third (docs/BENCHMARKS.md) and
// changes no bits: where a tensor lives does not change what is computed.
// The resident memory then stays at its peak instead of shrinking between
// steps.
#include <malloc.h>

#include <climits>

__attribute__((constructor)) static void vlp_tune_malloc() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  mallopt(M_TOP_PAD, 256 << 20);
}
