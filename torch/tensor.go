package torch

import (
	"fmt"
	"log/slog"
	"runtime"
	"unsafe"
)

// Tensor is a handle to a native tensor plus a sticky error. Ops never fail with a Go error:
// they return a *Tensor, which carries the first error met on the way (see Err). A Tensor is
// owned either by a Scope, which frees it on Close, or by the caller, who calls Close.
//
// A Tensor is not safe for concurrent use; distinct tensors may be used from distinct goroutines.
type Tensor struct {
	h      uintptr // native vlp_tensor_t; 0 once closed or when err != nil
	err    error
	scope  *Scope  // owner, or nil for an owned tensor
	parent *Tensor // for a borrowed view (Scope.Use): the owned tensor it shows
	idx    int32   // position in scope.ts
	flags  uint8
}

const (
	flagBorrowed uint8 = 1 << iota // a view made by Scope.Use: never frees the native tensor
	flagClosed                     // Close ran (or its scope closed)
)

// Err reports the tensor's error: the first failure of the op that made it or of any input.
func (t *Tensor) Err() error {
	if t == nil {
		return ErrNilTensor
	}
	return t.err
}

// handle is the live native handle, or the error that stops an op from using it.
func (t *Tensor) handle(op string) (uintptr, error) {
	if t == nil {
		return 0, opErr(op, ErrNilTensor)
	}
	if t.err != nil {
		return 0, t.err
	}
	if t.h == 0 || (t.parent != nil && t.parent.h == 0) {
		return 0, opErr(op, ErrClosed)
	}
	if !fn.ready {
		return 0, ErrNotLoaded
	}
	return t.h, nil
}

// optHandle is handle for an optional input: nil gives 0 with no error.
func (t *Tensor) optHandle(op string) (uintptr, error) {
	if t == nil {
		return 0, nil
	}
	return t.handle(op)
}

func (t *Tensor) scopeOf() *Scope {
	if t == nil {
		return nil
	}
	return t.scope
}

// pick returns the youngest (most recently created) of the inputs' scopes: a result lives
// with the shortest-lived of its inputs, so mixing a long-lived data scope with a per-step
// scope puts temporaries in the per-step one.
func pick(ss ...*Scope) *Scope {
	var best *Scope
	for _, s := range ss {
		if s != nil && (best == nil || s.seq > best.seq) {
			best = s
		}
	}
	return best
}

// errTensor is a result that carries err and no native tensor.
func errTensor(s *Scope, err error) *Tensor {
	t := &Tensor{err: err}
	if s != nil {
		s.noteErr(err)
	}
	return t
}

// finish turns the outcome of a native call that wrote t.h into the result: registered in s on
// success, carrying an OpError naming op and the inputs' shapes on failure.
func finish(s *Scope, t *Tensor, r uintptr, op string, inputs ...*Tensor) *Tensor {
	if r != 0 {
		return errTensor(s, nativeErr(r, op, inputs...))
	}
	adopt(s, t)
	return t
}

// adopt hands a fresh native tensor to its owner.
func adopt(s *Scope, t *Tensor) {
	if s != nil && !s.closed {
		t.scope = s
		t.idx = int32(len(s.ts))
		s.ts = append(s.ts, t)
		return
	}
	if s != nil && s.closed {
		// Made from an input whose scope is gone: nobody would free it.
		freeHandle(t.h)
		t.h = 0
		t.err = ErrScopeClosed
		return
	}
	runtime.SetFinalizer(t, warnLeak)
}

func nativeErr(r uintptr, op string, inputs ...*Tensor) error {
	msg := cerr(r)
	e := &OpError{Op: op, Msg: msg}
	for _, in := range inputs {
		if in != nil && in.h != 0 {
			e.Shapes = append(e.Shapes, in.Shape())
		}
	}
	return e
}

func freeHandle(h uintptr) {
	if h != 0 && fn.ready {
		cerr(call(fn.tensorFree, h))
	}
}

// warnLeak is the finalizer of owned tensors: it only reports, never frees (see Close).
func warnLeak(t *Tensor) {
	if t.h != 0 {
		slog.Warn("torch: owned tensor garbage-collected without Close (native memory leaked)",
			"shape", fmtShape(t.Shape()), "dtype", t.DType().String())
	}
}

// Close frees the native tensor now. For a tensor owned by a scope it frees it early and
// takes it out of the scope; for a borrowed view (Scope.Use) it only invalidates the view.
// Closing twice, or closing a tensor that carries an error, does nothing.
func (t *Tensor) Close() {
	if t == nil || t.flags&flagClosed != 0 {
		return
	}
	t.flags |= flagClosed
	if t.scope != nil {
		if int(t.idx) < len(t.scope.ts) && t.scope.ts[t.idx] == t {
			t.scope.ts[t.idx] = nil
		}
		t.scope = nil
	} else {
		runtime.SetFinalizer(t, nil)
	}
	if t.flags&flagBorrowed == 0 {
		freeHandle(t.h)
	}
	t.h = 0
	t.parent = nil
}

// Keep takes t out of its scope: the caller owns it and must Close it. A borrowed view is
// turned into a new owned handle to the same tensor. Keep returns t (or the new handle).
func (t *Tensor) Keep() *Tensor {
	if t == nil || t.err != nil {
		return t
	}
	if t.flags&flagBorrowed != 0 {
		h, err := t.handle("keep")
		if err != nil {
			return errTensor(nil, err)
		}
		k := &Tensor{}
		return finish(nil, k, call(fn.tensorShare, h, uintptr(unsafe.Pointer(&k.h))), "keep", t)
	}
	if t.scope != nil {
		if int(t.idx) < len(t.scope.ts) && t.scope.ts[t.idx] == t {
			t.scope.ts[t.idx] = nil
		}
		t.scope = nil
		if t.h != 0 {
			runtime.SetFinalizer(t, warnLeak)
		}
	}
	return t
}

// meta reads [ndim, numel, dtype, device, requires_grad, contiguous, has_grad, is_leaf] and up
// to 8 sizes.
func (t *Tensor) meta(shape *[8]int64) ([8]int64, error) {
	var m [8]int64
	h, err := t.handle("meta")
	if err != nil {
		return m, err
	}
	var r uintptr
	if shape != nil {
		r = call(fn.tensorMeta, h, uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(shape)), 8)
	} else {
		r = call(fn.tensorMeta, h, uintptr(unsafe.Pointer(&m)), 0, 0)
	}
	if e := cerr(r); e != "" {
		return m, &OpError{Op: "meta", Msg: e}
	}
	return m, nil
}

// Shape is the tensor's sizes, or nil when it carries an error.
func (t *Tensor) Shape() []int64 {
	var buf [8]int64
	m, err := t.meta(&buf)
	if err != nil {
		return nil
	}
	if m[0] <= 8 {
		out := make([]int64, m[0])
		copy(out, buf[:m[0]])
		return out
	}
	out := make([]int64, m[0])
	h, _ := t.handle("shape")
	var mm [8]int64
	cerr(call(fn.tensorMeta, h, uintptr(unsafe.Pointer(&mm)), uintptr(unsafe.Pointer(unsafe.SliceData(out))), uintptr(len(out))))
	return out
}

// Size is the size of dim (negative counts from the end), or -1 on error.
func (t *Tensor) Size(dim int) int64 {
	s := t.Shape()
	if dim < 0 {
		dim += len(s)
	}
	if dim < 0 || dim >= len(s) {
		return -1
	}
	return s[dim]
}

// Dim is the number of dimensions (-1 on error).
func (t *Tensor) Dim() int {
	m, err := t.meta(nil)
	if err != nil {
		return -1
	}
	return int(m[0])
}

// Numel is the number of elements (-1 on error).
func (t *Tensor) Numel() int64 {
	m, err := t.meta(nil)
	if err != nil {
		return -1
	}
	return m[1]
}

// DType is the element type (-1 on error).
func (t *Tensor) DType() DType {
	m, err := t.meta(nil)
	if err != nil {
		return -1
	}
	return DType(m[2])
}

// Device is where the tensor lives (CPU on error).
func (t *Tensor) Device() Device {
	m, err := t.meta(nil)
	if err != nil {
		return CPU
	}
	return deviceFromCode(m[3])
}

// RequiresGradFlag reports whether autograd records ops on t.
func (t *Tensor) RequiresGradFlag() bool {
	m, err := t.meta(nil)
	return err == nil && m[4] != 0
}

// IsContiguous reports whether t is laid out row-major without gaps.
func (t *Tensor) IsContiguous() bool {
	m, err := t.meta(nil)
	return err == nil && m[5] != 0
}

// IsLeaf reports whether t was made by the user rather than by an op that autograd records.
func (t *Tensor) IsLeaf() bool {
	m, err := t.meta(nil)
	return err == nil && m[7] != 0
}

// String describes t, e.g. "Tensor[2 3] float32 cpu", or its error.
func (t *Tensor) String() string {
	if err := t.Err(); err != nil {
		return "Tensor(error: " + err.Error() + ")"
	}
	if t.h == 0 {
		return "Tensor(closed)"
	}
	return fmt.Sprintf("Tensor%s %s %s", fmtShape(t.Shape()), t.DType(), t.Device())
}

// LiveTensors counts native tensor handles created and not yet freed (0 before Load).
func LiveTensors() int64 {
	if !fn.ready {
		return 0
	}
	var n int64
	cerr(call(fn.liveTensors, uintptr(unsafe.Pointer(&n))))
	return n
}

// HostReads is the calling OS thread's count of host reads so far: copies of a tensor's values to
// Go memory, scalars, and ops whose output is sized by the data (Nonzero, MaskedSelect). On a GPU
// each one waits for the device, so a training step counts them (model.StepResult.HostReads).
// Lock the goroutine to its thread around the code being counted.
func HostReads() int64 {
	if !fn.ready {
		return 0
	}
	var n int64
	cerr(call(fn.hostReads, uintptr(unsafe.Pointer(&n))))
	return n
}

// Version is the LibTorch version the shim was built against, e.g. "1.13.0".
func Version() (string, error) {
	if !fn.ready {
		return "", ErrNotLoaded
	}
	var p uintptr
	if e := cerr(call(fn.version, uintptr(unsafe.Pointer(&p)))); e != "" {
		return "", &OpError{Op: "version", Msg: e}
	}
	return cerr(p), nil // cerr copies and frees the string
}

// BuildConfig is LibTorch's at::show_config(): compiler, BLAS, LAPACK, CUDA and other options.
func BuildConfig() (string, error) {
	if !fn.ready {
		return "", ErrNotLoaded
	}
	var p uintptr
	if e := cerr(call(fn.buildConfig, uintptr(unsafe.Pointer(&p)))); e != "" {
		return "", &OpError{Op: "build_config", Msg: e}
	}
	return cerr(p), nil
}

// NumThreads sets LibTorch's intra-op thread count when n > 0 and returns the count in use.
// Setting it sets OpenBLAS's thread pool to the same count (see BLASThreads): OpenBLAS otherwise
// keeps one thread a core whatever LibTorch's count, which costs time beside LibTorch's threads
// and gives other float bits on a machine with another number of cores.
func NumThreads(n int) int {
	if !fn.ready {
		return 0
	}
	var out int64
	cerr(call(fn.numThreads, uintptr(n), uintptr(unsafe.Pointer(&out))))
	return int(out)
}

// BLASThreads is the size of OpenBLAS's thread pool, or -1 when LibTorch's BLAS is not OpenBLAS
// (0 before Load).
func BLASThreads() int {
	if !fn.ready {
		return 0
	}
	var out int64
	cerr(call(fn.blasThreads, uintptr(unsafe.Pointer(&out))))
	return int(out)
}
