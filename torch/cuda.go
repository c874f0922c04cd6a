package torch

import "unsafe"

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
