package torch

import "unsafe"

// Conv2dOptions configures Conv2d. Zero values mean stride 1, no padding, dilation 1, 1 group.
type Conv2dOptions struct {
	Stride, Padding, Dilation [2]int64 // [h, w]
	Groups                    int64
}

func orOne(v int64) int64 {
	if v == 0 {
		return 1
	}
	return v
}

// Conv2d is a 2-d convolution: x [N, Cin, H, W], w [Cout, Cin/groups, kH, kW], b [Cout] or nil.
func Conv2d(x, w, b *Tensor, o Conv2dOptions) *Tensor {
	s := pick(x.scopeOf(), w.scopeOf(), b.scopeOf())
	hx, err := x.handle("conv2d")
	if err != nil {
		return errTensor(s, err)
	}
	hw, err := w.handle("conv2d")
	if err != nil {
		return errTensor(s, err)
	}
	hb, err := b.optHandle("conv2d")
	if err != nil {
		return errTensor(s, err)
	}
	p := [6]int64{orOne(o.Stride[0]), orOne(o.Stride[1]), o.Padding[0], o.Padding[1], orOne(o.Dilation[0]), orOne(o.Dilation[1])}
	r := &Tensor{}
	return finish(s, r, call(fn.conv2d, hx, hw, hb, uintptr(unsafe.Pointer(&p)), uintptr(orOne(o.Groups)),
		uintptr(unsafe.Pointer(&r.h))), "conv2d", x, w)
}

// BatchNormMode picks how BatchNorm normalises.
type BatchNormMode int

const (
	// BatchNormTrain uses the batch's statistics and updates the running ones in place.
	BatchNormTrain BatchNormMode = iota
	// BatchNormEval uses the running statistics.
	BatchNormEval
	// BatchNormFrozen is DETR's FrozenBatchNorm2d: running statistics, weight and bias folded
	// into one constant scale and shift (no statistic is ever updated).
	BatchNormFrozen
)

// BatchNorm normalises x [N, C, …] per channel. w, b (affine, [C]) may be nil; runMean and
// runVar ([C]) may be nil in train mode only.
func BatchNorm(x, w, b, runMean, runVar *Tensor, mode BatchNormMode, momentum, eps float64) *Tensor {
	s := pick(x.scopeOf(), w.scopeOf(), b.scopeOf())
	hx, err := x.handle("batch_norm")
	if err != nil {
		return errTensor(s, err)
	}
	var hs [4]uintptr
	for i, t := range []*Tensor{w, b, runMean, runVar} {
		if hs[i], err = t.optHandle("batch_norm"); err != nil {
			return errTensor(s, err)
		}
	}
	r := &Tensor{}
	return finish(s, r, call(fn.batchNorm, hx, hs[0], hs[1], hs[2], hs[3], uintptr(mode), f64(momentum), f64(eps),
		uintptr(unsafe.Pointer(&r.h))), "batch_norm", x, w, runMean)
}

// MaxPool2dOptions configures MaxPool2d; a zero Stride means the kernel size, zero Dilation 1.
type MaxPool2dOptions struct {
	Kernel, Stride, Padding, Dilation [2]int64
	CeilMode                          bool
}

// MaxPool2d is 2-d max pooling over x [N, C, H, W].
func MaxPool2d(x *Tensor, o MaxPool2dOptions) *Tensor {
	h, err := x.handle("max_pool2d")
	if err != nil {
		return errTensor(x.scopeOf(), err)
	}
	st := o.Stride
	if st[0] == 0 {
		st[0] = o.Kernel[0]
	}
	if st[1] == 0 {
		st[1] = o.Kernel[1]
	}
	p := [8]int64{o.Kernel[0], o.Kernel[1], st[0], st[1], o.Padding[0], o.Padding[1], orOne(o.Dilation[0]), orOne(o.Dilation[1])}
	r := &Tensor{}
	return finish(x.scope, r, call(fn.maxPool2d, h, uintptr(unsafe.Pointer(&p)), b2u(o.CeilMode), uintptr(unsafe.Pointer(&r.h))),
		"max_pool2d", x)
}

// AdaptiveAvgPool2d averages x [N, C, H, W] down to [N, C, oh, ow].
func AdaptiveAvgPool2d(x *Tensor, oh, ow int64) *Tensor {
	h, err := x.handle("adaptive_avg_pool2d")
	if err != nil {
		return errTensor(x.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(x.scope, r, call(fn.adaptiveAvgPool2d, h, uintptr(oh), uintptr(ow), uintptr(unsafe.Pointer(&r.h))),
		"adaptive_avg_pool2d", x)
}

// Softmax along dim.
func (t *Tensor) Softmax(dim int64) *Tensor { return t.int3(fn.softmax, "softmax", dim, 0, 0, 2) }

// LogSoftmax along dim.
func (t *Tensor) LogSoftmax(dim int64) *Tensor {
	return t.int3(fn.softmax, "log_softmax", dim, 1, 0, 2)
}

// LayerNorm normalises over the trailing normalizedShape dims; w and b may be nil.
func LayerNorm(x *Tensor, normalizedShape []int64, w, b *Tensor, eps float64) *Tensor {
	s := pick(x.scopeOf(), w.scopeOf(), b.scopeOf())
	hx, err := x.handle("layer_norm")
	if err != nil {
		return errTensor(s, err)
	}
	hw, err := w.optHandle("layer_norm")
	if err != nil {
		return errTensor(s, err)
	}
	hb, err := b.optHandle("layer_norm")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.layerNorm, hx, uintptr(unsafe.Pointer(unsafe.SliceData(normalizedShape))), uintptr(len(normalizedShape)), hw, hb, f64(eps),
		uintptr(unsafe.Pointer(&r.h))), "layer_norm", x, w)
}

// Embedding looks up rows of w [V, D] for int64 idx; rows at paddingIdx get no gradient
// (paddingIdx < 0: none).
func Embedding(w, idx *Tensor, paddingIdx int64) *Tensor {
	s := pick(w.scopeOf(), idx.scopeOf())
	hw, err := w.handle("embedding")
	if err != nil {
		return errTensor(s, err)
	}
	hi, err := idx.handle("embedding")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.embedding, hw, hi, uintptr(paddingIdx), uintptr(unsafe.Pointer(&r.h))), "embedding", w, idx)
}

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p) when train is
// true; the mask comes from g (nil: the default generator of x's device). Not training, it
// returns x unchanged (a new handle).
func Dropout(x *Tensor, p float64, train bool, g *Generator) *Tensor {
	h, err := x.handle("dropout")
	if err != nil {
		return errTensor(x.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(x.scope, r, call(fn.dropout, h, f64(p), b2u(train), g.handle(), uintptr(unsafe.Pointer(&r.h))), "dropout", x)
}

// InterpolateNearest resizes the last two dims of x [N, C, H, W] to [oh, ow] by nearest
// neighbour; any dtype, bool masks included.
func InterpolateNearest(x *Tensor, oh, ow int64) *Tensor {
	h, err := x.handle("interpolate")
	if err != nil {
		return errTensor(x.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(x.scope, r, call(fn.interpolateNearest, h, uintptr(oh), uintptr(ow), uintptr(unsafe.Pointer(&r.h))),
		"interpolate", x)
}
