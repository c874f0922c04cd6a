package torch

import "testing"

// The CUDA math settings are LibTorch's own (at::globalContext()): what is set is read back, each
// flag on its own, and a CPU-only LibTorch holds them as well.
func TestCUDAMath(t *testing.T) {
	orig, err := GetCUDAMath()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { noErr(t, SetCUDAMath(orig)) })
	for _, m := range []CUDAMath{
		{TF32Matmul: true},
		{CuDNNBenchmark: true},
		{TF32CuDNN: true},
		{TF32Matmul: true, CuDNNBenchmark: true, TF32CuDNN: true},
		{},
	} {
		noErr(t, SetCUDAMath(m))
		got, err := GetCUDAMath()
		noErr(t, err)
		if got != m {
			t.Fatalf("set %+v, read back %+v", m, got)
		}
	}
}
