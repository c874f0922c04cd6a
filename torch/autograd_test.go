package torch

import (
	"errors"
	"testing"
)

func TestAutogradBasics(t *testing.T) {
	p := f32(nil, []float32{1, 2, 3}, 3).RequiresGrad(true)
	defer p.Close()
	if !p.RequiresGradFlag() || !p.IsLeaf() {
		t.Fatal("requires_grad/leaf flags wrong")
	}
	s := scope(t)
	x := s.Use(p)
	y := x.Mul(x).SumAll() // d/dx = 2x
	if err := y.Backward(); err != nil {
		t.Fatal(err)
	}
	g := p.Grad()
	near(t, "grad", vals(t, g), []float64{2, 4, 6}, 1e-6)
	g.Close() // owned: p is owned
	// accumulation
	if err := s.Use(p).SumAll().Backward(); err != nil {
		t.Fatal(err)
	}
	g = s.Use(p).Grad() // through a view: lives in s
	near(t, "accumulated", vals(t, g), []float64{3, 5, 7}, 1e-6)
	if err := ZeroGrad([]*Tensor{p}); err != nil {
		t.Fatal(err)
	}
	if p.Grad() != nil {
		t.Fatal("grad after ZeroGrad")
	}
	// BackwardWith on a non-scalar
	z := s.Use(p).MulScalar(3)
	if err := z.BackwardWith(Ones(s, []int64{3}, Float32, dev), false); err != nil {
		t.Fatal(err)
	}
	near(t, "backward with", vals(t, s.Use(p).Grad()), []float64{3, 3, 3}, 1e-6)
	if err := ZeroGradInPlace([]*Tensor{p}); err != nil {
		t.Fatal(err)
	}
	near(t, "zeroed in place", vals(t, s.Use(p).Grad()), []float64{0, 0, 0}, 0)
	if err := p.SetGrad(f32(s, []float32{9, 9, 9}, 3)); err != nil {
		t.Fatal(err)
	}
	near(t, "set grad", vals(t, s.Use(p).Grad()), []float64{9, 9, 9}, 0)
	// detach and no-grad
	if s.Use(p).MulScalar(2).Detach().RequiresGradFlag() {
		t.Fatal("detached tensor requires grad")
	}
	var ng *Tensor
	NoGrad(func() { ng = s.Use(p).MulScalar(2) })
	if ng.RequiresGradFlag() {
		t.Fatal("NoGrad result requires grad")
	}
	if !s.Use(p).MulScalar(2).RequiresGradFlag() {
		t.Fatal("grad mode not restored after NoGrad")
	}
	// backward of a non-scalar without a seed is an error, not a crash
	if err := s.Use(p).MulScalar(2).Backward(); err == nil {
		t.Fatal("backward of a vector accepted")
	}
	// errors reach Backward
	bad := s.Use(p).Reshape(2, 2)
	if err := bad.SumAll().Backward(); !errors.Is(err, bad.Err()) {
		t.Fatalf("backward of an errored tensor: %v", err)
	}
	if err := s.Use(p).SumAll().RequiresGrad(false).Err(); err == nil {
		t.Fatal("requires_grad(false) on a non-leaf accepted")
	}
}

func TestAutocast(t *testing.T) {
	s := scope(t)
	a := Randn(s, nil, []int64{4, 4}, Float32, dev)
	var mm, sm *Tensor
	err := Autocast(BFloat16, func() {
		mm = a.Matmul(a)
		sm = mm.Softmax(-1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if mm.DType() != BFloat16 {
		t.Fatalf("matmul under autocast is %v, want bfloat16", mm.DType())
	}
	if dev.IsCUDA() && sm.DType() != Float32 { // CUDA autocast runs softmax in float32; CPU autocast does not
		t.Fatalf("softmax under autocast is %v, want float32", sm.DType())
	}
	// layer_norm of bf16 activations with fp32 parameters runs (in fp32 unless autocast casts
	// it down), on the CPU too, where LibTorch 1.13's autocast does not cover it.
	w, b := Full(s, []int64{4}, 1.5, Float32, dev), Full(s, []int64{4}, 0.25, Float32, dev)
	var ln *Tensor
	if err := Autocast(BFloat16, func() { ln = LayerNorm(mm, []int64{4}, w, b, 1e-5) }); err != nil {
		t.Fatal(err)
	}
	near(t, "layer_norm under autocast", vals(t, ln), vals(t, LayerNorm(mm.ToDtype(Float32), []int64{4}, w, b, 1e-5)), 2e-2)
	if a.Matmul(a).DType() != Float32 {
		t.Fatal("autocast not restored")
	}
	if err := Autocast(Int64, func() {}); err == nil {
		t.Fatal("autocast int64 accepted")
	}
}
