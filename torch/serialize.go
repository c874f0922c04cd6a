package torch

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"unsafe"
)

// Serialize encodes t (copied to the CPU, detached) as bytes that Deserialize reads back
// exactly: dtype, shape and values. The format is torch.save's pickle, so Python's torch.load
// reads it too.
func Serialize(t *Tensor) ([]byte, error) {
	h, err := t.handle("serialize")
	if err != nil {
		return nil, err
	}
	b := &Tensor{}
	if r := call(fn.serialize, h, uintptr(unsafe.Pointer(&b.h))); r != 0 {
		return nil, nativeErr(r, "serialize", t)
	}
	defer b.Close()
	return b.Uint8s()
}

// Deserialize decodes bytes from Serialize into a new tensor on dev, in s (nil: owned).
func Deserialize(s *Scope, data []byte, dev Device) *Tensor {
	t, err := newIn(s, "deserialize")
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.deserialize, uintptr(unsafe.Pointer(unsafe.SliceData(data))), uintptr(len(data)), dev.code(),
		uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, "deserialize", nil)
}

// PickleSave writes a name → tensor dict (CPU copies) with LibTorch's pickler, so Python's
// torch.load(f) returns a dict of tensors. Names are written sorted. PyTorch ≥ 2.6 loads with
// weights_only=True by default and must be told to allow the type tag LibTorch writes:
//
//	from torch.jit._pickle import restore_type_tag
//	with torch.serialization.safe_globals([restore_type_tag]): d = torch.load(f)
func PickleSave(w io.Writer, tensors map[string]*Tensor) error {
	b, err := PickleBytes(tensors)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, bytes.NewReader(b))
	return err
}

// PickleBytes is PickleSave into memory.
func PickleBytes(tensors map[string]*Tensor) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	var packed []byte
	hs := make([]uintptr, len(names))
	for i, n := range names {
		h, err := tensors[n].handle("pickle_save")
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", n, err)
		}
		hs[i] = h
		packed = append(packed, n...)
		packed = append(packed, 0)
	}
	packed = append(packed, 0)
	b := &Tensor{}
	if r := call(fn.pickleSave, uintptr(unsafe.Pointer(unsafe.SliceData(packed))), uintptr(unsafe.Pointer(unsafe.SliceData(hs))),
		uintptr(len(hs)), uintptr(unsafe.Pointer(&b.h))); r != 0 {
		return nil, nativeErr(r, "pickle_save")
	}
	defer b.Close()
	return b.Uint8s()
}
