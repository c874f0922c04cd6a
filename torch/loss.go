package torch

import "unsafe"

// Reduction says how a loss combines its per-element values.
type Reduction int

// The values match at::Reduction.
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// IgnoreNone is an ignore index no class uses (PyTorch's default is -100).
const IgnoreNone int64 = -100

// CrossEntropy is torch.nn.functional.cross_entropy: logits [N, C] (or [N, C, d…]), target
// int64 class indices [N] (or [N, d…]); weight [C] or nil; targets equal to ignoreIndex add
// nothing (pass IgnoreNone when every target counts). With ReduceMean the sum is divided by the
// total weight of the counted targets, as in PyTorch.
func CrossEntropy(logits, target, weight *Tensor, ignoreIndex int64, red Reduction) *Tensor {
	return CrossEntropySmoothed(logits, target, weight, ignoreIndex, red, 0)
}

// CrossEntropySmoothed is CrossEntropy with label smoothing.
func CrossEntropySmoothed(logits, target, weight *Tensor, ignoreIndex int64, red Reduction, smoothing float64) *Tensor {
	s := pick(logits.scopeOf(), target.scopeOf(), weight.scopeOf())
	hl, err := logits.handle("cross_entropy")
	if err != nil {
		return errTensor(s, err)
	}
	ht, err := target.handle("cross_entropy")
	if err != nil {
		return errTensor(s, err)
	}
	hw, err := weight.optHandle("cross_entropy")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.crossEntropy, hl, ht, hw, uintptr(ignoreIndex), uintptr(red), f64(smoothing),
		uintptr(unsafe.Pointer(&r.h))), "cross_entropy", logits, target)
}

// BCEWithLogits is binary cross-entropy on logits x against targets y in [0, 1] (same shape);
// weight and posWeight may be nil.
func BCEWithLogits(x, y, weight, posWeight *Tensor, red Reduction) *Tensor {
	s := pick(x.scopeOf(), y.scopeOf(), weight.scopeOf(), posWeight.scopeOf())
	hx, err := x.handle("bce_with_logits")
	if err != nil {
		return errTensor(s, err)
	}
	hy, err := y.handle("bce_with_logits")
	if err != nil {
		return errTensor(s, err)
	}
	hw, err := weight.optHandle("bce_with_logits")
	if err != nil {
		return errTensor(s, err)
	}
	hp, err := posWeight.optHandle("bce_with_logits")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.bceWithLogits, hx, hy, hw, hp, uintptr(red), uintptr(unsafe.Pointer(&r.h))),
		"bce_with_logits", x, y)
}

func pairLoss(op uintptr, name string, x, y *Tensor, red Reduction, beta float64) *Tensor {
	s := pick(x.scopeOf(), y.scopeOf())
	hx, err := x.handle(name)
	if err != nil {
		return errTensor(s, err)
	}
	hy, err := y.handle(name)
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.pairLoss, op, hx, hy, uintptr(red), f64(beta), uintptr(unsafe.Pointer(&r.h))), name, x, y)
}

// L1Loss is the mean (or sum, or none) of |x - y|; x and y must have the same shape.
func L1Loss(x, y *Tensor, red Reduction) *Tensor { return pairLoss(0, "l1_loss", x, y, red, 0) }

// MSELoss is the mean squared error.
func MSELoss(x, y *Tensor, red Reduction) *Tensor { return pairLoss(1, "mse_loss", x, y, red, 0) }

// SmoothL1Loss is the Huber-like smooth L1 with threshold beta.
func SmoothL1Loss(x, y *Tensor, red Reduction, beta float64) *Tensor {
	return pairLoss(2, "smooth_l1_loss", x, y, red, beta)
}
