package torch

import (
	"math"
	"testing"
)

// input is one float64 input of a gradient check.
type input struct {
	data  []float64
	shape []int64
	grad  bool // checked (and requires grad)
}

// gradCheck compares the autograd gradient of f's scalar output with respect to every input
// marked grad against central finite differences in float64.
func gradCheck(t *testing.T, name string, ins []input, f func(xs []*Tensor) *Tensor) {
	t.Helper()
	const h, tol = 1e-6, 1e-6
	eval := func(datas [][]float64, withGrad bool) (float64, [][]float64) {
		s := NewScope()
		defer s.Close()
		xs := make([]*Tensor, len(ins))
		owned := make([]*Tensor, len(ins))
		for i, in := range ins {
			owned[i] = FromFloat64(nil, datas[i], in.shape, dev)
			if withGrad && in.grad {
				owned[i].RequiresGrad(true)
			}
			xs[i] = s.Use(owned[i])
		}
		defer func() {
			for _, o := range owned {
				o.Close()
			}
		}()
		out := f(xs)
		v, err := out.Item()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !withGrad {
			return v, nil
		}
		if err := out.Backward(); err != nil {
			t.Fatalf("%s: backward: %v", name, err)
		}
		grads := make([][]float64, len(ins))
		for i, in := range ins {
			if in.grad {
				g := xs[i].Grad()
				if g == nil {
					t.Fatalf("%s: input %d got no gradient", name, i)
				}
				grads[i] = vals(t, g)
			}
		}
		return v, grads
	}
	datas := make([][]float64, len(ins))
	for i, in := range ins {
		datas[i] = append([]float64(nil), in.data...)
	}
	_, analytic := eval(datas, true)
	for i, in := range ins {
		if !in.grad {
			continue
		}
		for j := range in.data {
			orig := datas[i][j]
			datas[i][j] = orig + h
			fp, _ := eval(datas, false)
			datas[i][j] = orig - h
			fm, _ := eval(datas, false)
			datas[i][j] = orig
			num := (fp - fm) / (2 * h)
			if math.Abs(num-analytic[i][j]) > tol*(1+math.Abs(num))*10 {
				t.Fatalf("%s: d/dx%d[%d]: autograd %.9g, finite differences %.9g", name, i, j, analytic[i][j], num)
			}
		}
	}
}

// pseudo is a deterministic spread of values in (-1, 1).
func pseudo(n int, seed float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Sin(seed + float64(i)*1.7)
	}
	return out
}

// weighted makes a scalar from y that depends on every element with a distinct weight.
func weighted(y *Tensor) *Tensor {
	if y.Err() != nil {
		return y
	}
	n := y.Numel()
	w := FromFloat64(nil, pseudo(int(n), 0.3), y.Shape(), dev)
	s := NewScope()
	out := y.Mul(s.Use(w)).SumAll().Keep()
	s.Close()
	w.Close()
	if y.scope != nil { // hand the result to y's scope
		out.scope = nil
		adopt(y.scope, out)
		return out
	}
	return out
}

func TestGradAttention(t *testing.T) {
	const B, H, L, S, D = 1, 2, 3, 4, 2
	mask := []bool{false, false, true, false}
	for _, causal := range []bool{false, true} {
		gradCheck(t, "sdpa", []input{
			{pseudo(B*H*L*D, 1), []int64{B, H, L, D}, true},
			{pseudo(B*H*S*D, 2), []int64{B, H, S, D}, true},
			{pseudo(B*H*S*D, 3), []int64{B, H, S, D}, true},
		}, func(x []*Tensor) *Tensor {
			m := FromBool(x[0].scope, mask, []int64{B, S}, dev)
			return weighted(ScaledDotProductAttention(x[0], x[1], x[2], m, causal))
		})
	}
	const E = 4
	gradCheck(t, "multi_head_attention", []input{
		{pseudo(B*L*E, 4), []int64{B, L, E}, true},
		{pseudo(B*S*E, 5), []int64{B, S, E}, true},
		{pseudo(3*E*E, 6), []int64{3 * E, E}, true},
		{pseudo(3*E, 7), []int64{3 * E}, true},
		{pseudo(E*E, 8), []int64{E, E}, true},
		{pseudo(E, 9), []int64{E}, true},
	}, func(x []*Tensor) *Tensor {
		m := FromBool(x[0].scope, mask, []int64{B, S}, dev)
		w := MHAWeights{InWeight: x[2], InBias: x[3], OutWeight: x[4], OutBias: x[5], Heads: 2}
		return weighted(MultiHeadAttention(x[0], x[1], x[1], w, m, false, 0, nil))
	})
}

func TestGradLayerNorm(t *testing.T) {
	gradCheck(t, "layer_norm", []input{
		{pseudo(2*5, 1), []int64{2, 5}, true},
		{pseudo(5, 2), []int64{5}, true},
		{pseudo(5, 3), []int64{5}, true},
	}, func(x []*Tensor) *Tensor {
		return weighted(LayerNorm(x[0], []int64{5}, x[1], x[2], 1e-5))
	})
}

func TestGradCrossEntropy(t *testing.T) {
	for _, red := range []Reduction{ReduceMean, ReduceSum} {
		gradCheck(t, "cross_entropy", []input{
			{pseudo(4*3, 1), []int64{4, 3}, true},
			{[]float64{0.5, 2, 1}, []int64{3}, false},
		}, func(x []*Tensor) *Tensor {
			target := FromInt64(x[0].scope, []int64{0, 2, 1, 2}, []int64{4}, dev)
			return CrossEntropy(x[0], target, x[1], 1, red) // class 1 ignored, classes weighted
		})
	}
	gradCheck(t, "cross_entropy smoothed", []input{{pseudo(3*3, 2), []int64{3, 3}, true}}, func(x []*Tensor) *Tensor {
		target := FromInt64(x[0].scope, []int64{0, 2, 1}, []int64{3}, dev)
		return CrossEntropySmoothed(x[0], target, nil, IgnoreNone, ReduceMean, 0.1)
	})
}

func TestGradConvBatchNorm(t *testing.T) {
	gradCheck(t, "conv2d", []input{
		{pseudo(1*2*4*4, 1), []int64{1, 2, 4, 4}, true},
		{pseudo(3*2*3*3, 2), []int64{3, 2, 3, 3}, true},
		{pseudo(3, 3), []int64{3}, true},
	}, func(x []*Tensor) *Tensor {
		return weighted(Conv2d(x[0], x[1], x[2], Conv2dOptions{Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}}))
	})
	gradCheck(t, "batch_norm train", []input{
		{pseudo(3*2*2*2, 1), []int64{3, 2, 2, 2}, true},
		{pseudo(2, 2), []int64{2}, true},
		{pseudo(2, 3), []int64{2}, true},
	}, func(x []*Tensor) *Tensor {
		return weighted(BatchNorm(x[0], x[1], x[2], nil, nil, BatchNormTrain, 0.1, 1e-5))
	})
	gradCheck(t, "batch_norm frozen", []input{
		{pseudo(2*2*2*2, 1), []int64{2, 2, 2, 2}, true},
		{[]float64{1, 2}, []int64{2}, false},
		{[]float64{0, 1}, []int64{2}, false},
		{[]float64{0.5, -0.5}, []int64{2}, false},
		{[]float64{2, 0.5}, []int64{2}, false},
	}, func(x []*Tensor) *Tensor {
		return weighted(BatchNorm(x[0], x[1], x[2], x[3], x[4], BatchNormFrozen, 0.1, 1e-5))
	})
}

func TestGradMisc(t *testing.T) {
	gradCheck(t, "bce_with_logits + gelu + embedding", []input{
		{pseudo(6, 1), []int64{3, 2}, true},
		{pseudo(4*2, 2), []int64{4, 2}, true},
	}, func(x []*Tensor) *Tensor {
		idx := FromInt64(x[0].scope, []int64{3, 0, 3}, []int64{3}, dev)
		e := Embedding(x[1], idx, -1)
		y := FromFloat64(x[0].scope, []float64{1, 0, 0.5, 1, 0, 0}, []int64{3, 2}, dev)
		return BCEWithLogits(x[0].Gelu().Add(e), y, nil, nil, ReduceMean)
	})
}
