package model

import (
	"errors"
	"fmt"

	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// ErrStateDict is wrapped by every failure to read or apply a state dict.
var ErrStateDict = errors.New("model: state dict")

// HostTensor is a float tensor read from a PyTorch file, contiguous row-major.
type HostTensor struct {
	Shape []int64
	Data  []float32
}

// ReadStateDict reads a PyTorch state dict (torch.save of a dict or an
// OrderedDict of tensors, zip or legacy format) in pure Go, with no
// LibTorch. Float tensors (fp16, fp32, fp64) are returned as float32;
// integer entries such as BatchNorm's num_batches_tracked are skipped.
func ReadStateDict(path string) (map[string]HostTensor, error) {
	obj, err := pytorch.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrStateDict, path, err)
	}
	out := map[string]HostTensor{}
	add := func(k, v any) error {
		name, ok := k.(string)
		if !ok {
			return fmt.Errorf("%w: %s: key %v is not a string", ErrStateDict, path, k)
		}
		t, ok := v.(*pytorch.Tensor)
		if !ok {
			return fmt.Errorf("%w: %s: %q is a %T, not a tensor", ErrStateDict, path, name, v)
		}
		h, ok, err := hostTensor(t)
		if err != nil {
			return fmt.Errorf("%w: %s: %q: %v", ErrStateDict, path, name, err)
		}
		if ok {
			out[name] = h
		}
		return nil
	}
	switch d := obj.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			ent := e.Value.(*types.OrderedDictEntry)
			if err := add(ent.Key, ent.Value); err != nil {
				return nil, err
			}
		}
	case *types.Dict:
		for _, ent := range *d {
			if err := add(ent.Key, ent.Value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: %s: top-level object is a %T, want a dict of tensors", ErrStateDict, path, obj)
	}
	return out, nil
}

// hostTensor copies t into contiguous float32; ok is false for non-float data.
func hostTensor(t *pytorch.Tensor) (h HostTensor, ok bool, err error) {
	var at func(i int) float32
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		at = func(i int) float32 { return s.Data[i] }
	case *pytorch.HalfStorage:
		at = func(i int) float32 { return s.Data[i] }
	case *pytorch.BFloat16Storage:
		at = func(i int) float32 { return s.Data[i] }
	case *pytorch.DoubleStorage:
		at = func(i int) float32 { return float32(s.Data[i]) }
	default:
		return h, false, nil
	}
	n := 1
	h.Shape = make([]int64, len(t.Size))
	for i, s := range t.Size {
		h.Shape[i] = int64(s)
		n *= s
	}
	if len(t.Stride) != len(t.Size) {
		return h, false, fmt.Errorf("stride %v does not fit size %v", t.Stride, t.Size)
	}
	h.Data = make([]float32, n)
	idx := make([]int, len(t.Size))
	for k := 0; k < n; k++ {
		off := t.StorageOffset
		for d, i := range idx {
			off += i * t.Stride[d]
		}
		h.Data[k] = at(off)
		for d := len(idx) - 1; d >= 0; d-- { // odometer over the shape
			idx[d]++
			if idx[d] < t.Size[d] {
				break
			}
			idx[d] = 0
		}
	}
	return h, true, nil
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
