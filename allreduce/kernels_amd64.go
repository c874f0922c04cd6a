package allreduce

// useAVX2 is whether the CPU and the OS support AVX2 (CPUID and XGETBV).
var useAVX2 = hasAVX2()

func hasAVX2() bool

// The AVX2 bodies take n, a positive multiple of 16, elements.

//go:noescape
func addF32AVX2(dst, src *float32, n int)

//go:noescape
func scaleF32AVX2(v *float32, f float32, n int)

//go:noescape
func addBF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func encodeBF16AVX2(dst *uint16, src *float32, n int)

//go:noescape
func decodeBF16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func accumBF16AVX2(dst *uint16, src *float32, n int)
