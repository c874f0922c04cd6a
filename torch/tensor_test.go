package torch

import (
	"errors"
	"strings"
	"testing"
)

func TestCreation(t *testing.T) {
	s := scope(t)
	near(t, "zeros", vals(t, Zeros(s, []int64{2, 2}, Float32, dev)), []float64{0, 0, 0, 0}, 0)
	near(t, "ones", vals(t, Ones(s, []int64{3}, Float64, dev)), []float64{1, 1, 1}, 0)
	near(t, "full", vals(t, Full(s, []int64{2}, 2.5, Float32, dev)), []float64{2.5, 2.5}, 0)
	if got := ints(t, Full(s, []int64{2}, 7, Int64, dev)); got[0] != 7 || got[1] != 7 {
		t.Fatalf("full int64: %v", got)
	}
	near(t, "arange", vals(t, Arange(s, 0, 1, 0.25, Float32, dev)), []float64{0, 0.25, 0.5, 0.75}, 0)
	if got := ints(t, Arange(s, 2, 7, 2, Int64, dev)); len(got) != 3 || got[0] != 2 || got[2] != 6 {
		t.Fatalf("arange int64: %v", got)
	}
	x := f32(s, []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	shapeIs(t, x, 2, 3)
	if x.Dim() != 2 || x.Numel() != 6 || x.DType() != Float32 || x.Device() != dev || x.Size(-1) != 3 {
		t.Fatalf("meta: dim %d numel %d dtype %v device %v", x.Dim(), x.Numel(), x.DType(), x.Device())
	}
	b := FromBool(s, []bool{true, false, true}, []int64{3}, dev)
	if got := bools(t, b); !got[0] || got[1] || !got[2] {
		t.Fatalf("bools: %v", got)
	}
	u := FromUint8(s, []uint8{0, 255}, []int64{2}, dev)
	if got, err := u.Uint8s(); err != nil || got[1] != 255 {
		t.Fatalf("uint8: %v %v", got, err)
	}
	v, err := Scalar(s, 3.5, Float64, dev).Item()
	if err != nil || v != 3.5 {
		t.Fatalf("item: %v %v", v, err)
	}
	// conversions
	h := x.ToDtype(BFloat16)
	if h.DType() != BFloat16 {
		t.Fatalf("to bf16: %v", h.DType())
	}
	near(t, "bf16 round trip", vals(t, h), []float64{1, 2, 3, 4, 5, 6}, 0)
	near(t, "f16", vals(t, x.ToDtype(Float16)), []float64{1, 2, 3, 4, 5, 6}, 0)
	if got := ints(t, f32(s, []float32{1.7, -1.7}, 2).ToDtype(Int64)); got[0] != 1 || got[1] != -1 {
		t.Fatalf("to int64 truncates: %v", got)
	}
	c := x.To(CPU)
	near(t, "to cpu", vals(t, c), []float64{1, 2, 3, 4, 5, 6}, 0)
	raw, err := x.Bytes()
	if err != nil || len(raw) != 24 {
		t.Fatalf("bytes: %d %v", len(raw), err)
	}
	near(t, "from bytes", vals(t, FromBytes(s, raw, []int64{6}, Float32, dev)), []float64{1, 2, 3, 4, 5, 6}, 0)
	bf := FromBF16(s, []uint16{0x3f80, 0x4000}, []int64{2}, dev) // 1.0, 2.0
	near(t, "from bf16", vals(t, bf), []float64{1, 2}, 0)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestCreationErrors(t *testing.T) {
	s := scope(t)
	x := FromFloat32(s, []float32{1, 2, 3}, []int64{2, 2}, dev)
	if x.Err() == nil || !strings.Contains(x.Err().Error(), "from_float32: shape [2 2]") {
		t.Fatalf("want a from_float32 shape error, got %v", x.Err())
	}
	if s.Err() != x.Err() {
		t.Fatalf("scope error %v, want %v", s.Err(), x.Err())
	}
	if _, err := f32(s, []float32{1}, 1).Int64s(); err == nil || !strings.Contains(err.Error(), "not int64") {
		t.Fatalf("wrong dtype read: %v", err)
	}
	// sticky: an op on an errored input does nothing and passes the error on
	y := x.Add(x).Relu().Sum(0, false)
	if !errors.Is(y.Err(), x.Err()) {
		t.Fatalf("sticky error lost: %v", y.Err())
	}
	var nilT *Tensor
	if err := nilT.Relu().Err(); !errors.Is(err, ErrNilTensor) {
		t.Fatalf("nil tensor: %v", err)
	}
	if _, err := ParseDevice("gpu"); err == nil {
		t.Fatal("ParseDevice accepted gpu")
	}
	if d, _ := ParseDevice("cuda:3"); d != CUDA(3) || d.String() != "cuda:3" {
		t.Fatalf("ParseDevice cuda:3 = %v", d)
	}
}

func TestScopeOwnership(t *testing.T) {
	base := LiveTensors()
	owned := Ones(nil, []int64{2}, Float32, dev)
	if LiveTensors() != base+1 {
		t.Fatalf("live %d, want %d", LiveTensors(), base+1)
	}
	s := NewScope()
	a := s.Use(owned)
	b := a.MulScalar(3).AddScalar(1)
	kept := b.Exp().Keep()
	if s.Len() != 3 { // the view and the two temporaries, not the kept one
		t.Fatalf("scope holds %d tensors, want 3", s.Len())
	}
	s.Close()
	if LiveTensors() != base+2 {
		t.Fatalf("after close live %d, want %d (owned + kept)", LiveTensors(), base+2)
	}
	// use after close
	if err := b.Relu().Err(); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "relu") {
		t.Fatalf("use after scope close: %v", err)
	}
	if err := a.Relu().Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("view after scope close: %v", err)
	}
	// the owned tensor survives its scope, the kept one too
	near(t, "owned", vals(t, owned), []float64{1, 1}, 0)
	near(t, "kept", vals(t, kept), []float64{54.598150033144236, 54.598150033144236}, 1e-6)
	kept.Close()
	owned.Close()
	owned.Close() // idempotent
	if err := owned.Relu().Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after Close: %v", err)
	}
	if LiveTensors() != base {
		t.Fatalf("live %d, want %d", LiveTensors(), base)
	}
	// a view goes bad when its owner closes
	p := Ones(nil, []int64{1}, Float32, dev)
	s2 := NewScope()
	v := s2.Use(p)
	p.Close()
	if err := v.Neg().Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("view of closed owner: %v", err)
	}
	s2.Close()
	// creating in a closed scope
	if err := Zeros(s2, []int64{1}, Float32, dev).Err(); !errors.Is(err, ErrScopeClosed) {
		t.Fatalf("zeros in closed scope: %v", err)
	}
	// Reset reuses a scope
	s3 := NewScope()
	Ones(s3, []int64{4}, Float32, dev).Neg()
	s3.Reset()
	Ones(s3, []int64{4}, Float32, dev)
	s3.Close()
	if LiveTensors() != base {
		t.Fatalf("live %d after reset/close, want %d", LiveTensors(), base)
	}
	// early Close of a scoped tensor
	s4 := NewScope()
	z := Zeros(s4, []int64{1}, Float32, dev)
	z.Close()
	if LiveTensors() != base {
		t.Fatalf("early close: live %d", LiveTensors())
	}
	s4.Close()
}

func TestGenerator(t *testing.T) {
	s := scope(t)
	g1 := must(NewGenerator(42, CPU))
	defer g1.Close()
	g2 := must(NewGenerator(42, CPU))
	defer g2.Close()
	a := vals(t, Randn(s, g1, []int64{5}, Float32, dev))
	b := vals(t, Randn(s, g2, []int64{5}, Float32, dev))
	near(t, "same seed same numbers", a, b, 0)
	st := must(g1.State())
	c := vals(t, Rand(s, g1, []int64{4}, Float32, dev))
	for _, v := range c {
		if v < 0 || v >= 1 {
			t.Fatalf("rand out of [0,1): %v", c)
		}
	}
	if err := g1.SetState(st); err != nil {
		t.Fatal(err)
	}
	near(t, "state restored", vals(t, Rand(s, g1, []int64{4}, Float32, dev)), c, 0)
	r := ints(t, Randint(s, g1, 3, 6, []int64{100}, dev))
	for _, v := range r {
		if v < 3 || v >= 6 {
			t.Fatalf("randint out of range: %v", v)
		}
	}
	p := ints(t, Randperm(s, g1, 10, dev))
	seen := map[int64]bool{}
	for _, v := range p {
		seen[v] = true
	}
	if len(seen) != 10 {
		t.Fatalf("randperm: %v", p)
	}
	// default generator state
	if err := ManualSeed(7); err != nil {
		t.Fatal(err)
	}
	ds := must(RNGState(CPU))
	d1 := vals(t, Randn(s, nil, []int64{3}, Float32, CPU))
	if err := SetRNGState(CPU, ds); err != nil {
		t.Fatal(err)
	}
	near(t, "default state restored", vals(t, Randn(s, nil, []int64{3}, Float32, CPU)), d1, 0)
	if err := g1.Seed(42); err != nil {
		t.Fatal(err)
	}
	near(t, "reseed", vals(t, Randn(s, g1, []int64{5}, Float32, dev)), a, 0)
}

func TestYoungestScopeOwnsResult(t *testing.T) {
	base := LiveTensors()
	data := NewScope()
	x := Ones(data, []int64{2}, Float32, dev)
	w := Ones(nil, []int64{2}, Float32, dev)
	step := NewScope()
	y := x.Mul(step.Use(w))
	if y.scope != step {
		t.Fatal("result not in the per-step scope")
	}
	step.Close()
	if LiveTensors() != base+2 {
		t.Fatalf("live %d, want %d", LiveTensors()-base, 2)
	}
	data.Close()
	w.Close()
}
