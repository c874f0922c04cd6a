package model

import (
	"math"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

// floats reads a tensor to the host as float32 or fails the test.
func floats(t *testing.T, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.ToDtype(torch.Float32).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// maxDiff is the largest absolute difference of two equally long slices.
func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// TestInferencePasses: the inference passes compute what Forward computes
// (Understand its ITM logits, DetectObjects without text its detections),
// the paired text changes the detections, and the region step gives one
// ITM pair per row whatever R is.
func TestInferencePasses(t *testing.T) {
	needTorch(t)
	m, err := New(parityConfig(), 3, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()
	b := synthBatch(t, 8, 4, 64, 2)
	in, err := BatchToTensors(s, b, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	var out *Outputs
	torch.NoGrad(func() { out, err = m.Forward(s, in, false, nil) })
	if err != nil {
		t.Fatal(err)
	}
	itm, err := m.Understand(s, in)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(floats(t, itm), floats(t, out.ITMLogits)); d > 1e-5 {
		t.Errorf("Understand differs from Forward's ITM logits by %g", d)
	}
	plain, err := m.DetectObjects(s, in, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]*torch.Tensor{"logits": {plain.Logits, out.Det.Logits}, "boxes": {plain.Boxes, out.Det.Boxes}, "attrs": {plain.Attrs, out.Det.Attrs}} {
		if d := maxDiff(floats(t, pair[0]), floats(t, pair[1])); d > 1e-5 {
			t.Errorf("DetectObjects without text: %s differ from Forward's by %g", name, d)
		}
	}
	text, err := m.DetectObjects(s, in, true)
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(text.Logits.Shape(), plain.Logits.Shape()) {
		t.Fatalf("with text: logits %v, without %v", text.Logits.Shape(), plain.Logits.Shape())
	}
	if d := maxDiff(floats(t, text.Logits), floats(t, plain.Logits)); d < 1e-4 {
		t.Errorf("the paired text changed no detection logit (max difference %g)", d)
	}
	for _, r := range []int64{1, 10} {
		regions := torch.Randn(s, nil, []int64{int64(in.B), r, int64(m.Config.DModel)}, torch.Float32, torch.CPU) // [B,R,d]
		got, err := m.EncodeRegions(s, in, regions)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{int64(in.B), 2}; !sameShape(got.Shape(), want) {
			t.Errorf("EncodeRegions with %d regions: shape %v, want %v", r, got.Shape(), want)
		}
	}
}
