package torch

import "unsafe"

// Flat buffers move a parameter list's values or gradients to and from one contiguous host
// slice, in list order, each tensor flattened row-major: the unit of all-reduce, broadcast and
// checkpoint I/O. Device tensors are concatenated on the device first, so a flatten costs one
// device-to-host transfer.

// NumElements is the total element count of ts (the length their flat buffers need), or -1
// if one carries an error.
func NumElements(ts []*Tensor) int64 {
	var n int64
	for _, t := range ts {
		k := t.Numel()
		if k < 0 {
			return -1
		}
		n += k
	}
	return n
}

func flatCopy(op string, what, dir uintptr, ts []*Tensor, buf unsafe.Pointer, n int, dt DType) error {
	hs, _, err := handles(op, ts)
	if err != nil {
		return err
	}
	if r := call(fn.flatCopy, what, dir, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)), uintptr(buf),
		uintptr(n), uintptr(dt)); r != 0 {
		return nativeErr(r, op)
	}
	return nil
}

// FlattenGrads copies the gradients of params into dst (a missing gradient reads as zeros).
func FlattenGrads(params []*Tensor, dst []float32) error {
	return flatCopy("flatten_grads", 1, 0, params, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), Float32)
}

// UnflattenGrads writes src into the gradients of params, creating missing ones.
func UnflattenGrads(params []*Tensor, src []float32) error {
	return flatCopy("unflatten_grads", 1, 1, params, unsafe.Pointer(unsafe.SliceData(src)), len(src), Float32)
}

// FlattenParams copies the values of params into dst.
func FlattenParams(params []*Tensor, dst []float32) error {
	return flatCopy("flatten_params", 0, 0, params, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), Float32)
}

// UnflattenParams writes src into params in place (no autograd history).
func UnflattenParams(params []*Tensor, src []float32) error {
	return flatCopy("unflatten_params", 0, 1, params, unsafe.Pointer(unsafe.SliceData(src)), len(src), Float32)
}

// FlattenGradsBF16 is FlattenGrads into bfloat16 bits (half the bytes on the wire).
func FlattenGradsBF16(params []*Tensor, dst []uint16) error {
	return flatCopy("flatten_grads", 1, 0, params, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), BFloat16)
}

// UnflattenGradsBF16 is UnflattenGrads from bfloat16 bits.
func UnflattenGradsBF16(params []*Tensor, src []uint16) error {
	return flatCopy("unflatten_grads", 1, 1, params, unsafe.Pointer(unsafe.SliceData(src)), len(src), BFloat16)
}

// FlattenParamsBF16 is FlattenParams into bfloat16 bits.
func FlattenParamsBF16(params []*Tensor, dst []uint16) error {
	return flatCopy("flatten_params", 0, 0, params, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), BFloat16)
}

// UnflattenParamsBF16 is UnflattenParams from bfloat16 bits.
func UnflattenParamsBF16(params []*Tensor, src []uint16) error {
	return flatCopy("unflatten_params", 0, 1, params, unsafe.Pointer(unsafe.SliceData(src)), len(src), BFloat16)
}
