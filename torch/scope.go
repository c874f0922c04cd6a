package torch

import (
	"log/slog"
	"runtime"
	"sync/atomic"
	"unsafe"
)

var scopeSeq atomic.Uint64

// Scope owns the temporaries of one step. Every tensor an op makes from scoped inputs belongs
// to the youngest (most recently created) of their scopes, and Close frees them all in one
// native call.
//
//	s := torch.NewScope()
//	defer s.Close()
//	y := torch.Linear(x, s.Use(w), s.Use(b)).Relu()
//	if err := s.Err(); err != nil { … }
//
// A Scope is not safe for concurrent use.
type Scope struct {
	seq    uint64 // creation order: results go to the youngest scope among an op's inputs
	ts     []*Tensor
	err    error
	closed bool
	buf    []uintptr
}

// NewScope returns an empty, open scope. Close it (typically with defer).
func NewScope() *Scope {
	s := &Scope{seq: scopeSeq.Add(1), ts: make([]*Tensor, 0, 64)}
	runtime.SetFinalizer(s, func(s *Scope) {
		if !s.closed && len(s.ts) > 0 {
			slog.Warn("torch: scope garbage-collected without Close (native memory leaked)", "tensors", len(s.ts))
		}
	})
	return s
}

// Err is the first error of any tensor made in the scope (nil if none).
func (s *Scope) Err() error { return s.err }

func (s *Scope) noteErr(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Len is the number of tensors the scope holds.
func (s *Scope) Len() int {
	n := 0
	for _, t := range s.ts {
		if t != nil {
			n++
		}
	}
	return n
}

// Use returns a borrowed view of t, an owned tensor such as a parameter: ops on the view put
// their results in s, and s.Close invalidates the view without freeing t. The view goes bad
// when t is closed. Use of a tensor that carries an error returns a view carrying it.
func (s *Scope) Use(t *Tensor) *Tensor {
	if t == nil {
		return errTensor(s, opErr("use", ErrNilTensor))
	}
	if t.err != nil {
		return errTensor(s, t.err)
	}
	if s.closed {
		return errTensor(nil, opErr("use", ErrScopeClosed))
	}
	owner := t
	if t.parent != nil {
		owner = t.parent
	}
	v := &Tensor{h: t.h, parent: owner, flags: flagBorrowed, scope: s, idx: int32(len(s.ts))}
	s.ts = append(s.ts, v)
	return v
}

// Close frees every tensor the scope still owns (not those taken out by Keep or Close) and
// invalidates its borrowed views; later use of any of them is an ErrClosed error. Tensors
// made afterwards from them carry that error. Close is idempotent.
func (s *Scope) Close() {
	if s.closed {
		return
	}
	s.closed = true
	buf := s.buf[:0]
	for _, t := range s.ts {
		if t == nil {
			continue
		}
		if t.flags&flagBorrowed == 0 && t.h != 0 {
			buf = append(buf, t.h)
		}
		t.h = 0
		t.parent = nil
		t.scope = nil
		t.flags |= flagClosed
	}
	if len(buf) > 0 && fn.ready {
		cerr(call(fn.tensorFreeMany, uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf))))
	}
	clear(s.ts)
	s.ts = s.ts[:0]
	s.buf = buf[:0]
}

// Reset closes the scope's tensors and reopens it for the next step, keeping its buffers.
func (s *Scope) Reset() {
	s.Close()
	s.closed = false
	s.err = nil
}
