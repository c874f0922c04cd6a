package torch

import (
	"math"
	"unsafe"

	"github.com/ebitengine/purego"
)

// call invokes a shim function and returns its error string pointer (0 on success).
// Arguments that are Go pointers must be converted in the call expression
// (uintptr(unsafe.Pointer(&x))): go:uintptrescapes then keeps them alive and in place. A
// conversion anywhere else (a helper that returns the uintptr, a variable set before the call)
// hides the pointer: the memory may be freed and reused while the shim still reads it (a shape
// read as garbage, once in a hundred runs with one core busy).
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// cerr turns a shim error string into a Go string and frees it; "" for success.
func cerr(p uintptr) string {
	if p == 0 {
		return ""
	}
	s := cstring(p)
	purego.SyscallN(fn.freeString, p)
	return s
}

// cstring copies a NUL-terminated C string.
func cstring(p uintptr) string {
	if p == 0 {
		return ""
	}
	base := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	n := 0
	for *(*byte)(unsafe.Add(base, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(base), n))
}

// f64 passes a float as the bits of a double (see vlp_f64 in vlp_torch.h).
func f64(v float64) uintptr { return uintptr(math.Float64bits(v)) }

func b2u(b bool) uintptr {
	if b {
		return 1
	}
	return 0
}

func i64(v int64) uintptr { return uintptr(v) }
