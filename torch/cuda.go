package torch

import (
	"fmt"
	"unsafe"
)

// CUDADeviceCount is the number of CUDA devices LibTorch sees (0 with a CPU-only LibTorch).
func CUDADeviceCount() int {
	if !fn.ready {
		return 0
	}
	var n int64
	if cerr(call(fn.cudaDeviceCount, uintptr(unsafe.Pointer(&n)))) != "" {
		return 0
	}
	return int(n)
}

// CUDAIsAvailable reports whether at least one CUDA device can be used.
func CUDAIsAvailable() bool { return CUDADeviceCount() > 0 }

// cudaCall keeps pointer arguments alive and in place like call.
//
//go:uintptrescapes
func cudaCall(op string, f uintptr, args ...uintptr) error {
	if !fn.ready {
		return ErrNotLoaded
	}
	if e := cerr(call(f, args...)); e != "" {
		return &OpError{Op: op, Msg: e}
	}
	return nil
}

// CUDASynchronize waits for every queued kernel on device n.
func CUDASynchronize(n int) error {
	return cudaCall("cuda_synchronize", fn.cudaSynchronize, uintptr(n))
}

func cudaMemory(n int) ([3]int64, error) {
	var st [3]int64
	err := cudaCall("cuda_memory", fn.cudaMemory, uintptr(n), uintptr(unsafe.Pointer(&st)))
	return st, err
}

// CUDAMemoryAllocated is the bytes held by tensors on device n (torch.cuda.memory_allocated).
func CUDAMemoryAllocated(n int) (int64, error) {
	st, err := cudaMemory(n)
	return st[0], err
}

// CUDAMaxMemoryAllocated is the peak of CUDAMemoryAllocated since start or the last reset.
func CUDAMaxMemoryAllocated(n int) (int64, error) {
	st, err := cudaMemory(n)
	return st[1], err
}

// CUDAMemoryReserved is the bytes the caching allocator holds on device n.
func CUDAMemoryReserved(n int) (int64, error) {
	st, err := cudaMemory(n)
	return st[2], err
}

// CUDAResetPeakMemory resets the peak statistics of device n.
func CUDAResetPeakMemory(n int) error {
	return cudaCall("cuda_reset_peak", fn.cudaResetPeak, uintptr(n))
}

// CUDAEmptyCache returns cached, unused device memory to the driver.
func CUDAEmptyCache() error { return cudaCall("cuda_empty_cache", fn.cudaEmptyCache) }

// CUDADeviceInfo is device n's name and total memory in bytes.
func CUDADeviceInfo(n int) (name string, totalBytes int64, err error) {
	var p uintptr
	if err := cudaCall("cuda_device_info", fn.cudaDeviceInfo, uintptr(n), uintptr(unsafe.Pointer(&p)),
		uintptr(unsafe.Pointer(&totalBytes))); err != nil {
		return "", 0, err
	}
	return cerr(p), totalBytes, nil
}

// CUDABuilt reports whether the loaded LibTorch has a CUDA backend, whether or not it sees a
// device (false before Load and for a CPU-only LibTorch).
func CUDABuilt() bool {
	if !fn.ready {
		return false
	}
	var b int64
	return cerr(call(fn.cudaBuilt, uintptr(unsafe.Pointer(&b)))) == "" && b == 1
}

// CheckDevice reports whether the loaded LibTorch can put tensors on d: the CPU always; cuda:n
// when LibTorch has a CUDA backend and sees more than n devices. Commands call it before they
// build anything, so that a device the library cannot drive is one line of error rather than a
// failed op deep in a model. The error wraps ErrDevice and says which case it is.
func CheckDevice(d Device) error {
	if !fn.ready {
		return ErrNotLoaded
	}
	if !d.IsCUDA() {
		return nil
	}
	v, err := Version()
	if err != nil {
		return err
	}
	lib := fmt.Sprintf("LibTorch %s (%s)", v, Loaded())
	n := CUDADeviceCount()
	switch {
	case !CUDABuilt():
		return fmt.Errorf("%w: %s: %s was built without CUDA; train on the CPU, or build the shim against a CUDA LibTorch (`make lib LIBTORCH=/path/to/torch`)",
			ErrDevice, d, lib)
	case n == 0:
		return fmt.Errorf("%w: %s: %s has CUDA but sees no device (check the driver, nvidia-smi and CUDA_VISIBLE_DEVICES)",
			ErrDevice, d, lib)
	case d.Index() >= n:
		return fmt.Errorf("%w: %s: %s sees %d CUDA device(s), cuda:0 to cuda:%d", ErrDevice, d, lib, n, n-1)
	}
	return nil
}

// CUDAMath is the process's CUDA math settings (PyTorch's torch.backends switches). They are
// process-wide, as in PyTorch, and change nothing on the CPU.
type CUDAMath struct {
	TF32Matmul     bool // float32 matrix products may use TensorFloat-32 (torch.backends.cuda.matmul.allow_tf32; default false)
	CuDNNBenchmark bool // cuDNN times the algorithms of each new convolution shape and keeps the fastest (torch.backends.cudnn.benchmark; default false)
	TF32CuDNN      bool // cuDNN's float32 convolutions may use TensorFloat-32 (torch.backends.cudnn.allow_tf32; default true)
}

// GetCUDAMath reads the settings.
func GetCUDAMath() (CUDAMath, error) {
	var f [3]int64
	if err := cudaCall("cuda_math_get", fn.cudaMathGet, uintptr(unsafe.Pointer(&f))); err != nil {
		return CUDAMath{}, err
	}
	return CUDAMath{TF32Matmul: f[0] == 1, CuDNNBenchmark: f[1] == 1, TF32CuDNN: f[2] == 1}, nil
}

// SetCUDAMath sets all three.
func SetCUDAMath(m CUDAMath) error {
	return cudaCall("cuda_math_set", fn.cudaMathSet, b2u(m.TF32Matmul), b2u(m.CuDNNBenchmark), b2u(m.TF32CuDNN))
}
