package model

import (
	"math"
	"slices"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

// TestMineHardNegativesByHand: a 4×4 score matrix (row: image, column:
// text) in which the diagonal scores highest everywhere, so a miner that
// ignored matching would pick it; rows 2 and 3 show the same image.
func TestMineHardNegativesByHand(t *testing.T) {
	scores := []float64{
		9, 5, 7, 1, // image 0: hardest other text 2
		3, 9, 2, 4, // image 1: text 3
		6, 8, 9, 9, // image 2: texts 2 and 3 match it (same image), so text 1
		6, 0, 9, 9, // image 3: likewise text 0
	}
	ids := []uint64{10, 11, 12, 12}
	hardText, hardImage, err := MineHardNegatives(scores, 4, ids)
	if err != nil {
		t.Fatal(err)
	}
	// Text 0: images 1..3 score 3, 6, 6 — a tie, the lower index (2) wins.
	// Text 1: 5, 8, 0 → image 2. Text 2: 7, 2 (images 2 and 3 match) → 0.
	// Text 3: 1, 4 → image 1.
	if want := []int{2, 3, 1, 0}; !slices.Equal(hardText, want) {
		t.Errorf("hard text per image %v, want %v", hardText, want)
	}
	if want := []int{2, 2, 0, 1}; !slices.Equal(hardImage, want) {
		t.Errorf("hard image per text %v, want %v", hardImage, want)
	}
	// Without ids only the diagonal matches: image 2 now takes text 3.
	hardText, _, err = MineHardNegatives(scores, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 3, 3, 2}; !slices.Equal(hardText, want) {
		t.Errorf("without ids: hard text per image %v, want %v", hardText, want)
	}
	// One image for every row: no negative anywhere.
	hardText, hardImage, err = MineHardNegatives([]float64{1, 2, 3, 4}, 2, []uint64{5, 5})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hardText, []int{-1, -1}) || !slices.Equal(hardImage, []int{-1, -1}) {
		t.Errorf("one image: %v %v, want no negatives", hardText, hardImage)
	}
	for _, bad := range []struct {
		scores []float64
		b      int
		ids    []uint64
	}{{[]float64{1, 2, 3}, 2, nil}, {[]float64{1, math.NaN(), 3, 4}, 2, nil}, {[]float64{1, 2, 3, 4}, 2, []uint64{1}}} {
		if _, _, err := MineHardNegatives(bad.scores, bad.b, bad.ids); err == nil {
			t.Errorf("accepted %v (B %d, ids %v)", bad.scores, bad.b, bad.ids)
		}
	}
}

// TestRetrievalForward: the score matrix is the ITM head's log-odds of
// each image with each text (checked against Understand on pairs built on
// the host), the miner picks from it, the training rows are the positives
// then the mined pairs, and the loss is their CE.
func TestRetrievalForward(t *testing.T) {
	c := parityConfig()
	m := newTaskModel(t, c, 5)
	b := synthBatch(t, 8, 4, 64, 2)
	pb := pairBatch(b)
	const B = 4
	s := torch.NewScope()
	defer s.Close()
	in, err := PairsToTensors(s, pb, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := m.ITMScoreMatrix(s, in)
	if err != nil {
		t.Fatal(err)
	}
	// Every image with every text, as one host-built batch of B² rows.
	img, px, L := 3*pb.Height*pb.Width, pb.Height*pb.Width, pb.SeqLen
	all := &PairBatch{Size: B * B, Height: pb.Height, Width: pb.Width, SeqLen: L}
	for i := 0; i < B; i++ {
		for j := 0; j < B; j++ {
			all.Images = append(all.Images, pb.Images[i*img:(i+1)*img]...)
			all.PixelMask = append(all.PixelMask, pb.PixelMask[i*px:(i+1)*px]...)
			all.TokenIDs = append(all.TokenIDs, pb.TokenIDs[j*L:(j+1)*L]...)
			all.TokenMask = append(all.TokenMask, pb.TokenMask[j*L:(j+1)*L]...)
		}
	}
	ain, err := PairsToTensors(s, all, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	itm, err := m.Understand(s, ain)
	if err != nil {
		t.Fatal(err)
	}
	lg := float32s(t, itm) // [B²,2]
	for k := range scores {
		if want := float64(lg[2*k+1] - lg[2*k]); math.Abs(scores[k]-want) > 1e-4 {
			t.Errorf("score of image %d, text %d: %.6f, Understand %.6f", k/B, k%B, scores[k], want)
		}
	}
	ids := []uint64{1, 2, 3, 1} // rows 0 and 3 show the same image
	out, err := m.RetrievalForward(s, in, ids, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantText, wantImage, err := MineHardNegatives(scores, B, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.HardText, wantText) || !slices.Equal(out.HardImage, wantImage) {
		t.Errorf("mined %v / %v, want %v / %v", out.HardText, out.HardImage, wantText, wantImage)
	}
	if out.HardText[0] == 3 || out.HardText[3] == 0 || out.HardImage[0] == 3 || out.HardImage[3] == 0 {
		t.Errorf("rows of the same image paired as negatives: %v / %v", out.HardText, out.HardImage)
	}
	r := len(out.Labels)
	if r != 3*B { // every row has a negative both ways here
		t.Fatalf("%d rows, want %d", r, 3*B)
	}
	checkShape(t, "retrieval logits", out.Logits, int64(r), 2)
	x := float32s(t, out.Logits)
	var want float64
	for k := 0; k < r; k++ {
		i, j, l := out.Images[k], out.Texts[k], out.Labels[k]
		if (k < B) != (l == 1) || (k < B && (i != k || j != k)) {
			t.Errorf("row %d: image %d, text %d, label %d", k, i, j, l)
		}
		// In evaluation mode a row's logits are the score matrix's pair.
		if d := float64(x[2*k+1] - x[2*k]); math.Abs(d-scores[i*B+j]) > 1e-4 {
			t.Errorf("row %d (image %d, text %d): log-odds %.6f, score matrix %.6f", k, i, j, d, scores[i*B+j])
		}
		a, b := float64(x[2*k]), float64(x[2*k+1])
		want += math.Log(math.Exp(a)+math.Exp(b)) - []float64{a, b}[l]
	}
	want /= float64(r)
	if got := item(t, out.Losses.ByName["retrieval"]); !closeTo(got, want, 1e-5) {
		t.Errorf("retrieval loss %.7f, from the logits by hand %.7f", got, want)
	}
}
