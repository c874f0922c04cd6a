package torch

import (
	"fmt"
	"runtime"
	"unsafe"
)

// ParamGroup is a set of parameters sharing AdamW hyper-parameters (e.g. a lower LR for the
// backbone). NewParamGroup fills PyTorch's defaults.
type ParamGroup struct {
	Params      []*Tensor
	LR          float64
	Beta1       float64 // default 0.9
	Beta2       float64 // default 0.999
	Eps         float64 // default 1e-8
	WeightDecay float64 // default 0.01, decoupled: p -= lr * wd * p
}

// NewParamGroup is a group with torch.optim.AdamW's defaults and the given LR.
func NewParamGroup(params []*Tensor, lr float64) ParamGroup {
	return ParamGroup{Params: params, LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

// Validate checks the hyper-parameters, naming the field at fault.
func (g ParamGroup) Validate() error {
	switch {
	case !(g.LR >= 0):
		return fmt.Errorf("torch: adamw: LR %v must be >= 0", g.LR)
	case !(g.Beta1 >= 0 && g.Beta1 < 1):
		return fmt.Errorf("torch: adamw: Beta1 %v must be in [0, 1)", g.Beta1)
	case !(g.Beta2 >= 0 && g.Beta2 < 1):
		return fmt.Errorf("torch: adamw: Beta2 %v must be in [0, 1)", g.Beta2)
	case !(g.Eps >= 0):
		return fmt.Errorf("torch: adamw: Eps %v must be >= 0", g.Eps)
	case !(g.WeightDecay >= 0):
		return fmt.Errorf("torch: adamw: WeightDecay %v must be >= 0", g.WeightDecay)
	}
	return nil
}

// AdamW is torch.optim.AdamW (amsgrad off) over parameter groups. Its state per parameter is
// exp_avg, exp_avg_sq (shaped like the parameter, created at its first step) and a step count.
// Parameters are numbered across groups in order; the optimizer holds its own references to
// them, so they stay valid for it even after the caller's handles close. Close frees it.
type AdamW struct {
	h      uintptr
	groups int
	params int
	numel  int64
}

// NewAdamW builds the optimizer.
func NewAdamW(groups []ParamGroup) (*AdamW, error) {
	if !fn.ready {
		return nil, ErrNotLoaded
	}
	o := &AdamW{}
	if e := cerr(call(fn.adamwNew, uintptr(unsafe.Pointer(&o.h)))); e != "" {
		return nil, &OpError{Op: "adamw", Msg: e}
	}
	runtime.SetFinalizer(o, (*AdamW).Close)
	for i, g := range groups {
		if err := g.Validate(); err != nil {
			o.Close()
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		hs, _, err := handles("adamw", g.Params)
		if err != nil {
			o.Close()
			return nil, fmt.Errorf("torch: adamw: group %d: %w", i, err)
		}
		r := call(fn.adamwAddGroup, o.h, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)), f64(g.LR),
			f64(g.Beta1), f64(g.Beta2), f64(g.Eps), f64(g.WeightDecay))
		if r != 0 {
			o.Close()
			return nil, fmt.Errorf("torch: adamw: group %d: %s", i, cerr(r))
		}
	}
	var c [3]int64
	cerr(call(fn.adamwCounts, o.h, uintptr(unsafe.Pointer(&c))))
	o.groups, o.params, o.numel = int(c[0]), int(c[1]), c[2]
	return o, nil
}

// Close frees the optimizer and its state.
func (o *AdamW) Close() {
	if o == nil || o.h == 0 {
		return
	}
	cerr(call(fn.adamwFree, o.h))
	o.h = 0
	runtime.SetFinalizer(o, nil)
}

func (o *AdamW) check(op string) error {
	if o == nil || o.h == 0 {
		return opErr(op, ErrClosed)
	}
	return nil
}

// Groups, NumParams and NumElements describe what the optimizer updates.
func (o *AdamW) Groups() int          { return o.groups }
func (o *AdamW) NumParams() int       { return o.params }
func (o *AdamW) NumElements() int64   { return o.numel }
func (o *AdamW) StateElements() int64 { return 2 * o.numel }

// Step updates every parameter that has a gradient; those without one keep their value and
// state, as in PyTorch.
func (o *AdamW) Step() error {
	if err := o.check("adamw_step"); err != nil {
		return err
	}
	if e := cerr(call(fn.adamwStep, o.h)); e != "" {
		return &OpError{Op: "adamw_step", Msg: e}
	}
	return nil
}

const (
	hpLR = iota
	hpBeta1
	hpBeta2
	hpEps
	hpWeightDecay
)

// SetFused chooses how a float32 CPU parameter is updated: in one pass over its memory (true,
// the default) or through LibTorch's ops, one pass per op (false). Both compute the same update
// with the same float operations in the same order; the ops' vector kernels may round a few
// elements differently. Parameters of other types and devices always take the ops.
func (o *AdamW) SetFused(fused bool) error {
	if err := o.check("adamw_set_fused"); err != nil {
		return err
	}
	v := uintptr(0)
	if fused {
		v = 1
	}
	if e := cerr(call(fn.adamwSetFused, o.h, v)); e != "" {
		return &OpError{Op: "adamw_set_fused", Msg: e}
	}
	return nil
}

// SetLR sets the learning rate of group (for schedules).
func (o *AdamW) SetLR(group int, lr float64) error {
	if err := o.check("adamw_set_lr"); err != nil {
		return err
	}
	if e := cerr(call(fn.adamwSetHparam, o.h, uintptr(group), hpLR, f64(lr))); e != "" {
		return &OpError{Op: "adamw_set_lr", Msg: e}
	}
	return nil
}

// LR is the learning rate of group.
func (o *AdamW) LR(group int) (float64, error) {
	if err := o.check("adamw_lr"); err != nil {
		return 0, err
	}
	var v float64
	if e := cerr(call(fn.adamwGetHparam, o.h, uintptr(group), hpLR, uintptr(unsafe.Pointer(&v)))); e != "" {
		return 0, &OpError{Op: "adamw_lr", Msg: e}
	}
	return v, nil
}

// State returns parameter i's exp_avg and exp_avg_sq (owned handles sharing storage with the
// state: Close them; nil before the parameter's first step) and its step count.
func (o *AdamW) State(i int) (expAvg, expAvgSq *Tensor, step int64, err error) {
	if err := o.check("adamw_state"); err != nil {
		return nil, nil, 0, err
	}
	m, v := &Tensor{}, &Tensor{}
	if e := cerr(call(fn.adamwGetState, o.h, uintptr(i), uintptr(unsafe.Pointer(&m.h)), uintptr(unsafe.Pointer(&v.h)),
		uintptr(unsafe.Pointer(&step)))); e != "" {
		return nil, nil, 0, &OpError{Op: "adamw_state", Msg: e}
	}
	if m.h == 0 {
		return nil, nil, step, nil
	}
	adopt(nil, m)
	adopt(nil, v)
	return m, v, step, nil
}

// SetState copies expAvg and expAvgSq (nil: zeros) into parameter i's state and sets its step.
func (o *AdamW) SetState(i int, expAvg, expAvgSq *Tensor, step int64) error {
	if err := o.check("adamw_set_state"); err != nil {
		return err
	}
	hm, err := expAvg.optHandle("adamw_set_state")
	if err != nil {
		return err
	}
	hv, err := expAvgSq.optHandle("adamw_set_state")
	if err != nil {
		return err
	}
	if r := call(fn.adamwSetState, o.h, uintptr(i), hm, hv, uintptr(step)); r != 0 {
		return nativeErr(r, "adamw_set_state", expAvg, expAvgSq)
	}
	return nil
}

func (o *AdamW) flatState(op string, dir uintptr, buf unsafe.Pointer, n int, dt DType, steps []int64) error {
	if err := o.check(op); err != nil {
		return err
	}
	if e := cerr(call(fn.adamwFlatState, o.h, dir, uintptr(buf), uintptr(n), uintptr(dt),
		uintptr(unsafe.Pointer(unsafe.SliceData(steps))), uintptr(len(steps)))); e != "" {
		return &OpError{Op: op, Msg: e}
	}
	return nil
}

// FlattenState writes the whole state into dst (StateElements long: for each parameter in
// order, exp_avg then exp_avg_sq) and the step counts into steps (NumParams long, or nil).
func (o *AdamW) FlattenState(dst []float32, steps []int64) error {
	return o.flatState("adamw_flatten_state", 0, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), Float32, steps)
}

// UnflattenState is the inverse of FlattenState.
func (o *AdamW) UnflattenState(src []float32, steps []int64) error {
	return o.flatState("adamw_unflatten_state", 1, unsafe.Pointer(unsafe.SliceData(src)), len(src), Float32, steps)
}

// FlattenStateBF16 is FlattenState into bfloat16 bits.
func (o *AdamW) FlattenStateBF16(dst []uint16, steps []int64) error {
	return o.flatState("adamw_flatten_state", 0, unsafe.Pointer(unsafe.SliceData(dst)), len(dst), BFloat16, steps)
}

// UnflattenStateBF16 is the inverse of FlattenStateBF16.
func (o *AdamW) UnflattenStateBF16(src []uint16, steps []int64) error {
	return o.flatState("adamw_unflatten_state", 1, unsafe.Pointer(unsafe.SliceData(src)), len(src), BFloat16, steps)
}

// ClipGradNorm scales the gradients of params so that their global 2-norm is at most maxNorm
// (torch.nn.utils.clip_grad_norm_) and returns the norm before clipping. Reading the norm
// waits for the device; ClipGradNormAsync does not.
func ClipGradNorm(params []*Tensor, maxNorm float64) (float64, error) {
	hs, _, err := handles("clip_grad_norm", params)
	if err != nil {
		return 0, err
	}
	var total float64
	if r := call(fn.clipGradNorm, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)), f64(maxNorm),
		uintptr(unsafe.Pointer(&total)), 0); r != 0 {
		return 0, nativeErr(r, "clip_grad_norm")
	}
	return total, nil
}

// ClipGradNormAsync is ClipGradNorm returning the norm as a 0-dim tensor in s, with no sync.
func ClipGradNormAsync(s *Scope, params []*Tensor, maxNorm float64) *Tensor {
	hs, _, err := handles("clip_grad_norm", params)
	if err != nil {
		return errTensor(s, err)
	}
	t, err := newIn(s, "clip_grad_norm")
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.clipGradNorm, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)), f64(maxNorm), 0,
		uintptr(unsafe.Pointer(&t.h)))
	return finish(s, t, r, "clip_grad_norm")
}
