package torch

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// TestAdamWMatchesPyTorch runs two parameter groups through five steps (the second parameter
// skips step 3: no gradient) and compares with torch.optim.AdamW run by Python.
func TestAdamWMatchesPyTorch(t *testing.T) {
	py := python(t)
	a := f32(nil, []float32{0.5, -1.5, 2, 0.25}, 2, 2).RequiresGrad(true)
	b := f32(nil, []float32{1, -2, 3}, 3).RequiresGrad(true)
	defer a.Close()
	defer b.Close()
	opt := must(NewAdamW([]ParamGroup{
		{Params: []*Tensor{a}, LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1},
		{Params: []*Tensor{b}, LR: 0.001, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0},
	}))
	defer opt.Close()
	for step := 1; step <= 5; step++ {
		s := NewScope()
		// loss = sum(a^3 * step) + (step != 3) * sum(b^2 * 0.5)
		loss := s.Use(a).PowScalar(3).MulScalar(float64(step)).SumAll()
		if step != 3 {
			loss = loss.Add(s.Use(b).Square().MulScalar(0.5).SumAll())
		}
		noErr(t, loss.Backward())
		noErr(t, opt.Step())
		noErr(t, ZeroGrad([]*Tensor{a, b}))
		s.Close()
	}
	s := scope(t)
	got := append(vals(t, s.Use(a)), vals(t, s.Use(b))...)
	out, err := exec.Command(py, "-c", `
import torch
a = torch.tensor([[0.5, -1.5], [2, 0.25]], requires_grad=True)
b = torch.tensor([1., -2, 3], requires_grad=True)
opt = torch.optim.AdamW([
    {"params": [a], "lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1},
    {"params": [b], "lr": 0.001, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.0}])
for step in range(1, 6):
    loss = (a ** 3 * step).sum()
    if step != 3:
        loss = loss + (b ** 2 * 0.5).sum()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
print(" ".join(repr(v) for v in a.flatten().tolist() + b.tolist()))
`).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var want []float64
	for _, f := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatalf("python output %q", out)
		}
		want = append(want, v)
	}
	near(t, "params after 5 AdamW steps vs torch.optim.AdamW", got, want, 1e-6)
}

// mlp is a 2-layer perceptron with owned parameters.
type mlp struct{ w1, b1, w2, b2 *Tensor }

func newMLP(g *Generator, in, hidden, out int64) *mlp {
	init := func(shape ...int64) *Tensor {
		s := NewScope()
		defer s.Close()
		fan := float64(shape[len(shape)-1])
		if len(shape) == 1 {
			fan = float64(hidden)
		}
		return Randn(s, g, shape, Float32, dev).MulScalar(1 / math.Sqrt(fan)).Keep().RequiresGrad(true)
	}
	return &mlp{init(hidden, in), init(hidden), init(out, hidden), init(out)}
}

func (m *mlp) params() []*Tensor { return []*Tensor{m.w1, m.b1, m.w2, m.b2} }

func (m *mlp) close() {
	for _, p := range m.params() {
		p.Close()
	}
}

func (m *mlp) forward(s *Scope, x *Tensor) *Tensor {
	h := Linear(x, s.Use(m.w1), s.Use(m.b1)).Relu() // [N, hidden]
	return Linear(h, s.Use(m.w2), s.Use(m.b2))      // [N, out]
}

// regression data: y = sin(3x) on [-1, 1].
func sineData(s *Scope, n int) (*Tensor, *Tensor) {
	xs := make([]float32, n)
	ys := make([]float32, n)
	for i := range xs {
		x := -1 + 2*float64(i)/float64(n-1)
		xs[i] = float32(x)
		ys[i] = float32(math.Sin(3 * x))
	}
	return FromFloat32(s, xs, []int64{int64(n), 1}, dev), FromFloat32(s, ys, []int64{int64(n), 1}, dev)
}

func TestMLPFit(t *testing.T) {
	g := must(NewGenerator(0, CPU))
	defer g.Close()
	m := newMLP(g, 1, 64, 1)
	defer m.close()
	opt := must(NewAdamW([]ParamGroup{NewParamGroup(m.params(), 0.01)}))
	defer opt.Close()
	data := NewScope()
	defer data.Close()
	x, y := sineData(data, 128)
	var first, last float64
	for step := range 400 {
		s := NewScope()
		loss := MSELoss(m.forward(s, x), y, ReduceMean)
		noErr(t, loss.Backward())
		if _, err := ClipGradNorm(m.params(), 1.0); err != nil {
			t.Fatal(err)
		}
		noErr(t, opt.Step())
		noErr(t, ZeroGrad(m.params()))
		v := must(loss.Item())
		if step == 0 {
			first = v
		}
		last = v
		s.Close()
	}
	t.Logf("MSE %.4f -> %.5f", first, last)
	if last > 0.01 || last > first/10 {
		t.Fatalf("MLP did not fit: MSE %.4f -> %.5f (want < 0.01)", first, last)
	}
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	var size, res int64
	fmt.Sscan(string(b), &size, &res)
	return res * int64(os.Getpagesize())
}

// TestLeak runs 1,000 training-like iterations with a scope per step: the live-tensor count
// must return exactly to its baseline and RSS must stay flat.
func TestLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 1,000 training iterations")
	}
	g := must(NewGenerator(0, CPU))
	defer g.Close()
	m := newMLP(g, 16, 64, 4)
	defer m.close()
	opt := must(NewAdamW([]ParamGroup{NewParamGroup(m.params(), 1e-3)}))
	defer opt.Close()
	drop := must(NewGenerator(1, dev))
	defer drop.Close()
	flat := make([]float32, NumElements(m.params()))
	iter := func(i int) {
		s := NewScope()
		defer s.Close()
		x := Randn(s, g, []int64{32, 16}, Float32, dev)
		target := Randint(s, g, 0, 4, []int64{32}, dev)
		h := Dropout(x, 0.1, true, drop)
		logits := m.forward(s, h)
		loss := CrossEntropy(logits, target, nil, IgnoreNone, ReduceMean)
		_ = loss.Softmax(0).Argmax(0, false) // temporaries that nobody reads
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		ClipGradNormAsync(s, m.params(), 1)
		if err := FlattenGrads(m.params(), flat); err != nil { // as the all-reduce would
			t.Fatal(err)
		}
		if err := UnflattenGrads(m.params(), flat); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
		if err := ZeroGrad(m.params()); err != nil {
			t.Fatal(err)
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 { // warm up: allocator caches, optimizer state
		iter(i)
	}
	runtime.GC()
	debug.FreeOSMemory()
	live0, rss0 := LiveTensors(), rssBytes(t)
	for i := range 1000 {
		iter(i)
	}
	runtime.GC()
	debug.FreeOSMemory()
	live1, rss1 := LiveTensors(), rssBytes(t)
	t.Logf("live tensors %d -> %d; RSS %.1f MiB -> %.1f MiB", live0, live1, float64(rss0)/(1<<20), float64(rss1)/(1<<20))
	if live1 != live0 {
		t.Fatalf("live tensors %d after 1000 iterations, %d before", live1, live0)
	}
	// A leak of one 32x16 float32 tensor per step alone would be 2 MiB; anything real is far more.
	if growth := rss1 - rss0; growth > 8<<20 {
		t.Fatalf("RSS grew %.1f MiB over 1000 iterations", float64(growth)/(1<<20))
	}
}
