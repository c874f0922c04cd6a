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

// TestAdamWFusedSameUpdate runs the one-pass CPU update (the default) and LibTorch's ops side by
// side on the same CPU parameters and gradients (whatever the test device: the one-pass update is
// the CPU's) for a few steps: a tensor shorter than a vector, one
// split among threads, and a channels-last one (dense, not contiguous) must end with the same
// values and moments, up to the rounding of the ops' vector kernels (which fuse some multiply-adds):
// within 1e-5 of each tensor's largest magnitude.
func TestAdamWFusedSameUpdate(t *testing.T) {
	s := scope(t)
	g := must(NewGenerator(7, CPU))
	defer g.Close()
	shapes := [][]int64{{3, 5, 7}, {70001}, {8, 3, 3, 5}}
	var fused, ops []*Tensor
	for i, sh := range shapes {
		v := Randn(s, g, sh, Float32, CPU)
		if i == 2 {
			v = v.ChannelsLast()
		}
		fused = append(fused, v.Clone().RequiresGrad(true))
		ops = append(ops, v.Clone().RequiresGrad(true))
	}
	if fused[2].IsContiguous() {
		t.Fatal("the channels-last parameter is contiguous: the test would not cover a strided one")
	}
	group := func(ps []*Tensor) []ParamGroup {
		return []ParamGroup{{Params: ps, LR: 3e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05}}
	}
	of := must(NewAdamW(group(fused)))
	defer of.Close()
	oo := must(NewAdamW(group(ops)))
	defer oo.Close()
	noErr(t, oo.SetFused(false))
	for step := 0; step < 5; step++ {
		for i, sh := range shapes {
			gr := Randn(s, g, sh, Float32, CPU).MulScalar(float64(step + 1))
			if i == 2 {
				gr = gr.ChannelsLast()
			}
			noErr(t, fused[i].SetGrad(gr.Clone()))
			noErr(t, ops[i].SetGrad(gr.Clone()))
		}
		noErr(t, of.Step())
		noErr(t, oo.Step())
	}
	for i := range shapes {
		mf, vf, nf, err := of.State(i)
		noErr(t, err)
		mo, vo, no, err := oo.State(i)
		noErr(t, err)
		if nf != 5 || no != 5 {
			t.Fatalf("param %d: steps %d and %d, want 5", i, nf, no)
		}
		for _, c := range []struct {
			what string
			a, b *Tensor
		}{{"value", fused[i], ops[i]}, {"exp_avg", mf, mo}, {"exp_avg_sq", vf, vo}} {
			a, b := vals(t, s.Use(c.a).Detach()), vals(t, s.Use(c.b).Detach())
			differ, gap, scale := 0, 0.0, 0.0
			for j := range a {
				if a[j] != b[j] {
					differ++
				}
				gap = math.Max(gap, math.Abs(a[j]-b[j]))
				scale = math.Max(scale, math.Abs(b[j]))
			}
			worst := gap / scale
			t.Logf("param %d %s: %d of %d elements differ, largest gap %.2g of the largest magnitude", i, c.what, differ, len(a), worst)
			if worst > 1e-5 {
				t.Errorf("param %d %s: one-pass and ops updates differ by %.2g of the largest magnitude", i, c.what, worst)
			}
		}
		for _, x := range []*Tensor{mf, vf, mo, vo} {
			x.Close()
		}
	}
}
