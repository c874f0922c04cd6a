package torch

import "unsafe"

// Op codes of vlp_unary, vlp_binary and vlp_reduce (torch/csrc/vlp_torch.h).
const (
	uNeg = iota
	uSqrt
	uRsqrt
	uExp
	uLog
	uAbs
	uRelu
	uSigmoid
	uTanh
	uLogicalNot
	uContiguous
	uSin
	uCos
	uFloor
	uCeil
	uRound
	uSign
	uSum
	uMean
	uMin
	uMax
	uDetach
	uClone
	uZerosLike
	uOnesLike
	uReciprocal
	uGelu
	uGeluTanh
	uSilu
	uLog1p
	uAny
	uAll
	uSquare
	uIsNan
	uArgmax
	uLogSigmoid
	uChannelsLast
	uCount // the table's size, VLP_U_COUNT
)

const (
	bAdd = iota
	bSub
	bMul
	bDiv
	bPow
	bMinimum
	bMaximum
	bEq
	bNe
	bLt
	bLe
	bGt
	bGe
	bLogicalAnd
	bLogicalOr
	bMatmul
	bBmm
	bAtan2
	bRemainder
	bFloorDivide
	bRSub
	bCount // VLP_B_COUNT
)

const (
	rSum = iota
	rMean
	rAmax
	rAmin
	rLogSumExp
	rProd
	rAny
	rAll
	rNorm
	rVar
	rStd
	rCount // VLP_R_COUNT
)

func (t *Tensor) unary(op uintptr, name string) *Tensor {
	h, err := t.handle(name)
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.unary, op, h, uintptr(unsafe.Pointer(&r.h))), name, t)
}

func binary(op uintptr, name string, a, b *Tensor) *Tensor {
	s := pick(a.scopeOf(), b.scopeOf())
	ha, err := a.handle(name)
	if err != nil {
		return errTensor(s, err)
	}
	hb, err := b.handle(name)
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.binary, op, ha, hb, uintptr(unsafe.Pointer(&r.h))), name, a, b)
}

func (t *Tensor) scalarOp(op uintptr, name string, v float64) *Tensor {
	h, err := t.handle(name)
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.binaryScalar, op, h, f64(v), uintptr(unsafe.Pointer(&r.h))), name, t)
}

// Elementwise unary maths.
func (t *Tensor) Neg() *Tensor        { return t.unary(uNeg, "neg") }
func (t *Tensor) Sqrt() *Tensor       { return t.unary(uSqrt, "sqrt") }
func (t *Tensor) Rsqrt() *Tensor      { return t.unary(uRsqrt, "rsqrt") }
func (t *Tensor) Exp() *Tensor        { return t.unary(uExp, "exp") }
func (t *Tensor) Log() *Tensor        { return t.unary(uLog, "log") }
func (t *Tensor) Log1p() *Tensor      { return t.unary(uLog1p, "log1p") }
func (t *Tensor) Abs() *Tensor        { return t.unary(uAbs, "abs") }
func (t *Tensor) Sin() *Tensor        { return t.unary(uSin, "sin") }
func (t *Tensor) Cos() *Tensor        { return t.unary(uCos, "cos") }
func (t *Tensor) Floor() *Tensor      { return t.unary(uFloor, "floor") }
func (t *Tensor) Ceil() *Tensor       { return t.unary(uCeil, "ceil") }
func (t *Tensor) Round() *Tensor      { return t.unary(uRound, "round") }
func (t *Tensor) Sign() *Tensor       { return t.unary(uSign, "sign") }
func (t *Tensor) Reciprocal() *Tensor { return t.unary(uReciprocal, "reciprocal") }
func (t *Tensor) Square() *Tensor     { return t.unary(uSquare, "square") }
func (t *Tensor) IsNan() *Tensor      { return t.unary(uIsNan, "isnan") }
func (t *Tensor) LogicalNot() *Tensor { return t.unary(uLogicalNot, "logical_not") }

// Activations.
func (t *Tensor) Relu() *Tensor       { return t.unary(uRelu, "relu") }
func (t *Tensor) Sigmoid() *Tensor    { return t.unary(uSigmoid, "sigmoid") }
func (t *Tensor) LogSigmoid() *Tensor { return t.unary(uLogSigmoid, "log_sigmoid") }
func (t *Tensor) Tanh() *Tensor       { return t.unary(uTanh, "tanh") }
func (t *Tensor) Silu() *Tensor       { return t.unary(uSilu, "silu") }

// Gelu is the exact (erf) GELU; GeluTanh the tanh approximation.
func (t *Tensor) Gelu() *Tensor     { return t.unary(uGelu, "gelu") }
func (t *Tensor) GeluTanh() *Tensor { return t.unary(uGeluTanh, "gelu") }

// Contiguous is t laid out row-major (t itself, as a new handle, when it already is).
func (t *Tensor) Contiguous() *Tensor { return t.unary(uContiguous, "contiguous") }

// ChannelsLast is a 4-D [N,C,H,W] tensor laid out channels-last (NHWC in memory, PyTorch's
// torch.channels_last): the same shape and values, with the channels varying fastest. Convolutions,
// batch norm, pooling and elementwise ops keep the layout of their input, and GPU convolutions
// (tensor cores) run faster on it. It is recorded by autograd; IsContiguous is false for it (when
// C and H·W exceed 1), and Contiguous lays it out row-major again. Any other rank is an error.
func (t *Tensor) ChannelsLast() *Tensor { return t.unary(uChannelsLast, "channels_last") }

// Detach is t cut from the autograd graph (shares storage).
func (t *Tensor) Detach() *Tensor { return t.unary(uDetach, "detach") }

// Clone is a copy of t (recorded by autograd).
func (t *Tensor) Clone() *Tensor { return t.unary(uClone, "clone") }

// ZerosLike and OnesLike match t's shape, dtype and device.
func (t *Tensor) ZerosLike() *Tensor { return t.unary(uZerosLike, "zeros_like") }
func (t *Tensor) OnesLike() *Tensor  { return t.unary(uOnesLike, "ones_like") }

// Whole-tensor reductions to a 0-dim tensor.
func (t *Tensor) SumAll() *Tensor    { return t.unary(uSum, "sum") }
func (t *Tensor) MeanAll() *Tensor   { return t.unary(uMean, "mean") }
func (t *Tensor) MinAll() *Tensor    { return t.unary(uMin, "min") }
func (t *Tensor) MaxAll() *Tensor    { return t.unary(uMax, "max") }
func (t *Tensor) Any() *Tensor       { return t.unary(uAny, "any") }
func (t *Tensor) All() *Tensor       { return t.unary(uAll, "all") }
func (t *Tensor) ArgmaxAll() *Tensor { return t.unary(uArgmax, "argmax") }

// Binary ops broadcast like PyTorch. Each has a method and a function form.
func (t *Tensor) Add(b *Tensor) *Tensor         { return binary(bAdd, "add", t, b) }
func (t *Tensor) Sub(b *Tensor) *Tensor         { return binary(bSub, "sub", t, b) }
func (t *Tensor) Mul(b *Tensor) *Tensor         { return binary(bMul, "mul", t, b) }
func (t *Tensor) Div(b *Tensor) *Tensor         { return binary(bDiv, "div", t, b) }
func (t *Tensor) Pow(b *Tensor) *Tensor         { return binary(bPow, "pow", t, b) }
func (t *Tensor) Minimum(b *Tensor) *Tensor     { return binary(bMinimum, "minimum", t, b) }
func (t *Tensor) Maximum(b *Tensor) *Tensor     { return binary(bMaximum, "maximum", t, b) }
func (t *Tensor) Atan2(b *Tensor) *Tensor       { return binary(bAtan2, "atan2", t, b) }
func (t *Tensor) Remainder(b *Tensor) *Tensor   { return binary(bRemainder, "remainder", t, b) }
func (t *Tensor) FloorDivide(b *Tensor) *Tensor { return binary(bFloorDivide, "floor_divide", t, b) }
func (t *Tensor) Matmul(b *Tensor) *Tensor      { return binary(bMatmul, "matmul", t, b) }
func (t *Tensor) Bmm(b *Tensor) *Tensor         { return binary(bBmm, "bmm", t, b) }

// Comparisons give bool tensors.
func (t *Tensor) Eq(b *Tensor) *Tensor         { return binary(bEq, "eq", t, b) }
func (t *Tensor) Ne(b *Tensor) *Tensor         { return binary(bNe, "ne", t, b) }
func (t *Tensor) Lt(b *Tensor) *Tensor         { return binary(bLt, "lt", t, b) }
func (t *Tensor) Le(b *Tensor) *Tensor         { return binary(bLe, "le", t, b) }
func (t *Tensor) Gt(b *Tensor) *Tensor         { return binary(bGt, "gt", t, b) }
func (t *Tensor) Ge(b *Tensor) *Tensor         { return binary(bGe, "ge", t, b) }
func (t *Tensor) LogicalAnd(b *Tensor) *Tensor { return binary(bLogicalAnd, "logical_and", t, b) }
func (t *Tensor) LogicalOr(b *Tensor) *Tensor  { return binary(bLogicalOr, "logical_or", t, b) }

// Function forms of the binary ops.
func Add(a, b *Tensor) *Tensor     { return binary(bAdd, "add", a, b) }
func Sub(a, b *Tensor) *Tensor     { return binary(bSub, "sub", a, b) }
func Mul(a, b *Tensor) *Tensor     { return binary(bMul, "mul", a, b) }
func Div(a, b *Tensor) *Tensor     { return binary(bDiv, "div", a, b) }
func Pow(a, b *Tensor) *Tensor     { return binary(bPow, "pow", a, b) }
func Minimum(a, b *Tensor) *Tensor { return binary(bMinimum, "minimum", a, b) }
func Maximum(a, b *Tensor) *Tensor { return binary(bMaximum, "maximum", a, b) }
func Matmul(a, b *Tensor) *Tensor  { return binary(bMatmul, "matmul", a, b) }
func Bmm(a, b *Tensor) *Tensor     { return binary(bBmm, "bmm", a, b) }

// Ops with a Go scalar. An integral v on an integer tensor keeps the integer dtype.
func (t *Tensor) AddScalar(v float64) *Tensor  { return t.scalarOp(bAdd, "add", v) }
func (t *Tensor) SubScalar(v float64) *Tensor  { return t.scalarOp(bSub, "sub", v) }
func (t *Tensor) MulScalar(v float64) *Tensor  { return t.scalarOp(bMul, "mul", v) }
func (t *Tensor) DivScalar(v float64) *Tensor  { return t.scalarOp(bDiv, "div", v) }
func (t *Tensor) PowScalar(v float64) *Tensor  { return t.scalarOp(bPow, "pow", v) }
func (t *Tensor) RSubScalar(v float64) *Tensor { return t.scalarOp(bRSub, "rsub", v) } // v - t
func (t *Tensor) RemainderScalar(v float64) *Tensor {
	return t.scalarOp(bRemainder, "remainder", v)
}
func (t *Tensor) FloorDivideScalar(v float64) *Tensor {
	return t.scalarOp(bFloorDivide, "floor_divide", v)
}
func (t *Tensor) EqScalar(v float64) *Tensor { return t.scalarOp(bEq, "eq", v) }
func (t *Tensor) NeScalar(v float64) *Tensor { return t.scalarOp(bNe, "ne", v) }
func (t *Tensor) LtScalar(v float64) *Tensor { return t.scalarOp(bLt, "lt", v) }
func (t *Tensor) LeScalar(v float64) *Tensor { return t.scalarOp(bLe, "le", v) }
func (t *Tensor) GtScalar(v float64) *Tensor { return t.scalarOp(bGt, "gt", v) }
func (t *Tensor) GeScalar(v float64) *Tensor { return t.scalarOp(bGe, "ge", v) }

// ClampMin is max(t, v) elementwise; ClampMax is min(t, v).
func (t *Tensor) ClampMin(v float64) *Tensor { return t.scalarOp(bMaximum, "clamp_min", v) }
func (t *Tensor) ClampMax(v float64) *Tensor { return t.scalarOp(bMinimum, "clamp_max", v) }

// Clamp limits t to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor {
	h, err := t.handle("clamp")
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.clamp, h, 1, f64(lo), 1, f64(hi), uintptr(unsafe.Pointer(&r.h))), "clamp", t)
}

func (t *Tensor) reduce(op uintptr, name string, dims []int64, keepdim bool) *Tensor {
	h, err := t.handle(name)
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.reduce, op, h, uintptr(unsafe.Pointer(unsafe.SliceData(dims))), uintptr(len(dims)), b2u(keepdim),
		uintptr(unsafe.Pointer(&r.h))), name, t)
}

// Sum over dim (keepdim keeps it as size 1). SumDims reduces several dims.
func (t *Tensor) Sum(dim int64, keepdim bool) *Tensor {
	return t.reduce(rSum, "sum", []int64{dim}, keepdim)
}
func (t *Tensor) SumDims(dims []int64, keepdim bool) *Tensor {
	return t.reduce(rSum, "sum", dims, keepdim)
}

// Mean over dim; MeanDims over several.
func (t *Tensor) Mean(dim int64, keepdim bool) *Tensor {
	return t.reduce(rMean, "mean", []int64{dim}, keepdim)
}
func (t *Tensor) MeanDims(dims []int64, keepdim bool) *Tensor {
	return t.reduce(rMean, "mean", dims, keepdim)
}

// Amax and Amin: max/min values over dims (gradient spread evenly over ties).
func (t *Tensor) Amax(dims []int64, keepdim bool) *Tensor {
	return t.reduce(rAmax, "amax", dims, keepdim)
}
func (t *Tensor) Amin(dims []int64, keepdim bool) *Tensor {
	return t.reduce(rAmin, "amin", dims, keepdim)
}

// LogSumExp over dim, computed stably.
func (t *Tensor) LogSumExp(dim int64, keepdim bool) *Tensor {
	return t.reduce(rLogSumExp, "logsumexp", []int64{dim}, keepdim)
}

// Prod over dim.
func (t *Tensor) Prod(dim int64, keepdim bool) *Tensor {
	return t.reduce(rProd, "prod", []int64{dim}, keepdim)
}

// AnyDim and AllDim: logical reductions over dim.
func (t *Tensor) AnyDim(dim int64, keepdim bool) *Tensor {
	return t.reduce(rAny, "any", []int64{dim}, keepdim)
}
func (t *Tensor) AllDim(dim int64, keepdim bool) *Tensor {
	return t.reduce(rAll, "all", []int64{dim}, keepdim)
}

// Norm is the 2-norm over dims.
func (t *Tensor) Norm(dims []int64, keepdim bool) *Tensor {
	return t.reduce(rNorm, "norm", dims, keepdim)
}

// Var and Std over dims, population (biased) estimates as in normalisation layers.
func (t *Tensor) Var(dims []int64, keepdim bool) *Tensor { return t.reduce(rVar, "var", dims, keepdim) }
func (t *Tensor) Std(dims []int64, keepdim bool) *Tensor { return t.reduce(rStd, "std", dims, keepdim) }

// reduceIndex runs vlp_reduce_index; want selects values (1), indices (2) or both (3).
func (t *Tensor) reduceIndex(op uintptr, name string, dim int64, keepdim bool, want int) (*Tensor, *Tensor) {
	h, err := t.handle(name)
	if err != nil {
		e := errTensor(t.scopeOf(), err)
		return e, e
	}
	v, i := &Tensor{}, &Tensor{}
	var res uintptr
	switch want {
	case 1:
		res = call(fn.reduceIndex, op, h, uintptr(dim), b2u(keepdim), uintptr(unsafe.Pointer(&v.h)), 0)
	case 2:
		res = call(fn.reduceIndex, op, h, uintptr(dim), b2u(keepdim), 0, uintptr(unsafe.Pointer(&i.h)))
	default:
		res = call(fn.reduceIndex, op, h, uintptr(dim), b2u(keepdim), uintptr(unsafe.Pointer(&v.h)), uintptr(unsafe.Pointer(&i.h)))
	}
	if res != 0 {
		e := errTensor(t.scope, nativeErr(res, name, t))
		return e, e
	}
	if want&1 != 0 {
		adopt(t.scope, v)
	}
	if want&2 != 0 {
		adopt(t.scope, i)
	}
	return v, i
}

// Max is the maximum along dim; MaxWithIndices also gives where (int64).
func (t *Tensor) Max(dim int64, keepdim bool) *Tensor {
	v, _ := t.reduceIndex(0, "max", dim, keepdim, 1)
	return v
}
func (t *Tensor) MaxWithIndices(dim int64, keepdim bool) (values, indices *Tensor) {
	return t.reduceIndex(0, "max", dim, keepdim, 3)
}

// Min is the minimum along dim; MinWithIndices also gives where.
func (t *Tensor) Min(dim int64, keepdim bool) *Tensor {
	v, _ := t.reduceIndex(1, "min", dim, keepdim, 1)
	return v
}
func (t *Tensor) MinWithIndices(dim int64, keepdim bool) (values, indices *Tensor) {
	return t.reduceIndex(1, "min", dim, keepdim, 3)
}

// Argmax and Argmin along dim (int64).
func (t *Tensor) Argmax(dim int64, keepdim bool) *Tensor {
	_, i := t.reduceIndex(2, "argmax", dim, keepdim, 2)
	return i
}
func (t *Tensor) Argmin(dim int64, keepdim bool) *Tensor {
	_, i := t.reduceIndex(3, "argmin", dim, keepdim, 2)
	return i
}

// Sort along dim, ascending unless descending; indices are int64.
func (t *Tensor) Sort(dim int64, descending bool) (values, indices *Tensor) {
	op := uintptr(4)
	if descending {
		op = 5
	}
	return t.reduceIndex(op, "sort", dim, false, 3)
}

// Topk is the k largest (or smallest) entries along dim and their indices.
func (t *Tensor) Topk(k, dim int64, largest, sorted bool) (values, indices *Tensor) {
	h, err := t.handle("topk")
	if err != nil {
		e := errTensor(t.scopeOf(), err)
		return e, e
	}
	v, i := &Tensor{}, &Tensor{}
	res := call(fn.topk, h, uintptr(k), uintptr(dim), b2u(largest), b2u(sorted), uintptr(unsafe.Pointer(&v.h)),
		uintptr(unsafe.Pointer(&i.h)))
	if res != 0 {
		e := errTensor(t.scope, nativeErr(res, "topk", t))
		return e, e
	}
	adopt(t.scope, v)
	adopt(t.scope, i)
	return v, i
}

// Where picks a where cond is true, else b (broadcasting).
func Where(cond, a, b *Tensor) *Tensor {
	s := pick(cond.scopeOf(), a.scopeOf(), b.scopeOf())
	hc, err := cond.handle("where")
	if err != nil {
		return errTensor(s, err)
	}
	ha, err := a.handle("where")
	if err != nil {
		return errTensor(s, err)
	}
	hb, err := b.handle("where")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.where, hc, ha, hb, uintptr(unsafe.Pointer(&r.h))), "where", cond, a, b)
}

// MaskedFill is t with v wherever mask (bool, broadcastable) is true.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	s := pick(t.scopeOf(), mask.scopeOf())
	h, err := t.handle("masked_fill")
	if err != nil {
		return errTensor(s, err)
	}
	hm, err := mask.handle("masked_fill")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.maskedFill, h, hm, f64(v), uintptr(unsafe.Pointer(&r.h))), "masked_fill", t, mask)
}

// Linear is x @ w^T + b (b may be nil): w is [out, in].
func Linear(x, w, b *Tensor) *Tensor {
	s := pick(x.scopeOf(), w.scopeOf(), b.scopeOf())
	hx, err := x.handle("linear")
	if err != nil {
		return errTensor(s, err)
	}
	hw, err := w.handle("linear")
	if err != nil {
		return errTensor(s, err)
	}
	hb, err := b.optHandle("linear")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.linear, hx, hw, hb, uintptr(unsafe.Pointer(&r.h))), "linear", x, w, b)
}

// AddInPlace does t += alpha * b without recording autograd history (parameter updates).
func (t *Tensor) AddInPlace(b *Tensor, alpha float64) error {
	h, err := t.handle("add_")
	if err != nil {
		return err
	}
	hb, err := b.handle("add_")
	if err != nil {
		return err
	}
	if r := call(fn.add_, h, hb, f64(alpha)); r != 0 {
		return nativeErr(r, "add_", t, b)
	}
	return nil
}

// MulScalarInPlace does t *= v without recording autograd history.
func (t *Tensor) MulScalarInPlace(v float64) error {
	h, err := t.handle("mul_")
	if err != nil {
		return err
	}
	if r := call(fn.mulScalar_, h, f64(v)); r != 0 {
		return nativeErr(r, "mul_", t)
	}
	return nil
}
