package data

import "sync"

// Pixel buffers are large (a 640×480 RGB image is 0.9 MB, a resized
// normalised one 1.7–4.2 MB) and short-lived; recycling them keeps the
// garbage collector and page faults out of the decode loop.
var (
	bytePool  sync.Pool // *[]uint8
	floatPool sync.Pool // *[]float32
	boolPool  sync.Pool // *[]bool
)

// getBytes returns a buffer of n bytes with unspecified contents.
func getBytes(n int) []uint8 {
	if p, ok := bytePool.Get().(*[]uint8); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]uint8, n)
}

func putBytes(b []uint8) {
	if cap(b) > 0 {
		bytePool.Put(&b)
	}
}

// getFloats returns a buffer of n float32 with unspecified contents.
func getFloats(n int) []float32 {
	if p, ok := floatPool.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]float32, n)
}

func putFloats(b []float32) {
	if cap(b) > 0 {
		floatPool.Put(&b)
	}
}

// getBools returns a buffer of n bools with unspecified contents.
func getBools(n int) []bool {
	if p, ok := boolPool.Get().(*[]bool); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]bool, n)
}

func putBools(b []bool) {
	if cap(b) > 0 {
		boolPool.Put(&b)
	}
}

// Release hands the batch's image and pixel-mask buffers (the bulk of its
// memory: 57 MB for 32 rows at 384², 170 MB at the base size) back to the
// pipeline for reuse, and clears b.Images and b.PixelMask. Call it once the
// batch's pixels have been copied elsewhere (into tensors); never touch the
// two slices afterwards. Calling it is optional: an unreleased batch is
// garbage collected as usual, but fresh memory costs page faults that make
// the copy into a new batch about as expensive as the resize itself.
func (b *Batch) Release() {
	putFloats(b.Images)
	putBools(b.PixelMask)
	b.Images, b.PixelMask = nil, nil
}
