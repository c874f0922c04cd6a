package torch

import (
	"runtime"
	"unsafe"
)

// Generator is a seeded random number generator on one device. Random ops that take a nil
// *Generator use the device's default generator. Close frees it.
type Generator struct {
	h   uintptr
	dev Device
}

// NewGenerator makes a generator on dev seeded with seed.
func NewGenerator(seed int64, dev Device) (*Generator, error) {
	if !fn.ready {
		return nil, ErrNotLoaded
	}
	g := &Generator{dev: dev}
	if e := cerr(call(fn.generatorNew, uintptr(seed), dev.code(), uintptr(unsafe.Pointer(&g.h)))); e != "" {
		return nil, &OpError{Op: "generator", Msg: e}
	}
	runtime.SetFinalizer(g, (*Generator).Close)
	return g, nil
}

// Device is where the generator draws its numbers.
func (g *Generator) Device() Device { return g.dev }

// Close frees the generator (a generator holds no device memory, so a finalizer also frees it).
func (g *Generator) Close() {
	if g == nil || g.h == 0 {
		return
	}
	cerr(call(fn.generatorFree, g.h))
	g.h = 0
	runtime.SetFinalizer(g, nil)
}

func (g *Generator) handle() uintptr {
	if g == nil {
		return 0
	}
	return g.h
}

// Seed reseeds the generator.
func (g *Generator) Seed(seed int64) error {
	if g == nil || g.h == 0 {
		return opErr("seed", ErrClosed)
	}
	if e := cerr(call(fn.generatorSeed, g.h, uintptr(seed))); e != "" {
		return &OpError{Op: "seed", Msg: e}
	}
	return nil
}

// State is the generator's full state, to restore with SetState.
func (g *Generator) State() ([]byte, error) {
	if g == nil || g.h == 0 {
		return nil, opErr("rng_state", ErrClosed)
	}
	return rngState(g.h, g.dev)
}

// SetState restores a state from State.
func (g *Generator) SetState(st []byte) error {
	if g == nil || g.h == 0 {
		return opErr("set_rng_state", ErrClosed)
	}
	return setRNGState(g.h, g.dev, st)
}

// RNGState is the state of dev's default generator (torch.get_rng_state / cuda.get_rng_state).
func RNGState(dev Device) ([]byte, error) {
	if !fn.ready {
		return nil, ErrNotLoaded
	}
	return rngState(0, dev)
}

// SetRNGState restores dev's default generator.
func SetRNGState(dev Device, st []byte) error {
	if !fn.ready {
		return ErrNotLoaded
	}
	return setRNGState(0, dev, st)
}

// ManualSeed seeds every default generator (CPU and all CUDA devices), like torch.manual_seed.
func ManualSeed(seed int64) error {
	if !fn.ready {
		return ErrNotLoaded
	}
	if e := cerr(call(fn.manualSeed, uintptr(seed))); e != "" {
		return &OpError{Op: "manual_seed", Msg: e}
	}
	return nil
}

func rngState(g uintptr, dev Device) ([]byte, error) {
	t := &Tensor{}
	if e := cerr(call(fn.rngGetState, g, dev.code(), uintptr(unsafe.Pointer(&t.h)))); e != "" {
		return nil, &OpError{Op: "rng_state", Msg: e}
	}
	defer t.Close()
	return t.Uint8s()
}

func setRNGState(g uintptr, dev Device, st []byte) error {
	if e := cerr(call(fn.rngSetState, g, dev.code(), uintptr(unsafe.Pointer(unsafe.SliceData(st))), uintptr(len(st)))); e != "" {
		return &OpError{Op: "set_rng_state", Msg: e}
	}
	return nil
}

func randomOp(s *Scope, op string, kind int, g *Generator, shape []int64, dt DType, dev Device) *Tensor {
	t, err := newIn(s, op)
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.random, uintptr(kind), g.handle(), uintptr(unsafe.Pointer(unsafe.SliceData(shape))), uintptr(len(shape)), uintptr(dt), dev.code(),
		uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, op, shape)
}

// Randn draws from N(0, 1) with g (nil: dev's default generator). The numbers are drawn on g's
// device and moved to dev, so one seed gives the same values whatever dev is.
func Randn(s *Scope, g *Generator, shape []int64, dt DType, dev Device) *Tensor {
	return randomOp(s, "randn", 0, g, shape, dt, dev)
}

// Rand draws from U[0, 1).
func Rand(s *Scope, g *Generator, shape []int64, dt DType, dev Device) *Tensor {
	return randomOp(s, "rand", 1, g, shape, dt, dev)
}

// Randint draws int64 integers from [low, high).
func Randint(s *Scope, g *Generator, low, high int64, shape []int64, dev Device) *Tensor {
	t, err := newIn(s, "randint")
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.randint, g.handle(), uintptr(low), uintptr(high), uintptr(unsafe.Pointer(unsafe.SliceData(shape))), uintptr(len(shape)), uintptr(Int64),
		dev.code(), uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, "randint", shape)
}

// Randperm is a random permutation of 0..n-1 (int64).
func Randperm(s *Scope, g *Generator, n int64, dev Device) *Tensor {
	t, err := newIn(s, "randperm")
	if err != nil {
		return errTensor(s, err)
	}
	r := call(fn.randperm, g.handle(), uintptr(n), dev.code(), uintptr(unsafe.Pointer(&t.h)))
	return finishShape(s, t, r, "randperm", []int64{n})
}
