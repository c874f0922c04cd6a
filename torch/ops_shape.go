package torch

import "unsafe"

// Shape ops. Views (View, Transpose, Narrow, Slice, Select, Expand, Permute, Squeeze, Unsqueeze)
// share storage with their input, as in PyTorch.

const (
	shapeReshape = iota
	shapeView
	shapeExpand
	shapeRepeat
	shapePermute
	shapeCount // VLP_SHAPE_COUNT
)

func (t *Tensor) shapeOp(op uintptr, name string, dims []int64) *Tensor {
	h, err := t.handle(name)
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.shapeOp, op, h, uintptr(unsafe.Pointer(unsafe.SliceData(dims))), uintptr(len(dims)), uintptr(unsafe.Pointer(&r.h))), name, t)
}

// Reshape returns t with the given shape (one size may be -1), a view when possible.
func (t *Tensor) Reshape(shape ...int64) *Tensor { return t.shapeOp(shapeReshape, "reshape", shape) }

// View is Reshape that must not copy.
func (t *Tensor) View(shape ...int64) *Tensor { return t.shapeOp(shapeView, "view", shape) }

// Expand broadcasts size-1 dims to shape (-1 keeps a size), as a view.
func (t *Tensor) Expand(shape ...int64) *Tensor { return t.shapeOp(shapeExpand, "expand", shape) }

// Repeat tiles t reps[i] times along dim i (torch.Tensor.repeat).
func (t *Tensor) Repeat(reps ...int64) *Tensor { return t.shapeOp(shapeRepeat, "repeat", reps) }

// Permute reorders the dims.
func (t *Tensor) Permute(dims ...int64) *Tensor { return t.shapeOp(shapePermute, "permute", dims) }

func (t *Tensor) int3(f uintptr, name string, a, b, c int64, nargs int) *Tensor {
	h, err := t.handle(name)
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	var res uintptr
	switch nargs {
	case 1:
		res = call(f, h, uintptr(a), uintptr(unsafe.Pointer(&r.h)))
	case 2:
		res = call(f, h, uintptr(a), uintptr(b), uintptr(unsafe.Pointer(&r.h)))
	default:
		res = call(f, h, uintptr(a), uintptr(b), uintptr(c), uintptr(unsafe.Pointer(&r.h)))
	}
	return finish(t.scope, r, res, name, t)
}

// Transpose swaps two dims (a view).
func (t *Tensor) Transpose(d0, d1 int64) *Tensor {
	return t.int3(fn.transpose, "transpose", d0, d1, 0, 2)
}

// Narrow is length elements of dim from start (a view).
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	return t.int3(fn.narrow, "narrow", dim, start, length, 3)
}

// Slice is t[start:end:step] along dim (a view); end may exceed the size.
func (t *Tensor) Slice(dim, start, end, step int64) *Tensor {
	h, err := t.handle("slice")
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.slice, h, uintptr(dim), uintptr(start), uintptr(end), uintptr(step),
		uintptr(unsafe.Pointer(&r.h))), "slice", t)
}

// Select is t[..., index, ...] along dim, dropping that dim (a view).
func (t *Tensor) Select(dim, index int64) *Tensor {
	return t.int3(fn.selectOp, "select", dim, index, 0, 2)
}

// Unsqueeze inserts a size-1 dim at dim.
func (t *Tensor) Unsqueeze(dim int64) *Tensor { return t.int3(fn.unsqueeze, "unsqueeze", dim, 0, 0, 1) }

// Squeeze drops every size-1 dim.
func (t *Tensor) Squeeze() *Tensor { return t.int3(fn.squeeze, "squeeze", 0, 1, 0, 2) }

// SqueezeDim drops dim if its size is 1.
func (t *Tensor) SqueezeDim(dim int64) *Tensor { return t.int3(fn.squeeze, "squeeze", dim, 0, 0, 2) }

// Flatten merges dims start..end (inclusive; -1 is the last).
func (t *Tensor) Flatten(start, end int64) *Tensor {
	return t.int3(fn.flatten, "flatten", start, end, 0, 2)
}

// Tril keeps the lower triangle of the last two dims from diagonal k.
func (t *Tensor) Tril(k int64) *Tensor { return t.int3(fn.tril, "tril", k, 0, 0, 2) }

// Triu keeps the upper triangle of the last two dims from diagonal k.
func (t *Tensor) Triu(k int64) *Tensor { return t.int3(fn.tril, "triu", k, 1, 0, 2) }

// OneHot is the int64 one-hot encoding of an int64 tensor with classes classes.
func (t *Tensor) OneHot(classes int64) *Tensor { return t.int3(fn.oneHot, "one_hot", classes, 0, 0, 1) }

// Cumsum is the running sum along dim.
func (t *Tensor) Cumsum(dim int64) *Tensor { return t.int3(fn.cumsum, "cumsum", dim, 0, 0, 1) }

func (t *Tensor) withIndex(f uintptr, name string, dim int64, idx *Tensor) *Tensor {
	s := pick(t.scopeOf(), idx.scopeOf())
	h, err := t.handle(name)
	if err != nil {
		return errTensor(s, err)
	}
	hi, err := idx.handle(name)
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(f, h, uintptr(dim), hi, uintptr(unsafe.Pointer(&r.h))), name, t, idx)
}

// IndexSelect picks the entries idx (int64, 1-d) along dim.
func (t *Tensor) IndexSelect(dim int64, idx *Tensor) *Tensor {
	return t.withIndex(fn.indexSelect, "index_select", dim, idx)
}

// Gather is torch.gather: out[i][j] = t[i][idx[i][j]] for dim 1.
func (t *Tensor) Gather(dim int64, idx *Tensor) *Tensor {
	return t.withIndex(fn.gather, "gather", dim, idx)
}

// ScatterAdd returns a copy of t with src added at idx along dim (torch.scatter_add).
func (t *Tensor) ScatterAdd(dim int64, idx, src *Tensor) *Tensor {
	s := pick(t.scopeOf(), idx.scopeOf(), src.scopeOf())
	h, err := t.handle("scatter_add")
	if err != nil {
		return errTensor(s, err)
	}
	hi, err := idx.handle("scatter_add")
	if err != nil {
		return errTensor(s, err)
	}
	hs, err := src.handle("scatter_add")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.scatterAdd, h, uintptr(dim), hi, hs, uintptr(unsafe.Pointer(&r.h))), "scatter_add", t, idx, src)
}

// MaskedSelect is t[mask] for a bool mask over t's leading dims: the selected rows, stacked.
func (t *Tensor) MaskedSelect(mask *Tensor) *Tensor {
	s := pick(t.scopeOf(), mask.scopeOf())
	h, err := t.handle("masked_select")
	if err != nil {
		return errTensor(s, err)
	}
	hm, err := mask.handle("masked_select")
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	return finish(s, r, call(fn.maskedSelect, h, hm, uintptr(unsafe.Pointer(&r.h))), "masked_select", t, mask)
}

// Nonzero is the [N, Dim] int64 indices of the non-zero elements.
func (t *Tensor) Nonzero() *Tensor {
	h, err := t.handle("nonzero")
	if err != nil {
		return errTensor(t.scopeOf(), err)
	}
	r := &Tensor{}
	return finish(t.scope, r, call(fn.nonzero, h, uintptr(unsafe.Pointer(&r.h))), "nonzero", t)
}

// handles collects the handles of ts and the youngest of their scopes.
func handles(name string, ts []*Tensor) ([]uintptr, *Scope, error) {
	var s *Scope
	for _, t := range ts {
		if t != nil {
			s = pick(s, t.scope)
		}
	}
	hs := make([]uintptr, len(ts))
	for i, t := range ts {
		h, err := t.handle(name)
		if err != nil {
			return nil, s, err
		}
		hs[i] = h
	}
	return hs, s, nil
}

func catOp(op uintptr, name string, ts []*Tensor, dim int64) *Tensor {
	hs, s, err := handles(name, ts)
	if err != nil {
		return errTensor(s, err)
	}
	r := &Tensor{}
	res := call(fn.cat, op, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)), uintptr(dim),
		uintptr(unsafe.Pointer(&r.h)))
	return finish(s, r, res, name, ts...)
}

// Cat concatenates ts along dim.
func Cat(ts []*Tensor, dim int64) *Tensor { return catOp(0, "cat", ts, dim) }

// Stack stacks ts along a new dim.
func Stack(ts []*Tensor, dim int64) *Tensor { return catOp(1, "stack", ts, dim) }

// Split cuts t along dim into pieces of the given sizes. On error every piece carries it.
func (t *Tensor) Split(sizes []int64, dim int64) []*Tensor {
	out := make([]*Tensor, len(sizes))
	h, err := t.handle("split")
	if err == nil {
		hs := make([]uintptr, len(sizes))
		res := call(fn.split, h, uintptr(unsafe.Pointer(unsafe.SliceData(sizes))), uintptr(len(sizes)), uintptr(dim), uintptr(unsafe.Pointer(unsafe.SliceData(hs))))
		if res == 0 {
			for i := range out {
				out[i] = &Tensor{h: hs[i]}
				adopt(t.scope, out[i])
			}
			return out
		}
		err = nativeErr(res, "split", t)
	}
	for i := range out {
		out[i] = errTensor(t.scopeOf(), err)
	}
	return out
}

// Chunk splits t into n nearly equal pieces along dim (the last may be smaller), like torch.chunk.
func (t *Tensor) Chunk(n int, dim int64) []*Tensor {
	size := t.Size(int(dim))
	if size < 0 || n <= 0 {
		out := make([]*Tensor, max(n, 1))
		err := t.Err()
		if err == nil {
			err = &OpError{Op: "chunk", Shapes: [][]int64{t.Shape()}, Msg: "bad dim or chunk count"}
		}
		for i := range out {
			out[i] = errTensor(t.scopeOf(), err)
		}
		return out
	}
	step := (size + int64(n) - 1) / int64(n)
	var sizes []int64
	for left := size; left > 0; left -= step {
		sizes = append(sizes, min(step, left))
	}
	return t.Split(sizes, dim)
}
