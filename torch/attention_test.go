package torch

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestScaledDotProductAttention(t *testing.T) {
	s := scope(t)
	// One query against keys with scores 0 and ln 3: weights 1/4, 3/4 over values 4 and 8.
	q := f32(s, []float32{1}, 1, 1, 1, 1)
	k := f32(s, []float32{0, float32(math.Log(3))}, 1, 1, 2, 1)
	v := f32(s, []float32{4, 8}, 1, 1, 2, 1)
	near(t, "plain", vals(t, ScaledDotProductAttention(q, k, v, nil, false)), []float64{7}, 1e-5)
	pad := FromBool(s, []bool{false, true}, []int64{1, 2}, dev)
	near(t, "key padding", vals(t, ScaledDotProductAttention(q, k, v, pad, false)), []float64{4}, 1e-5)
	all := FromBool(s, []bool{true, true}, []int64{1, 2}, dev)
	near(t, "all keys masked attend uniformly", vals(t, ScaledDotProductAttention(q, k, v, all, false)), []float64{6}, 1e-5)
	// Causal: two queries; the first sees only key 0.
	q2 := f32(s, []float32{1, 1}, 1, 1, 2, 1)
	near(t, "causal", vals(t, ScaledDotProductAttention(q2, k, v, nil, true)), []float64{4, 7}, 1e-5)
	near(t, "causal + padding", vals(t, ScaledDotProductAttention(q2, k, v, FromBool(s, []bool{true, false}, []int64{1, 2}, dev), true)),
		[]float64{6, 8}, 1e-5) // query 0: its only visible key is padding -> uniform over both
	// scaling by 1/sqrt(D): D = 4, q.k = 4 ln 3 * ... use q = [1 1 1 1], k1 = ln3/2 * ones -> score ln 3
	q4 := f32(s, []float32{1, 1, 1, 1}, 1, 1, 1, 4)
	l := float32(math.Log(3) / 2)
	k4 := f32(s, []float32{0, 0, 0, 0, l, l, l, l}, 1, 1, 2, 4)
	v4 := f32(s, []float32{4, 0, 0, 0, 8, 0, 0, 0}, 1, 1, 2, 4)
	near(t, "scale", vals(t, ScaledDotProductAttention(q4, k4, v4, nil, false)), []float64{7, 0, 0, 0}, 1e-5)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if e := ScaledDotProductAttention(q, k, v, FromBool(s, []bool{false}, []int64{1, 1}, dev), false).Err(); e == nil ||
		!strings.HasPrefix(e.Error(), "torch: attention: shapes [1 1 1 1], [1 1 2 1], [1 1 2 1] and [1 1]: key padding mask has shape") {
		t.Fatalf("mask shape error: %v", e)
	}
	if e := ScaledDotProductAttention(q.Reshape(1, 1, 1), k, v, nil, false).Err(); e == nil || !strings.Contains(e.Error(), "4-d") {
		t.Fatalf("rank error: %v", e)
	}
}

// mhaReference composes MultiHeadAttention from separate ops: the unfused path.
func mhaReference(q, k, v *Tensor, w MHAWeights, mask *Tensor, causal bool) *Tensor {
	e := q.Size(-1)
	h := int64(w.Heads)
	in := w.InWeight.Split([]int64{e, e, e}, 0)
	var bias []*Tensor
	if w.InBias != nil {
		bias = w.InBias.Split([]int64{e, e, e}, 0)
	} else {
		bias = []*Tensor{nil, nil, nil}
	}
	heads := func(x *Tensor) *Tensor { // [B, L, E] -> [B, H, L, E/H]
		return x.Reshape(x.Size(0), x.Size(1), h, e/h).Transpose(1, 2)
	}
	qh := heads(Linear(q, in[0], bias[0]))
	kh := heads(Linear(k, in[1], bias[1]))
	vh := heads(Linear(v, in[2], bias[2]))
	o := ScaledDotProductAttention(qh, kh, vh, mask, causal) // [B, H, L, D]
	o = o.Transpose(1, 2).Reshape(q.Size(0), q.Size(1), e)
	return Linear(o, w.OutWeight, w.OutBias)
}

func TestMultiHeadAttention(t *testing.T) {
	s := scope(t)
	g := must(NewGenerator(3, CPU))
	defer g.Close()
	const B, L, S, E, H = 2, 3, 4, 8, 2
	rnd := func(shape ...int64) *Tensor { return Randn(s, g, shape, Float32, dev) }
	w := MHAWeights{InWeight: rnd(3*E, E), InBias: rnd(3 * E), OutWeight: rnd(E, E), OutBias: rnd(E), Heads: H}
	x := rnd(B, L, E)
	mem := rnd(B, S, E)
	pos := rnd(B, S, E)
	mask := FromBool(s, []bool{false, false, false, true, false, true, true, true}, []int64{B, S}, dev)
	selfMask := FromBool(s, []bool{false, false, true, false, false, false}, []int64{B, L}, dev)
	kq := mem.Add(pos)
	cases := []struct {
		name    string
		q, k, v *Tensor
		mask    *Tensor
		causal  bool
	}{
		{"self", x, x, x, selfMask, false},
		{"self causal", x, x, x, nil, true},
		{"q=k (DETR encoder)", kq, kq, mem, mask, false},
		{"k=v", x, mem, mem, mask, false},
		{"cross", x, kq, mem, mask, false},
	}
	for _, c := range cases {
		got := MultiHeadAttention(c.q, c.k, c.v, w, c.mask, c.causal, 0, nil)
		want := mhaReference(c.q, c.k, c.v, w, c.mask, c.causal)
		shapeIs(t, got, B, c.q.Size(1), E)
		near(t, c.name, vals(t, got), vals(t, want), 1e-4)
	}
	nb := w
	nb.InBias, nb.OutBias = nil, nil
	near(t, "no bias", vals(t, MultiHeadAttention(x, x, x, nb, nil, false, 0, nil)), vals(t, mhaReference(x, x, x, nb, nil, false)), 1e-4)
	bad := w
	bad.Heads = 3
	if e := MultiHeadAttention(x, x, x, bad, nil, false, 0, nil).Err(); e == nil || !strings.Contains(e.Error(), "not divisible by 3 heads") {
		t.Fatalf("heads error: %v", e)
	}
	if e := MultiHeadAttention(x, rnd(B, S, E+1), mem, w, nil, false, 0, nil).Err(); e == nil ||
		!strings.HasPrefix(e.Error(), "torch: multi_head_attention: shapes [2 3 8], [2 4 9] and [24 8]") {
		t.Fatalf("kv shape error: %v", e)
	}
	// dropout: deterministic for a seeded generator, identity at p = 0
	g1 := must(NewGenerator(9, dev))
	defer g1.Close()
	g2 := must(NewGenerator(9, dev))
	defer g2.Close()
	d1 := vals(t, MultiHeadAttention(x, x, x, w, nil, false, 0.3, g1))
	d2 := vals(t, MultiHeadAttention(x, x, x, w, nil, false, 0.3, g2))
	near(t, "seeded dropout", d1, d2, 0)
}

// TestAttentionProductsAgainstFloat64 checks attention's float32 products on the CPU — the
// small-matrix path of the shim (small_matmul.cpp) for heads up to 64³ multiply-adds (20³ on a CPU
// without AVX2, or with ATEN_CPU_CAPABILITY=default), at::matmul
// above — against the same maths in float64, values and gradients, for head-split views (the
// layout attention gets from MultiHeadAttention), sizes that are not multiples of the kernel's
// 16-column panels or 4-row blocks, masks with a fully masked row, and causal masks.
func TestAttentionProductsAgainstFloat64(t *testing.T) {
	s := scope(t)
	g := must(NewGenerator(11, CPU))
	defer g.Close()
	cases := []struct {
		B, H, L, S, D int64
		causal        bool
	}{
		{2, 4, 30, 30, 16, false}, // the tiny preset's encoder
		{2, 4, 13, 17, 16, true},
		{1, 1, 1, 1, 1, false},
		{2, 3, 7, 45, 17, false}, // 45 columns: panels of 16, 16 and 13
		{1, 2, 33, 5, 64, true},
		{1, 2, 70, 70, 64, false}, // over the small path's bound: at::matmul
	}
	for _, c := range cases {
		name := fmt.Sprintf("B%d H%d L%d S%d D%d causal %v", c.B, c.H, c.L, c.S, c.D, c.causal)
		// [B, L, H·D] split into heads: [B, H, L, D] views with the heads' stride.
		heads := func(n int64) *Tensor {
			return Randn(s, g, []int64{c.B, n, c.H * c.D}, Float32, dev).Reshape(c.B, n, c.H, c.D).Transpose(1, 2)
		}
		q, k, v := heads(c.L), heads(c.S), heads(c.S)
		// Batch 0 masks every key (its queries attend uniformly); the others their last key.
		pad := make([]bool, c.B*c.S)
		for i := range pad {
			pad[i] = int64(i) < c.S || (int64(i)%c.S == c.S-1 && c.S > 1)
		}
		mask := FromBool(s, pad, []int64{c.B, c.S}, dev)
		weights := Randn(s, g, []int64{c.B, c.H, c.L, c.D}, Float32, dev)
		run := func(dt DType) (out, gq, gk, gv []float64) {
			leaf := func(x *Tensor) *Tensor { return x.ToDtype(dt).Detach().RequiresGrad(true) }
			q2, k2, v2 := leaf(q), leaf(k), leaf(v)
			o := ScaledDotProductAttention(q2, k2, v2, mask, c.causal)
			if err := o.Mul(weights.ToDtype(dt)).SumAll().Backward(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return vals(t, o), vals(t, q2.Grad()), vals(t, k2.Grad()), vals(t, v2.Grad())
		}
		o32, q32, k32, v32 := run(Float32)
		o64, q64, k64, v64 := run(Float64)
		within(t, name+": output", o32, o64, 2e-5)
		within(t, name+": ∂q", q32, q64, 2e-5)
		within(t, name+": ∂k", k32, k64, 2e-5)
		within(t, name+": ∂v", v32, v64, 2e-5)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// within is near for long vectors: it names the first value off by more than tol (absolute plus
// relative) and the largest error, without printing the vectors.
func within(t testing.TB, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		d := math.Abs(got[i] - want[i])
		if math.IsNaN(got[i]) || d > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
		worst = max(worst, d)
	}
	t.Logf("%s: largest error %.2g", what, worst)
}
