package torch

import (
	"math"
	"strings"
	"testing"
)

func seq(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i + 1)
	}
	return out
}

func TestConvPool(t *testing.T) {
	s := scope(t)
	x := f32(s, seq(9), 1, 1, 3, 3)
	w := f32(s, []float32{1, 0, 0, 1}, 1, 1, 2, 2)
	b := f32(s, []float32{1}, 1)
	y := Conv2d(x, w, b, Conv2dOptions{})
	shapeIs(t, y, 1, 1, 2, 2)
	near(t, "conv2d", vals(t, y), []float64{7, 9, 13, 15}, 1e-6)
	// padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1); w sums each window's diagonal
	y2 := Conv2d(x, w, nil, Conv2dOptions{Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}})
	near(t, "conv2d stride/pad", vals(t, y2), []float64{1, 3, 7, 14}, 1e-6)
	// groups: two channels each convolved with its own 1x1 weight
	xg := f32(s, []float32{1, 2, 3, 4}, 1, 2, 1, 2)
	wg := f32(s, []float32{10, 100}, 2, 1, 1, 1)
	near(t, "conv2d groups", vals(t, Conv2d(xg, wg, nil, Conv2dOptions{Groups: 2})), []float64{10, 20, 300, 400}, 1e-6)

	p := f32(s, seq(16), 1, 1, 4, 4)
	near(t, "max_pool2d", vals(t, MaxPool2d(p, MaxPool2dOptions{Kernel: [2]int64{2, 2}})), []float64{6, 8, 14, 16}, 0)
	// ResNet's stem pool: k3 s2 p1 on 4x4 -> 2x2
	mp := MaxPool2d(p, MaxPool2dOptions{Kernel: [2]int64{3, 3}, Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}})
	near(t, "max_pool2d k3s2p1", vals(t, mp), []float64{6, 8, 14, 16}, 0)
	near(t, "adaptive_avg_pool2d 1x1", vals(t, AdaptiveAvgPool2d(p, 1, 1)), []float64{8.5}, 1e-6)
	near(t, "adaptive_avg_pool2d 2x2", vals(t, AdaptiveAvgPool2d(p, 2, 2)), []float64{3.5, 5.5, 11.5, 13.5}, 1e-6)

	m := FromBool(s, []bool{true, false, false, true}, []int64{1, 1, 2, 2}, dev)
	up := InterpolateNearest(m, 4, 4)
	if up.DType() != Bool {
		t.Fatalf("interpolate bool gave %v", up.DType())
	}
	got := bools(t, up)
	want := []bool{true, true, false, false, true, true, false, false, false, false, true, true, false, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("interpolate: %v", got)
		}
	}
	near(t, "interpolate down", vals(t, InterpolateNearest(p, 2, 2)), []float64{1, 3, 9, 11}, 0)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestBatchNorm(t *testing.T) {
	s := scope(t)
	x := f32(s, []float32{1, 3, 5, 7}, 2, 1, 1, 2) // one channel: mean 4, biased var 5, unbiased 20/3
	w := f32(s, []float32{2}, 1)
	b := f32(s, []float32{1}, 1)
	rm := Zeros(s, []int64{1}, Float32, dev)
	rv := Ones(s, []int64{1}, Float32, dev)
	const eps = 1e-5
	y := BatchNorm(x, w, b, rm, rv, BatchNormTrain, 0.1, eps)
	want := make([]float64, 4)
	for i, v := range []float64{1, 3, 5, 7} {
		want[i] = (v-4)/math.Sqrt(5+eps)*2 + 1
	}
	near(t, "train", vals(t, y), want, 1e-5)
	near(t, "running mean", vals(t, rm), []float64{0.4}, 1e-6)
	near(t, "running var", vals(t, rv), []float64{0.9 + 0.1*20.0/3}, 1e-6)
	rmv, rvv := 0.4, 0.9+0.1*20.0/3
	for i, v := range []float64{1, 3, 5, 7} {
		want[i] = (v-rmv)/math.Sqrt(rvv+eps)*2 + 1
	}
	near(t, "eval", vals(t, BatchNorm(x, w, b, rm, rv, BatchNormEval, 0.1, eps)), want, 1e-5)
	near(t, "frozen", vals(t, BatchNorm(x, w, b, rm, rv, BatchNormFrozen, 0.1, eps)), want, 1e-5)
	near(t, "eval keeps stats", vals(t, rm), []float64{0.4}, 1e-6)
	if e := BatchNorm(x, w, b, nil, nil, BatchNormEval, 0.1, eps).Err(); e == nil || !strings.Contains(e.Error(), "batch_norm") {
		t.Fatalf("eval without stats: %v", e)
	}
}

func TestNormSoftmaxEmbeddingDropout(t *testing.T) {
	s := scope(t)
	sm := f32(s, []float32{0, float32(math.Log(2))}, 2)
	near(t, "softmax", vals(t, sm.Softmax(0)), []float64{1.0 / 3, 2.0 / 3}, 1e-6)
	near(t, "log_softmax", vals(t, sm.LogSoftmax(-1)), []float64{math.Log(1.0 / 3), math.Log(2.0 / 3)}, 1e-6)

	x := f32(s, []float32{1, 2, 3}, 1, 3)
	sd := math.Sqrt(2.0/3 + 1e-5)
	near(t, "layer_norm", vals(t, LayerNorm(x, []int64{3}, nil, nil, 1e-5)), []float64{-1 / sd, 0, 1 / sd}, 1e-5)
	lw := f32(s, []float32{1, 2, 3}, 3)
	lb := f32(s, []float32{0, 1, 0}, 3)
	near(t, "layer_norm affine", vals(t, LayerNorm(x, []int64{3}, lw, lb, 1e-5)), []float64{-1 / sd, 1, 3 / sd}, 1e-5)

	w := f32(s, []float32{0, 1, 2, 3, 4, 5}, 3, 2)
	e := Embedding(w, i64t(s, []int64{2, 0}, 2), -1)
	shapeIs(t, e, 2, 2)
	near(t, "embedding", vals(t, e), []float64{4, 5, 0, 1}, 0)

	g := must(NewGenerator(1, dev))
	defer g.Close()
	ones := Ones(s, []int64{1000}, Float32, dev)
	d := vals(t, Dropout(ones, 0.5, true, g))
	zeros := 0
	for _, v := range d {
		switch v {
		case 0:
			zeros++
		case 2:
		default:
			t.Fatalf("dropout value %v, want 0 or 2", v)
		}
	}
	if zeros < 400 || zeros > 600 {
		t.Fatalf("dropout zeroed %d of 1000", zeros)
	}
	near(t, "dropout eval", vals(t, Dropout(sm, 0.5, false, g)), vals(t, sm), 0)
	near(t, "dropout p=1", vals(t, Dropout(sm, 1, true, g)), []float64{0, 0}, 0)
	if err := Dropout(sm, 1.5, true, g).Err(); err == nil {
		t.Fatal("dropout p=1.5 accepted")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "dropout") {
		t.Fatalf("scope error: %v", err)
	}
}

func TestLosses(t *testing.T) {
	s := scope(t)
	ln2, l34 := math.Log(2), -math.Log(0.75)
	logits := f32(s, []float32{0, 0, 0, float32(math.Log(3))}, 2, 2)
	target := i64t(s, []int64{0, 1}, 2)
	near(t, "ce mean", vals(t, CrossEntropy(logits, target, nil, IgnoreNone, ReduceMean)), []float64{(ln2 + l34) / 2}, 1e-6)
	near(t, "ce none", vals(t, CrossEntropy(logits, target, nil, IgnoreNone, ReduceNone)), []float64{ln2, l34}, 1e-6)
	near(t, "ce sum", vals(t, CrossEntropy(logits, target, nil, IgnoreNone, ReduceSum)), []float64{ln2 + l34}, 1e-6)
	wt := f32(s, []float32{2, 1}, 2)
	near(t, "ce weighted", vals(t, CrossEntropy(logits, target, wt, IgnoreNone, ReduceMean)), []float64{(2*ln2 + l34) / 3}, 1e-6)
	near(t, "ce ignore", vals(t, CrossEntropy(logits, target, wt, 1, ReduceMean)), []float64{ln2}, 1e-6)
	// label smoothing 0.2 on row 0 (uniform logits): unchanged ln2; check against the formula
	ls := vals(t, CrossEntropySmoothed(logits, target, nil, IgnoreNone, ReduceNone, 0.2))
	lp1 := []float64{math.Log(0.25), math.Log(0.75)}
	near(t, "ce smoothing", ls, []float64{ln2, -(0.9*lp1[1] + 0.1*lp1[0])}, 1e-6)

	x := f32(s, []float32{0, 0, 2}, 3)
	y := f32(s, []float32{1, 0, 1}, 3)
	near(t, "bce", vals(t, BCEWithLogits(x, y, nil, nil, ReduceNone)), []float64{ln2, ln2, math.Log(1 + math.Exp(-2))}, 1e-6)
	pw := f32(s, []float32{3, 3, 3}, 3)
	near(t, "bce pos_weight", vals(t, BCEWithLogits(x, y, nil, pw, ReduceNone)), []float64{3 * ln2, ln2, 3 * math.Log(1+math.Exp(-2))}, 1e-6)

	a := f32(s, []float32{1, 2}, 2)
	b := f32(s, []float32{3, 0}, 2)
	near(t, "l1", vals(t, L1Loss(a, b, ReduceMean)), []float64{2}, 1e-6)
	near(t, "l1 sum", vals(t, L1Loss(a, b, ReduceSum)), []float64{4}, 1e-6)
	near(t, "mse", vals(t, MSELoss(a, b, ReduceMean)), []float64{4}, 1e-6)
	near(t, "smooth l1", vals(t, SmoothL1Loss(a, f32(s, []float32{3, 1.5}, 2), ReduceNone, 1)), []float64{1.5, 0.125}, 1e-6)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if e := L1Loss(a, f32(s, []float32{1}, 1), ReduceMean).Err(); e == nil || !strings.HasPrefix(e.Error(), "torch: l1_loss: shapes [2] and [1]") {
		t.Fatalf("l1 shape error: %v", e)
	}
	if e := CrossEntropy(logits, f32(s, []float32{0, 1}, 2), nil, IgnoreNone, ReduceMean).Err(); e == nil ||
		!strings.HasPrefix(e.Error(), "torch: cross_entropy: shapes [2 2] and [2]") {
		t.Fatalf("ce dtype error: %v", e)
	}
}
