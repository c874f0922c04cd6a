package model

import (
	"math"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

// TestITMPairScores: images encoded once and paired with texts row by row,
// in any order and across calls, score as ITMScoreMatrix scores the same
// pairs; rows of an image outside the set and ragged texts are refused.
func TestITMPairScores(t *testing.T) {
	m := newTaskModel(t, parityConfig(), 5)
	pb := pairBatch(synthBatch(t, 8, 4, 64, 2))
	const B = 4
	s := torch.NewScope()
	defer s.Close()
	in, err := PairsToTensors(s, pb, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.ITMScoreMatrix(s, in) // [B·B] image-major
	if err != nil {
		t.Fatal(err)
	}
	img, err := m.EncodeITMImages(s, in)
	if err != nil {
		t.Fatal(err)
	}
	L := pb.SeqLen
	// Every pair in a scrambled order, in passes of 3 rows (the last one
	// short), each in a scope of its own.
	var pairs [][2]int
	for k := 0; k < B*B; k++ {
		pairs = append(pairs, [2]int{(k * 7) % B, (k*7/B + k) % B})
	}
	seen := map[[2]int]bool{}
	for lo := 0; lo < len(pairs); lo += 3 {
		rows := pairs[lo:min(lo+3, len(pairs))]
		var images []int
		var ids []int64
		var mask []bool
		for _, p := range rows {
			images = append(images, p[0])
			ids = append(ids, pb.TokenIDs[p[1]*L:(p[1]+1)*L]...)
			mask = append(mask, pb.TokenMask[p[1]*L:(p[1]+1)*L]...)
		}
		ps := torch.NewScope()
		got, err := m.ITMPairScores(ps, img, images, ids, mask)
		ps.Close()
		if err != nil {
			t.Fatal(err)
		}
		for r, p := range rows {
			seen[p] = true
			if w := want[p[0]*B+p[1]]; math.Abs(got[r]-w) > 1e-5 {
				t.Errorf("image %d, text %d: %.6f, ITMScoreMatrix %.6f", p[0], p[1], got[r], w)
			}
		}
	}
	if len(seen) != B*B {
		t.Fatalf("the test scored %d distinct pairs, want %d", len(seen), B*B)
	}

	ids, mask := pb.TokenIDs[:2*L], pb.TokenMask[:2*L]
	for _, bad := range []struct {
		name   string
		images []int
		ids    []int64
		mask   []bool
	}{
		{"image out of range", []int{0, B}, ids, mask},
		{"negative image", []int{-1, 0}, ids, mask},
		{"ragged texts", []int{0, 1}, ids[:2*L-1], mask[:2*L-1]},
		{"short mask", []int{0, 1}, ids, mask[:L]},
		{"no rows", nil, nil, nil},
	} {
		ps := torch.NewScope()
		if _, err := m.ITMPairScores(ps, img, bad.images, bad.ids, bad.mask); err == nil {
			t.Errorf("%s: accepted", bad.name)
		}
		ps.Close()
	}
}
