package torch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlattenRoundTrip(t *testing.T) {
	a := f32(nil, []float32{1, 2, 3, 4}, 2, 2).RequiresGrad(true)
	b := f32(nil, []float32{5, 6, 7}, 3).RequiresGrad(true)
	defer a.Close()
	defer b.Close()
	params := []*Tensor{a, b}
	if n := NumElements(params); n != 7 {
		t.Fatalf("NumElements %d", n)
	}
	buf := make([]float32, 7)
	if err := FlattenParams(params, buf); err != nil {
		t.Fatal(err)
	}
	near(t, "flatten params", f32s(buf), []float64{1, 2, 3, 4, 5, 6, 7}, 0)
	// gradients: b has none yet, so it reads as zeros
	s := scope(t)
	if err := s.Use(a).MulScalar(2).SumAll().Backward(); err != nil {
		t.Fatal(err)
	}
	if err := FlattenGrads(params, buf); err != nil {
		t.Fatal(err)
	}
	near(t, "flatten grads", f32s(buf), []float64{2, 2, 2, 2, 0, 0, 0}, 0)
	// write grads back (creating b's) and params
	for i := range buf {
		buf[i] = float32(i) / 2
	}
	if err := UnflattenGrads(params, buf); err != nil {
		t.Fatal(err)
	}
	near(t, "unflatten grads b", vals(t, s.Use(b).Grad()), []float64{2, 2.5, 3}, 0)
	if err := UnflattenParams(params, buf); err != nil {
		t.Fatal(err)
	}
	near(t, "unflatten params a", vals(t, s.Use(a)), []float64{0, 0.5, 1, 1.5}, 0)
	if !a.IsLeaf() || !a.RequiresGradFlag() {
		t.Fatal("unflatten changed the parameter's autograd flags")
	}
	// bf16: 1.5 and 2 are exact in bfloat16
	bf := make([]uint16, 7)
	if err := FlattenParamsBF16(params, bf); err != nil {
		t.Fatal(err)
	}
	if bf[3] != 0x3fc0 { // 1.5
		t.Fatalf("bf16 of 1.5 = %#x", bf[3])
	}
	for i := range bf {
		bf[i] = 0x4000 // 2.0
	}
	if err := UnflattenGradsBF16(params, bf); err != nil {
		t.Fatal(err)
	}
	near(t, "bf16 grads", vals(t, s.Use(a).Grad()), []float64{2, 2, 2, 2}, 0)
	if err := FlattenGradsBF16(params, bf); err != nil || bf[6] != 0x4000 {
		t.Fatalf("flatten grads bf16: %v %#x", err, bf[6])
	}
	if err := UnflattenParamsBF16(params, bf); err != nil {
		t.Fatal(err)
	}
	near(t, "bf16 params", vals(t, s.Use(b)), []float64{2, 2, 2}, 0)
	// size mismatch is an error naming both counts
	if err := FlattenParams(params, make([]float32, 6)); err == nil || !strings.Contains(err.Error(), "6 elements, the tensors 7") {
		t.Fatalf("size mismatch: %v", err)
	}
}

func f32s(b []float32) []float64 {
	out := make([]float64, len(b))
	for i, v := range b {
		out[i] = float64(v)
	}
	return out
}

func TestAdamWStateRoundTrip(t *testing.T) {
	mk := func() (*Tensor, *AdamW) {
		p := f32(nil, []float32{1, -1, 2}, 3).RequiresGrad(true)
		o := must(NewAdamW([]ParamGroup{NewParamGroup([]*Tensor{p}, 0.1)}))
		return p, o
	}
	p1, o1 := mk()
	defer p1.Close()
	defer o1.Close()
	p2, o2 := mk()
	defer p2.Close()
	defer o2.Close()
	step := func(p *Tensor, o *AdamW) {
		s := NewScope()
		defer s.Close()
		if err := s.Use(p).Mul(s.Use(p)).SumAll().Backward(); err != nil {
			t.Fatal(err)
		}
		if err := o.Step(); err != nil {
			t.Fatal(err)
		}
		if err := ZeroGrad([]*Tensor{p}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		step(p1, o1)
	}
	// copy params and state from 1 to 2, then both step and must agree exactly
	buf := make([]float32, 3)
	noErr(t, FlattenParams([]*Tensor{p1}, buf))
	noErr(t, UnflattenParams([]*Tensor{p2}, buf))
	st := make([]float32, o1.StateElements())
	steps := make([]int64, o1.NumParams())
	noErr(t, o1.FlattenState(st, steps))
	if steps[0] != 3 {
		t.Fatalf("steps %v", steps)
	}
	noErr(t, o2.UnflattenState(st, steps))
	step(p1, o1)
	step(p2, o2)
	s := scope(t)
	near(t, "resumed optimizer", vals(t, s.Use(p2)), vals(t, s.Use(p1)), 0)
	// State/SetState
	m, v, n, err := o1.State(0)
	if err != nil || n != 4 {
		t.Fatalf("state: %v step %d", err, n)
	}
	defer m.Close()
	defer v.Close()
	if err := o2.SetState(0, nil, nil, 0); err != nil {
		t.Fatal(err)
	}
	m2, v2, n2, _ := o2.State(0)
	defer m2.Close()
	defer v2.Close()
	near(t, "state zeroed", vals(t, m2), []float64{0, 0, 0}, 0)
	if n2 != 0 {
		t.Fatalf("step after reset %d", n2)
	}
	if _, _, _, err := o1.State(5); err == nil {
		t.Fatal("state of parameter 5 accepted")
	}
}

func TestSerialize(t *testing.T) {
	s := scope(t)
	x := f32(s, []float32{1, 2, 3, 4, 5, 6}, 2, 3).Transpose(0, 1) // non-contiguous on purpose
	b, err := Serialize(x)
	if err != nil {
		t.Fatal(err)
	}
	y := Deserialize(s, b, dev)
	shapeIs(t, y, 3, 2)
	near(t, "round trip", vals(t, y), vals(t, x), 0)
	bi, err := Serialize(i64t(s, []int64{7, -8}, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := ints(t, Deserialize(s, bi, dev)); got[0] != 7 || got[1] != -8 {
		t.Fatalf("int64 round trip: %v", got)
	}
	if e := Deserialize(s, []byte("not a tensor"), dev).Err(); e == nil {
		t.Fatal("garbage deserialized")
	}
}

// python is the interpreter with torch used as a test oracle: $VLP_PYTHON, else Debian's
// /usr/bin/python3 (python3-torch), else python3 on PATH. Without one the oracle tests fail: `make test` installs python3-torch.
func python(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VLP_PYTHON")
	if p == "" {
		p = "python3"
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			p = "/usr/bin/python3"
		}
	}
	if err := exec.Command(p, "-c", "import torch").Run(); err != nil {
		t.Fatalf("no python with torch (%s): %v; `make test` installs python3-torch", p, err)
	}
	return p
}

func TestPickleSaveLoadsInPython(t *testing.T) {
	py := python(t)
	s := scope(t)
	m := map[string]*Tensor{
		"w":       f32(s, []float32{1.5, -2}, 2),
		"n":       i64t(s, []int64{3}, 1),
		"layer.b": f32(s, []float32{1, 2, 3, 4}, 2, 2).ToDtype(BFloat16),
	}
	var buf bytes.Buffer
	if err := PickleSave(&buf, m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ck.pt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `
import sys, torch
try:
    # PyTorch >= 2.6 loads weights_only by default; LibTorch's pickler tags the dict with
    # torch.jit._pickle.restore_type_tag, which must be allowed explicitly.
    from torch.jit._pickle import restore_type_tag
    with torch.serialization.safe_globals([restore_type_tag]):
        d = torch.load(sys.argv[1])
except AttributeError:  # PyTorch < 2.4: no safe_globals, and no weights_only default
    d = torch.load(sys.argv[1])
print(sorted(d), d["w"].tolist(), d["n"].tolist(), d["layer.b"].dtype, d["layer.b"].float().tolist())
`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("torch.load: %v\n%s", err, out)
	}
	want := "['layer.b', 'n', 'w'] [1.5, -2.0] [3] torch.bfloat16 [[1.0, 2.0], [3.0, 4.0]]"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("python read %q, want %q", got, want)
	}
}
