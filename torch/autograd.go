package torch

import (
	"runtime"
	"unsafe"
)

// RequiresGrad turns autograd recording for t on or off (t must be a leaf) and returns t; a
// failure becomes t's error.
func (t *Tensor) RequiresGrad(on bool) *Tensor {
	h, err := t.handle("requires_grad")
	if err != nil {
		return t
	}
	if r := call(fn.setRequiresGrad, h, b2u(on)); r != 0 {
		t.err = nativeErr(r, "requires_grad", t)
		if t.scope != nil {
			t.scope.noteErr(t.err)
		}
	}
	return t
}

// Backward computes the gradients of the scalar t with respect to every leaf that requires
// them, accumulating into their Grad, and frees the graph.
func (t *Tensor) Backward() error { return t.backward(nil, false) }

// BackwardWith is Backward for a non-scalar t, seeded with grad (t's shape); retainGraph keeps
// the graph for another backward pass.
func (t *Tensor) BackwardWith(grad *Tensor, retainGraph bool) error {
	return t.backward(grad, retainGraph)
}

func (t *Tensor) backward(grad *Tensor, retain bool) error {
	h, err := t.handle("backward")
	if err != nil {
		return err
	}
	hg, err := grad.optHandle("backward")
	if err != nil {
		return err
	}
	if r := call(fn.backward, h, hg, b2u(retain)); r != 0 {
		return nativeErr(r, "backward", t)
	}
	return nil
}

// Grad is t's accumulated gradient, or nil when it has none. The result shares storage with
// the gradient and, like any op result, lives in t's scope (owned when t is owned: Close it).
func (t *Tensor) Grad() *Tensor {
	h, err := t.handle("grad")
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	if res := call(fn.grad, h, uintptr(unsafe.Pointer(&r.h))); res != 0 {
		return errTensor(t.scope, nativeErr(res, "grad", t))
	}
	if r.h == 0 {
		return nil
	}
	adopt(t.scope, r)
	return r
}

// SetGrad replaces t's gradient with g (same shape, dtype and device; nil removes it).
func (t *Tensor) SetGrad(g *Tensor) error {
	h, err := t.handle("set_grad")
	if err != nil {
		return err
	}
	hg, err := g.optHandle("set_grad")
	if err != nil {
		return err
	}
	if r := call(fn.setGrad, h, hg); r != 0 {
		return nativeErr(r, "set_grad", t, g)
	}
	return nil
}

// ZeroGrad drops the gradients of params (PyTorch's zero_grad(set_to_none=True)): the next
// backward writes fresh ones, and flattening reads missing ones as zeros.
func ZeroGrad(params []*Tensor) error { return zeroGrad(params, true) }

// ZeroGradInPlace zeroes existing gradients in place instead of dropping them.
func ZeroGradInPlace(params []*Tensor) error { return zeroGrad(params, false) }

func zeroGrad(params []*Tensor, none bool) error {
	hs, _, err := handles("zero_grad", params)
	if err != nil {
		return err
	}
	if r := call(fn.zeroGrad, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)), b2u(none)); r != 0 {
		return nativeErr(r, "zero_grad")
	}
	return nil
}

// NoGrad runs f with autograd recording off. Grad mode is per OS thread in LibTorch, so f runs
// on the calling goroutine locked to its thread; ops that f starts on other goroutines record.
func NoGrad(f func()) {
	if !fn.ready {
		f()
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var prev int64
	cerr(call(fn.setGradEnabled, 0, uintptr(unsafe.Pointer(&prev))))
	defer func() { cerr(call(fn.setGradEnabled, uintptr(prev), 0)) }()
	f()
}

// Autocast runs f in an automatic mixed-precision region: on CUDA (and, for BFloat16, on the
// CPU) matmuls, convolutions and attention run in dt while reductions and losses stay float32,
// as torch.autocast does. Like NoGrad it is per thread: f runs locked to the calling thread.
func Autocast(dt DType, f func()) error {
	if !fn.ready {
		return ErrNotLoaded
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var state int64
	if e := cerr(call(fn.autocastEnter, uintptr(dt), uintptr(unsafe.Pointer(&state)))); e != "" {
		return &OpError{Op: "autocast", Msg: e}
	}
	defer func() { cerr(call(fn.autocastExit, uintptr(state))) }()
	f()
	return nil
}
