package allreduce

import (
	"math"
	"unsafe"
)

// The wire is little-endian and payloads are 8-byte aligned (header and
// padded metadata are multiples of 8), so on the little-endian hosts this
// package supports (amd64, arm64) a payload is viewed in place as
// []float32 or []uint16: no decode pass, no copy.

func f32Bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

func bytesF32(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func u16Bytes(x []uint16) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 2*len(x))
}

func bytesU16(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

// The kernels below run an AVX2 body over the largest multiple of 16
// elements where the CPU has it (kernels_amd64.s) and the unrolled Go loops
// (the *Go functions) over the rest and everywhere else. Both round the same
// way, bit for bit.

// addF32 sets dst[i] = src[i] + dst[i]. Float32 addition is commutative bit
// for bit, so the operand order within one add does not matter — only the
// order of the chain of adds does, and the ring fixes that.
func addF32(dst, src []float32) {
	src = src[:len(dst)]
	if k := simdLen(len(dst)); k > 0 {
		addF32AVX2(&dst[0], &src[0], k)
		dst, src = dst[k:], src[k:]
	}
	addF32Go(dst, src)
}

// addBF16 sets dst[i] = float32(src[i]) + dst[i].
func addBF16(dst []float32, src []uint16) {
	src = src[:len(dst)]
	if k := simdLen(len(dst)); k > 0 {
		addBF16AVX2(&dst[0], &src[0], k)
		dst, src = dst[k:], src[k:]
	}
	addBF16Go(dst, src)
}

// Scale sets v[i] = v[i] * f: a gradient scaled to a sum of rows, or a sum to a mean. It is
// exported for the workers and learners that scale the buffers they all-reduce (a plain Go loop
// takes three times as long).
func Scale(v []float32, f float32) {
	if k := simdLen(len(v)); k > 0 {
		scaleF32AVX2(&v[0], f, k)
		v = v[k:]
	}
	scaleF32Go(v, f)
}

// scaleF32Go is Scale in Go, unrolled by 8 with the bounds checks hoisted.
func scaleF32Go(v []float32, f float32) {
	n := len(v)
	i := 0
	for ; i+8 <= n; i += 8 {
		d := v[i : i+8 : i+8]
		d[0] *= f
		d[1] *= f
		d[2] *= f
		d[3] *= f
		d[4] *= f
		d[5] *= f
		d[6] *= f
		d[7] *= f
	}
	for ; i < n; i++ {
		v[i] *= f
	}
}

// encodeBF16 rounds src into dst (len(dst) >= len(src)).
func encodeBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	if k := simdLen(len(src)); k > 0 {
		encodeBF16AVX2(&dst[0], &src[0], k)
		dst, src = dst[k:], src[k:]
	}
	encodeBF16Go(dst, src)
}

// decodeBF16 widens src into dst (len(dst) >= len(src)).
func decodeBF16(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	if k := simdLen(len(src)); k > 0 {
		decodeBF16AVX2(&dst[0], &src[0], k)
		dst, src = dst[k:], src[k:]
	}
	decodeBF16Go(dst, src)
}

// accumBF16 sets dst[i] = bf16(float32(dst[i]) + src[i]): a partial sum
// received in bfloat16, plus this rank's values, rounded to send on — the
// add and the encode in one pass.
func accumBF16(dst []uint16, src []float32) {
	src = src[:len(dst)]
	if k := simdLen(len(dst)); k > 0 {
		accumBF16AVX2(&dst[0], &src[0], k)
		dst, src = dst[k:], src[k:]
	}
	accumBF16Go(dst, src)
}

func accumBF16Go(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = toBF16(fromBF16(dst[i]) + v)
	}
}

// roundBF16 rounds x in place to the nearest bfloat16 value, so the rank that
// finishes a segment holds exactly the bits the others decode.
func roundBF16(x []float32) {
	var tmp [1024]uint16
	for len(x) > 0 {
		n := min(len(x), len(tmp))
		encodeBF16(tmp[:n], x[:n])
		decodeBF16(x[:n], tmp[:n])
		x = x[n:]
	}
}

// simdLen is how many leading elements of n the AVX2 kernels take.
func simdLen(n int) int {
	if !useAVX2 {
		return 0
	}
	return n &^ 15
}

// addF32Go is addF32 in Go, unrolled by 8 with the bounds checks hoisted.
func addF32Go(dst, src []float32) {
	n := len(dst)
	src = src[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		d := dst[i : i+8 : i+8]
		s := src[i : i+8 : i+8]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
		d[4] += s[4]
		d[5] += s[5]
		d[6] += s[6]
		d[7] += s[7]
	}
	for ; i < n; i++ {
		dst[i] += src[i]
	}
}

// toBF16 rounds a float32 to bfloat16, round to nearest, ties to even; NaNs
// stay NaN (quieted), infinities stay infinite.
func toBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// fromBF16 widens a bfloat16 to float32 exactly.
func fromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func addBF16Go(dst []float32, src []uint16) {
	n := len(dst)
	src = src[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		d := dst[i : i+8 : i+8]
		s := src[i : i+8 : i+8]
		d[0] += math.Float32frombits(uint32(s[0]) << 16)
		d[1] += math.Float32frombits(uint32(s[1]) << 16)
		d[2] += math.Float32frombits(uint32(s[2]) << 16)
		d[3] += math.Float32frombits(uint32(s[3]) << 16)
		d[4] += math.Float32frombits(uint32(s[4]) << 16)
		d[5] += math.Float32frombits(uint32(s[5]) << 16)
		d[6] += math.Float32frombits(uint32(s[6]) << 16)
		d[7] += math.Float32frombits(uint32(s[7]) << 16)
	}
	for ; i < n; i++ {
		dst[i] += fromBF16(src[i])
	}
}

func encodeBF16Go(dst []uint16, src []float32) {
	n := len(src)
	dst = dst[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		d := dst[i : i+4 : i+4]
		s := src[i : i+4 : i+4]
		d[0] = toBF16(s[0])
		d[1] = toBF16(s[1])
		d[2] = toBF16(s[2])
		d[3] = toBF16(s[3])
	}
	for ; i < n; i++ {
		dst[i] = toBF16(src[i])
	}
}

func decodeBF16Go(dst []float32, src []uint16) {
	n := len(src)
	dst = dst[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		d := dst[i : i+8 : i+8]
		s := src[i : i+8 : i+8]
		d[0] = math.Float32frombits(uint32(s[0]) << 16)
		d[1] = math.Float32frombits(uint32(s[1]) << 16)
		d[2] = math.Float32frombits(uint32(s[2]) << 16)
		d[3] = math.Float32frombits(uint32(s[3]) << 16)
		d[4] = math.Float32frombits(uint32(s[4]) << 16)
		d[5] = math.Float32frombits(uint32(s[5]) << 16)
		d[6] = math.Float32frombits(uint32(s[6]) << 16)
		d[7] = math.Float32frombits(uint32(s[7]) << 16)
	}
	for ; i < n; i++ {
		dst[i] = fromBF16(src[i])
	}
}
