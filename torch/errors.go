package torch

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of loading: Load wraps these.
var (
	// ErrLibraryNotFound: no libvlptorch.so at any place Load looks.
	ErrLibraryNotFound = errors.New("torch: library not found")
	// ErrLibraryOpen: the file exists but the dynamic loader cannot open it (not a shared
	// library, the wrong architecture, or LibTorch's own libraries missing).
	ErrLibraryOpen = errors.New("torch: cannot open the library")
	// ErrNotShim: the library opened but is not libvlptorch.so (it has no vlp_abi), or is one
	// built before the ABI was versioned.
	ErrNotShim = errors.New("torch: not a libvlptorch.so")
	// ErrABIMismatch: the library speaks another ABI version, or its op tables differ from this
	// binary's.
	ErrABIMismatch = errors.New("torch: library ABI mismatch")
	// ErrNotLoaded: an op ran before Load succeeded.
	ErrNotLoaded = errors.New("torch: library not loaded (call torch.Load first)")
)

// ErrDevice: CheckDevice was asked for a device the loaded LibTorch cannot drive.
var ErrDevice = errors.New("torch: device not available")

// Errors of using a tensor: ops wrap these with the op's name.
var (
	// ErrClosed: the tensor (or its scope, or the tensor a view borrows) was closed.
	ErrClosed = errors.New("use of a closed tensor")
	// ErrNilTensor: a nil *Tensor where a tensor is required.
	ErrNilTensor = errors.New("nil tensor")
	// ErrScopeClosed: a tensor was created in a scope after its Close.
	ErrScopeClosed = errors.New("scope is closed")
)

// OpError is the error of a native op that failed: the op, the shapes of its tensor inputs and
// LibTorch's message, e.g.
// "torch: matmul: shapes [2 3] and [4 5]: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)".
type OpError struct {
	Op     string
	Shapes [][]int64
	Msg    string
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("torch: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch len(e.Shapes) {
	case 0:
	case 1:
		b.WriteString("shape ")
		b.WriteString(fmtShape(e.Shapes[0]))
		b.WriteString(": ")
	default:
		b.WriteString("shapes ")
		for i, s := range e.Shapes {
			if i > 0 {
				if i == len(e.Shapes)-1 {
					b.WriteString(" and ")
				} else {
					b.WriteString(", ")
				}
			}
			b.WriteString(fmtShape(s))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func fmtShape(s []int64) string {
	if s == nil {
		return "[?]"
	}
	return strings.ReplaceAll(fmt.Sprint(s), ",", "")
}

// opErr wraps a usage error (closed, nil) with the op's name.
func opErr(op string, err error) error {
	return fmt.Errorf("torch: %s: %w", op, err)
}
