//go:build !amd64

package allreduce

const useAVX2 = false

func addF32AVX2(dst, src *float32, n int)          { panic("no AVX2") }
func addBF16AVX2(dst *float32, src *uint16, n int) { panic("no AVX2") }
func scaleF32AVX2(v *float32, f float32, n int)    { panic("no AVX2") }
func encodeBF16AVX2(dst *uint16, src *float32, n int) {
	panic("no AVX2")
}
func decodeBF16AVX2(dst *float32, src *uint16, n int) { panic("no AVX2") }

func accumBF16AVX2(dst *uint16, src *float32, n int) { panic("no AVX2") }
