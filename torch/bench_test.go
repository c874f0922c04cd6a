package torch

import (
	"math"
	"testing"
)

// syncDev waits for the device so GPU timings include the work, not just the launches.
func syncDev(b *testing.B) {
	if dev.IsCUDA() {
		if err := CUDASynchronize(dev.Index()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallOverhead is one shim call that does no LibTorch work (reads a counter): the cost
// of crossing from Go into C and back.
func BenchmarkCallOverhead(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		LiveTensors()
	}
}

// BenchmarkAddTiny is a + b on one-element tensors, result in a scope freed every 1,000 ops:
// the per-op cost of the binding plus LibTorch's dispatcher.
func BenchmarkAddTiny(b *testing.B) {
	s := NewScope()
	defer s.Close()
	data := NewScope()
	defer data.Close()
	x := Ones(data, []int64{1}, Float32, dev)
	y := Ones(data, []int64{1}, Float32, dev)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		x.Add(y) // x, y live in data: the result goes to data; keep it bounded
		i++
		if i%1000 == 0 {
			data.Close()
			data = NewScope()
			x = Ones(data, []int64{1}, Float32, dev)
			y = Ones(data, []int64{1}, Float32, dev)
		}
	}
	syncDev(b)
}

// BenchmarkAddTinyScoped is the same through a per-step scope and borrowed views (the model's
// pattern), closing the scope every 100 ops.
func BenchmarkAddTinyScoped(b *testing.B) {
	x := Ones(nil, []int64{1}, Float32, dev)
	y := Ones(nil, []int64{1}, Float32, dev)
	defer x.Close()
	defer y.Close()
	s := NewScope()
	xs, ys := s.Use(x), s.Use(y)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		xs.Add(ys)
		i++
		if i%100 == 0 {
			s.Reset()
			xs, ys = s.Use(x), s.Use(y)
		}
	}
	s.Close()
	syncDev(b)
}

// attentionInputs are q, k, v [8, 8, 64, 32] and a key padding mask [8, 64] (a quarter padded).
func attentionInputs(s *Scope, grad bool) (q, k, v, mask *Tensor) {
	return attentionInputsOf(s, grad, 8, 8, 64, 32)
}

// attentionInputsOf is q, k, v [B, H, L, D] and a key-padding mask [B, L] masking the last quarter.
func attentionInputsOf(s *Scope, grad bool, B, H, L, D int64) (q, k, v, mask *Tensor) {
	g, _ := NewGenerator(0, CPU)
	defer g.Close()
	mk := func() *Tensor {
		t := Randn(s, g, []int64{B, H, L, D}, Float32, dev)
		if grad {
			t = t.Detach().RequiresGrad(true)
		}
		return t
	}
	m := make([]bool, B*L)
	for i := range m {
		m[i] = int64(i)%L >= 3*L/4
	}
	return mk(), mk(), mk(), FromBool(s, m, []int64{B, L}, dev)
}

// unfusedAttention is the same maths as six separate ops.
func unfusedAttention(q, k, v, mask *Tensor) *Tensor {
	scale := 1 / math.Sqrt(float64(q.Size(-1)))
	m := mask.Unsqueeze(1).Unsqueeze(1)                                           // [B, 1, 1, S]
	scores := q.MulScalar(scale).Matmul(k.Transpose(-2, -1)).MaskedFill(m, -1e30) // [B, H, L, S]
	return scores.Softmax(-1).Matmul(v)
}

func benchAttention(b *testing.B, fused, backward bool) {
	benchAttentionOf(b, fused, backward, 8, 8, 64, 32)
}

// benchAttentionOf times attention over inputs of attentionInputsOf(B, H, L, D).
func benchAttentionOf(b *testing.B, fused, backward bool, B, H, L, D int64) {
	data := NewScope()
	defer data.Close()
	q, k, v, mask := attentionInputsOf(data, backward, B, H, L, D)
	// warm up and check the two agree
	{
		s := NewScope()
		d := ScaledDotProductAttention(s.Use(q), s.Use(k), s.Use(v), s.Use(mask), false).Sub(unfusedAttention(s.Use(q), s.Use(k), s.Use(v), s.Use(mask))).Abs().MaxAll()
		if m, err := d.Item(); err != nil || m > 1e-4 {
			b.Fatalf("fused and unfused differ by %v (%v)", m, err)
		}
		s.Close()
	}
	b.ResetTimer()
	for b.Loop() {
		s := NewScope()
		qs, ks, vs, ms := s.Use(q), s.Use(k), s.Use(v), s.Use(mask)
		var o *Tensor
		if fused {
			o = ScaledDotProductAttention(qs, ks, vs, ms, false)
		} else {
			o = unfusedAttention(qs, ks, vs, ms)
		}
		if backward {
			if err := o.SumAll().Backward(); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Err(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	syncDev(b)
}

func BenchmarkAttentionFused(b *testing.B)           { benchAttention(b, true, false) }
func BenchmarkAttentionUnfused(b *testing.B)         { benchAttention(b, false, false) }
func BenchmarkAttentionFusedBackward(b *testing.B)   { benchAttention(b, true, true) }
func BenchmarkAttentionUnfusedBackward(b *testing.B) { benchAttention(b, false, true) }

// BenchmarkAttentionTinyHeads* time forward and backward of attention over the tiny preset's
// encoder heads (8 rows, 4 heads of 16, 30 tokens): the shim's small-matrix products against
// LibTorch's matmul (the unfused ops).
//
//	go test ./torch -run '^$' -bench AttentionTinyHeads
func BenchmarkAttentionTinyHeadsFused(b *testing.B)   { benchAttentionOf(b, true, true, 8, 4, 30, 16) }
func BenchmarkAttentionTinyHeadsUnfused(b *testing.B) { benchAttentionOf(b, false, true, 8, 4, 30, 16) }

func benchMHA(b *testing.B, fused bool) {
	data := NewScope()
	defer data.Close()
	g, _ := NewGenerator(0, CPU)
	defer g.Close()
	const B, L, E, H = 8, 64, 256, 8
	rnd := func(shape ...int64) *Tensor { return Randn(data, g, shape, Float32, dev).MulScalar(0.05) }
	w := MHAWeights{InWeight: rnd(3*E, E), InBias: rnd(3 * E), OutWeight: rnd(E, E), OutBias: rnd(E), Heads: H}
	x := rnd(B, L, E)
	m := make([]bool, B*L)
	for i := range m {
		m[i] = i%L >= 3*L/4
	}
	mask := FromBool(data, m, []int64{B, L}, dev)
	b.ResetTimer()
	for b.Loop() {
		s := NewScope()
		xs := s.Use(x)
		var o *Tensor
		if fused {
			o = MultiHeadAttention(xs, xs, xs, w, s.Use(mask), false, 0, nil)
		} else {
			o = mhaReference(xs, xs, xs, w, s.Use(mask), false)
		}
		if err := o.Err(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	syncDev(b)
}

func BenchmarkMHAFused(b *testing.B)   { benchMHA(b, true) }
func BenchmarkMHAUnfused(b *testing.B) { benchMHA(b, false) }

// BenchmarkAdamWStepFused and BenchmarkAdamWStepOps time one AdamW step over 3.5 M float32
// parameters in 120 tensors of 256 to 400 K elements — in one pass over each tensor's memory, and
// through LibTorch's ops:
//
//	go test ./torch -run '^$' -bench AdamWStep
func BenchmarkAdamWStepFused(b *testing.B) { benchAdamW(b, true) }
func BenchmarkAdamWStepOps(b *testing.B)   { benchAdamW(b, false) }

func benchAdamW(b *testing.B, fused bool) {
	s := NewScope()
	defer s.Close()
	sizes := []int64{256, 65536, 16384, 256 * 256, 512, 4096}
	var ps []*Tensor
	var total int64
	for i := 0; total < 3_500_000; i++ {
		n := sizes[i%len(sizes)]
		if i%20 == 0 {
			n = 400_000
		}
		p := Randn(s, nil, []int64{n}, Float32, dev).RequiresGrad(true)
		if err := p.SetGrad(Randn(s, nil, []int64{n}, Float32, dev)); err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
		total += n
	}
	opt, err := NewAdamW([]ParamGroup{NewParamGroup(ps, 1e-4)})
	if err != nil {
		b.Fatal(err)
	}
	defer opt.Close()
	if err := opt.SetFused(fused); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := opt.Step(); err != nil {
			b.Fatal(err)
		}
		syncDev(b)
	}
	b.ReportMetric(float64(total), "params")
}
