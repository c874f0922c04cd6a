package torch

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type. The zero value is Float32.
type DType int

// The dtypes the shim knows; the values are the shim's codes.
const (
	Float32 DType = iota
	Float64
	Float16
	BFloat16
	Int64
	Int32
	Uint8
	Bool

	dtypeCount // VLP_DTYPE_COUNT: the number of dtypes the shim knows
)

var dtypeNames = [...]string{"float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"}
var dtypeSizes = [...]int{4, 8, 2, 2, 8, 4, 1, 1}

func (d DType) String() string {
	if d >= 0 && int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the size of one element in bytes.
func (d DType) Size() int {
	if d >= 0 && int(d) < len(dtypeSizes) {
		return dtypeSizes[d]
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == Float32 || d == Float64 || d == Float16 || d == BFloat16 }

// Device is where a tensor lives. The zero value is the CPU; CUDA(n) is cuda:n.
type Device int

// CPU is the host.
const CPU Device = 0

// CUDA is the n-th CUDA device.
func CUDA(n int) Device { return Device(n + 1) }

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d > 0 }

// Index is the CUDA device number, or -1 for the CPU.
func (d Device) Index() int { return int(d) - 1 }

func (d Device) code() uintptr { return uintptr(int64(d) - 1) }

func deviceFromCode(c int64) Device {
	if c < 0 {
		return CPU
	}
	return Device(c + 1)
}

func (d Device) String() string {
	if d <= 0 {
		return "cpu"
	}
	return "cuda:" + strconv.Itoa(d.Index())
}

// ParseDevice reads "cpu", "cuda" (cuda:0) or "cuda:N".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return CPU, fmt.Errorf("torch: bad device %q: want cpu, cuda or cuda:N", s)
		}
		return CUDA(n), nil
	}
	return CPU, fmt.Errorf("torch: bad device %q: want cpu, cuda or cuda:N", s)
}
