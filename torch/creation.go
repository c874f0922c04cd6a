package torch

import (
	"fmt"
	"unsafe"
)

// newIn starts a creation op in scope s (nil: an owned result).
func newIn(s *Scope, op string) (*Tensor, error) {
	if s != nil && s.closed {
		return nil, opErr(op, ErrScopeClosed)
	}
	if !fn.ready {
		return nil, ErrNotLoaded
	}
	return &Tensor{}, nil
}

func fillOp(s *Scope, kind int, op string, shape []int64, v float64, dt DType, dev Device) *Tensor {
	t, err := newIn(s, op)
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.fill, uintptr(kind), uintptr(unsafe.Pointer(unsafe.SliceData(shape))), uintptr(len(shape)), uintptr(dt), dev.code(), f64(v),
		uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, op, shape)
}

// finishShape is finish for creation ops, whose error names the requested shape.
func finishShape(s *Scope, t *Tensor, r uintptr, op string, shape []int64) *Tensor {
	if r != 0 {
		return errTensor(s, &OpError{Op: op, Shapes: [][]int64{append([]int64(nil), shape...)}, Msg: cerr(r)})
	}
	adopt(s, t)
	return t
}

// Empty is an uninitialised tensor.
func Empty(s *Scope, shape []int64, dt DType, dev Device) *Tensor {
	return fillOp(s, 0, "empty", shape, 0, dt, dev)
}

// Zeros is a tensor of zeros, in s (nil: owned by the caller).
func Zeros(s *Scope, shape []int64, dt DType, dev Device) *Tensor {
	return fillOp(s, 1, "zeros", shape, 0, dt, dev)
}

// Ones is a tensor of ones.
func Ones(s *Scope, shape []int64, dt DType, dev Device) *Tensor {
	return fillOp(s, 2, "ones", shape, 0, dt, dev)
}

// Full is a tensor filled with v.
func Full(s *Scope, shape []int64, v float64, dt DType, dev Device) *Tensor {
	return fillOp(s, 3, "full", shape, v, dt, dev)
}

// Scalar is a 0-dim tensor holding v.
func Scalar(s *Scope, v float64, dt DType, dev Device) *Tensor {
	return fillOp(s, 3, "scalar", nil, v, dt, dev)
}

// Arange is [start, start+step, …) below end, like torch.arange.
func Arange(s *Scope, start, end, step float64, dt DType, dev Device) *Tensor {
	t, err := newIn(s, "arange")
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.arange, f64(start), f64(end), f64(step), uintptr(dt), dev.code(), uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, "arange", nil)
}

func fromData(s *Scope, op string, data unsafe.Pointer, nbytes int, shape []int64, dt DType, dev Device) *Tensor {
	t, err := newIn(s, op)
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.fromData, uintptr(data), uintptr(nbytes), uintptr(unsafe.Pointer(unsafe.SliceData(shape))), uintptr(len(shape)), uintptr(dt), dev.code(),
		uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, op, shape)
}

// FromFloat32 copies data (row-major, len = product of shape) into a new float32 tensor on dev.
func FromFloat32(s *Scope, data []float32, shape []int64, dev Device) *Tensor {
	return fromData(s, "from_float32", unsafe.Pointer(unsafe.SliceData(data)), 4*len(data), shape, Float32, dev)
}

// FromFloat64 copies data into a new float64 tensor.
func FromFloat64(s *Scope, data []float64, shape []int64, dev Device) *Tensor {
	return fromData(s, "from_float64", unsafe.Pointer(unsafe.SliceData(data)), 8*len(data), shape, Float64, dev)
}

// FromInt64 copies data into a new int64 tensor.
func FromInt64(s *Scope, data []int64, shape []int64, dev Device) *Tensor {
	return fromData(s, "from_int64", unsafe.Pointer(unsafe.SliceData(data)), 8*len(data), shape, Int64, dev)
}

// FromBool copies data into a new bool tensor.
func FromBool(s *Scope, data []bool, shape []int64, dev Device) *Tensor {
	return fromData(s, "from_bool", unsafe.Pointer(unsafe.SliceData(data)), len(data), shape, Bool, dev)
}

// FromUint8 copies data into a new uint8 tensor (e.g. decoded image bytes).
func FromUint8(s *Scope, data []uint8, shape []int64, dev Device) *Tensor {
	return fromData(s, "from_uint8", unsafe.Pointer(unsafe.SliceData(data)), len(data), shape, Uint8, dev)
}

// FromBF16 copies raw bfloat16 bits into a new bfloat16 tensor.
func FromBF16(s *Scope, data []uint16, shape []int64, dev Device) *Tensor {
	return fromData(s, "from_bf16", unsafe.Pointer(unsafe.SliceData(data)), 2*len(data), shape, BFloat16, dev)
}

// FromBytes copies raw little-endian element bytes of type dt into a new tensor.
func FromBytes(s *Scope, raw []byte, shape []int64, dt DType, dev Device) *Tensor {
	return fromData(s, "from_bytes", unsafe.Pointer(unsafe.SliceData(raw)), len(raw), shape, dt, dev)
}

// copyOut copies t into dst (nbytes long), checking the dtype.
func (t *Tensor) copyOut(op string, want DType, dst unsafe.Pointer, nbytes int) error {
	h, err := t.handle(op)
	if err != nil {
		return err
	}
	if dt := t.DType(); want >= 0 && dt != want {
		return &OpError{Op: op, Shapes: [][]int64{t.Shape()}, Msg: fmt.Sprintf("tensor is %s, not %s", dt, want)}
	}
	if r := call(fn.toHost, h, uintptr(dst), uintptr(nbytes)); r != 0 {
		return nativeErr(r, op, t)
	}
	return nil
}

func (t *Tensor) numelFor(op string) (int, error) {
	m, err := t.meta(nil)
	if err != nil {
		if t != nil && t.err == nil {
			return 0, opErr(op, err)
		}
		return 0, err
	}
	return int(m[1]), nil
}

// Float32s copies a float32 tensor (any device) to a new slice.
func (t *Tensor) Float32s() ([]float32, error) {
	n, err := t.numelFor("float32s")
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	return out, t.copyOut("float32s", Float32, unsafe.Pointer(unsafe.SliceData(out)), 4*n)
}

// CopyToFloat32 copies a float32 tensor into dst, whose length must equal Numel.
func (t *Tensor) CopyToFloat32(dst []float32) error {
	return t.copyOut("copy_to_float32", Float32, unsafe.Pointer(unsafe.SliceData(dst)), 4*len(dst))
}

// Float64s copies a float64 tensor to a new slice.
func (t *Tensor) Float64s() ([]float64, error) {
	n, err := t.numelFor("float64s")
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	return out, t.copyOut("float64s", Float64, unsafe.Pointer(unsafe.SliceData(out)), 8*n)
}

// Int64s copies an int64 tensor to a new slice.
func (t *Tensor) Int64s() ([]int64, error) {
	n, err := t.numelFor("int64s")
	if err != nil {
		return nil, err
	}
	out := make([]int64, n)
	return out, t.copyOut("int64s", Int64, unsafe.Pointer(unsafe.SliceData(out)), 8*n)
}

// Bools copies a bool tensor to a new slice.
func (t *Tensor) Bools() ([]bool, error) {
	n, err := t.numelFor("bools")
	if err != nil {
		return nil, err
	}
	out := make([]bool, n)
	return out, t.copyOut("bools", Bool, unsafe.Pointer(unsafe.SliceData(out)), n)
}

// Uint8s copies a uint8 tensor to a new slice.
func (t *Tensor) Uint8s() ([]uint8, error) {
	n, err := t.numelFor("uint8s")
	if err != nil {
		return nil, err
	}
	out := make([]uint8, n)
	return out, t.copyOut("uint8s", Uint8, unsafe.Pointer(unsafe.SliceData(out)), n)
}

// Bytes copies the raw element bytes of t, whatever its dtype.
func (t *Tensor) Bytes() ([]byte, error) {
	m, err := t.meta(nil)
	if err != nil {
		return nil, err
	}
	out := make([]byte, int(m[1])*DType(m[2]).Size())
	return out, t.copyOut("bytes", -1, unsafe.Pointer(unsafe.SliceData(out)), len(out))
}

// Item is the value of a one-element tensor as a float64 (a device sync for CUDA tensors).
func (t *Tensor) Item() (float64, error) {
	h, err := t.handle("item")
	if err != nil {
		return 0, err
	}
	var v float64
	if r := call(fn.item, h, uintptr(unsafe.Pointer(&v))); r != 0 {
		return 0, nativeErr(r, "item", t)
	}
	return v, nil
}

// To moves t to dev (a no-op handle when it is there already).
func (t *Tensor) To(dev Device) *Tensor {
	return t.toDevice("to", dev, false)
}

// ToNonBlocking moves t to dev without waiting for the copy (pinned host memory only).
func (t *Tensor) ToNonBlocking(dev Device) *Tensor {
	return t.toDevice("to", dev, true)
}

func (t *Tensor) toDevice(op string, dev Device, nb bool) *Tensor {
	h, err := t.handle(op)
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.toDevice, h, dev.code(), b2u(nb), uintptr(unsafe.Pointer(&r.h))), op, t)
}

// ToDtype converts t to dt.
func (t *Tensor) ToDtype(dt DType) *Tensor {
	h, err := t.handle("to_dtype")
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.toDtype, h, uintptr(dt), uintptr(unsafe.Pointer(&r.h))), "to_dtype", t)
}

// CopyFrom copies src into t in place (broadcasting, converting dtype and device), without
// recording autograd history: for loading parameters.
func (t *Tensor) CopyFrom(src *Tensor) error {
	h, err := t.handle("copy_")
	if err != nil {
		return err
	}
	hs, err := src.handle("copy_")
	if err != nil {
		return err
	}
	if r := call(fn.copy_, h, hs); r != 0 {
		return nativeErr(r, "copy_", t, src)
	}
	return nil
}

// Fill sets every element of t to v in place, without recording autograd history.
func (t *Tensor) Fill(v float64) error {
	h, err := t.handle("fill_")
	if err != nil {
		return err
	}
	if r := call(fn.fill_, h, f64(v)); r != 0 {
		return nativeErr(r, "fill_", t)
	}
	return nil
}
