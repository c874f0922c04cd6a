package torch

import (
	"slices"
	"testing"
	"time"
)

// chain is a small network whose backward reaches its parameters last to first:
// loss = sum(tanh(tanh(tanh(x·w0)·w1)·w2)·w3); unused takes no part.
func chainParams(t *testing.T) []*Tensor {
	t.Helper()
	var ps []*Tensor
	for i := range 5 {
		d := []float32{0.3 + float32(i)*0.1, -0.7, 1.1, 0.05 * float32(i+1), -0.2, 0.9}
		ps = append(ps, f32(nil, d, 2, 3).RequiresGrad(true))
	}
	return ps
}

func chainLoss(s *Scope, ps []*Tensor) *Tensor {
	x := f32(s, []float32{0.5, -1, 2, 0.25, 1.5, -0.75}, 2, 3)
	h := x
	for _, p := range ps[:4] {
		h = h.Mul(s.Use(p)).Tanh()
	}
	return h.SumAll()
}

// TestBucketsOverlapBackward: the gradients backward writes through the buckets are bit for bit
// the ones it writes without them; each bucket is reported once per Arm, the last layer's before
// the first layer's (while backward still runs), a parameter backward never reaches is reported
// by Finish with a zero gradient, and Host is the gradients' own memory.
func TestBucketsOverlapBackward(t *testing.T) {
	ps := chainParams(t)
	defer func() {
		for _, p := range ps {
			p.Close()
		}
	}()
	// The reference: plain backward, gradients flattened in the buckets' layout (last layer first).
	layout := []*Tensor{ps[3], ps[2], ps[1], ps[0], ps[4]}
	s := scope(t)
	if err := chainLoss(s, ps).Backward(); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 30)
	if err := FlattenGrads(layout, want); err != nil {
		t.Fatal(err)
	}
	if err := ZeroGrad(ps); err != nil {
		t.Fatal(err)
	}

	b, err := NewBuckets(layout, []int{1, 3, 4, 5}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Host()) != 32 || b.Len() != 4 || b.GradElements() != 30 {
		t.Fatalf("host %d, buckets %d, grads %d; want 32, 4, 30", len(b.Host()), b.Len(), b.GradElements())
	}
	if lo, hi := b.Range(1); lo != 6 || hi != 18 {
		t.Fatalf("bucket 1 is [%d, %d), want [6, 18)", lo, hi)
	}
	for round := range 2 {
		epoch, err := b.Arm()
		if err != nil {
			t.Fatal(err)
		}
		if err := chainLoss(s, ps).Backward(); err != nil {
			t.Fatal(err)
		}
		// Backward itself reported buckets 0-2; bucket 3 (ps[4]) only after Finish.
		var order []int
		for len(order) < 3 {
			select {
			case r := <-b.Ready():
				if r.Epoch == epoch {
					order = append(order, r.Bucket)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: reports %v after backward, want buckets 0, 1, 2", round, order)
			}
		}
		if !slices.Equal(order, []int{0, 1, 2}) {
			t.Fatalf("round %d: buckets reported in order %v, want 0, 1, 2 (the last layer's first)", round, order)
		}
		select {
		case r := <-b.Ready():
			t.Fatalf("round %d: bucket %d reported before Finish; its parameter takes no part in backward", round, r.Bucket)
		case <-time.After(50 * time.Millisecond):
		}
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		if r := <-b.Ready(); r.Bucket != 3 || r.Epoch != epoch {
			t.Fatalf("round %d: Finish reported %+v, want bucket 3 of epoch %d", round, r, epoch)
		}
		got := b.Host()[:30]
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("round %d: gradient element %d is %v through the buckets, %v without (they must be the same bits)", round, i, got[i], want[i])
			}
		}
	}
	// Host is the gradients: what the caller writes there (an all-reduce) is what the
	// optimizer reads.
	b.Host()[6] = 42
	g := make([]float32, 12)
	if err := FlattenGrads([]*Tensor{ps[2], ps[1]}, g); err != nil {
		t.Fatal(err)
	}
	if g[0] != 42 {
		t.Fatalf("ps[2]'s first gradient element is %v after writing 42 into Host, want 42", g[0])
	}
	// Close leaves each parameter a copy of its gradient.
	b.Close()
	g2 := make([]float32, 12)
	if err := FlattenGrads([]*Tensor{ps[2], ps[1]}, g2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g, g2) {
		t.Fatal("the gradients changed when the buckets were closed")
	}
}

func TestBucketsRefuseBadLayouts(t *testing.T) {
	ps := chainParams(t)
	defer func() {
		for _, p := range ps {
			p.Close()
		}
	}()
	for name, ends := range map[string][]int{"short": {2, 4}, "empty": nil, "descending": {3, 2, 5}} {
		if b, err := NewBuckets(ps, ends, 0); err == nil {
			b.Close()
			t.Errorf("%s ends %v: no error", name, ends)
		}
	}
	plain := f32(nil, []float32{1, 2}, 2)
	defer plain.Close()
	if b, err := NewBuckets([]*Tensor{plain}, []int{1}, 0); err == nil {
		b.Close()
		t.Error("a tensor that does not require grad: no error")
	}
}

// TestClipGradNormOverBuckets: gradients that are views into one buffer (a Buckets') are scaled
// as one block; the norm and the clipped gradients are bit for bit those of separate gradient
// tensors with the same values (a learner clips the same with buckets as without), whatever order
// the parameters come in, and the elements after the gradients (Extra) are left alone.
func TestClipGradNormOverBuckets(t *testing.T) {
	for _, maxNorm := range []float64{0.5, 1e6} { // clipping, and a bound the norm stays under
		// Separate tensors: the reference.
		ref := chainParams(t)
		s := scope(t)
		if err := chainLoss(s, ref).Backward(); err != nil {
			t.Fatal(err)
		}
		wantNorm, err := ClipGradNorm(ref[:4], maxNorm) // ps[4] takes no part: no gradient
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, 24)
		if err := FlattenGrads(ref[:4], want); err != nil {
			t.Fatal(err)
		}

		ps := chainParams(t)
		b, err := NewBuckets([]*Tensor{ps[3], ps[2], ps[1], ps[0], ps[4]}, []int{2, 5}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Arm(); err != nil {
			t.Fatal(err)
		}
		if err := chainLoss(s, ps).Backward(); err != nil {
			t.Fatal(err)
		}
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		extra := b.Host()[30:]
		copy(extra, []float32{7, 8, 9})
		// Every parameter, in model order: the gradients tile the buffer's first 30 elements.
		norm, err := ClipGradNorm(ps, maxNorm)
		if err != nil {
			t.Fatal(err)
		}
		if norm != wantNorm {
			t.Fatalf("max %v: norm %v, want %v", maxNorm, norm, wantNorm)
		}
		got := make([]float32, 24)
		if err := FlattenGrads(ps[:4], got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("max %v: clipped gradients %v, want %v", maxNorm, got, want)
		}
		if g := b.Host()[24:30]; slices.ContainsFunc(g, func(v float32) bool { return v != 0 }) {
			t.Fatalf("the unused parameter's gradient %v, want zeros", g)
		}
		if !slices.Equal(extra, []float32{7, 8, 9}) {
			t.Fatalf("the extra elements became %v", extra)
		}
		b.Close()
		for _, p := range append(ref, ps...) {
			p.Close()
		}
	}
}
