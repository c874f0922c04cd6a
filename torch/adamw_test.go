package torch

import (
	"math"
	"strings"
	"testing"
)

func TestAdamWOneStepByHand(t *testing.T) {
	p := f32(nil, []float32{1}, 1).RequiresGrad(true)
	defer p.Close()
	opt := must(NewAdamW([]ParamGroup{{Params: []*Tensor{p}, LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}}))
	defer opt.Close()
	s := scope(t)
	if err := s.Use(p).MulScalar(0.5).SumAll().Backward(); err != nil { // grad 0.5
		t.Fatal(err)
	}
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	// p = 1*(1-0.1*0.01) = 0.999; m = 0.05; v = 0.00025; step_size = 0.1/0.1 = 1;
	// denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8; p -= 0.05/denom
	want := 0.999 - 0.05/(math.Sqrt(0.00025)/math.Sqrt(0.001)+1e-8)
	near(t, "p after one step", vals(t, s.Use(p)), []float64{want}, 1e-6)
	m, v, step, err := opt.State(0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer v.Close()
	if step != 1 {
		t.Fatalf("step %d", step)
	}
	near(t, "exp_avg", vals(t, m), []float64{0.05}, 1e-6)
	near(t, "exp_avg_sq", vals(t, v), []float64{0.00025}, 1e-6)
	if lr, _ := opt.LR(0); lr != 0.1 {
		t.Fatalf("lr %v", lr)
	}
	if err := opt.SetLR(0, 0.05); err != nil {
		t.Fatal(err)
	}
	if lr, _ := opt.LR(0); lr != 0.05 {
		t.Fatalf("lr after SetLR %v", lr)
	}
	if err := opt.SetLR(3, 0.05); err == nil || !strings.Contains(err.Error(), "group 3 out of range") {
		t.Fatalf("SetLR bad group: %v", err)
	}
}

func TestAdamWValidate(t *testing.T) {
	p := Ones(nil, []int64{1}, Float32, dev)
	defer p.Close()
	g := NewParamGroup([]*Tensor{p}, 1e-3)
	g.Beta2 = 1
	if _, err := NewAdamW([]ParamGroup{g}); err == nil || !strings.Contains(err.Error(), "Beta2") {
		t.Fatalf("beta2 = 1 accepted: %v", err)
	}
	i := FromInt64(nil, []int64{1}, []int64{1}, dev)
	defer i.Close()
	if _, err := NewAdamW([]ParamGroup{NewParamGroup([]*Tensor{i}, 1e-3)}); err == nil || !strings.Contains(err.Error(), "not floating point") {
		t.Fatalf("int param accepted: %v", err)
	}
}
