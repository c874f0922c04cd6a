package data

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/synth"
)

func TestMLMStatistics(t *testing.T) {
	toks := append([]string(nil), SpecialTokens...)
	for i := 0; i < 1000; i++ {
		toks = append(toks, "w"+itoa(i))
	}
	v, err := NewVocab(toks)
	if err != nil {
		t.Fatal(err)
	}
	var chosen, total, masked, random, kept int
	for pair := uint64(0); pair < 20000; pair++ {
		ids := []int64{v.CLSID}
		for k := 0; k < 10; k++ {
			ids = append(ids, v.NormalIDs()[(int(pair)*7+k*13)%1000])
		}
		ids = append(ids, v.SEPID, v.PadID)
		orig := append([]int64(nil), ids...)
		labels := make([]int64, len(ids))
		maskTokens(ids, labels, v, 0.15, newStream(1, 2, pair, purposeMLM))
		for i := range ids {
			if v.IsSpecial(orig[i]) {
				if labels[i] != IgnoreIndex || ids[i] != orig[i] {
					t.Fatalf("special token at %d touched", i)
				}
				continue
			}
			total++
			if labels[i] == IgnoreIndex {
				if ids[i] != orig[i] {
					t.Fatal("an unlabelled token changed")
				}
				continue
			}
			if labels[i] != orig[i] {
				t.Fatal("label is not the original id")
			}
			chosen++
			switch {
			case ids[i] == v.MaskID:
				masked++
			case ids[i] == orig[i]:
				kept++
			default:
				random++
				if v.IsSpecial(ids[i]) {
					t.Fatal("random replacement drew a special token")
				}
			}
		}
	}
	share := float64(chosen) / float64(total)
	within(t, "masked share", share, 0.15, 0.005)
	within(t, "[MASK] share", float64(masked)/float64(chosen), 0.8, 0.01)
	within(t, "random share", float64(random)/float64(chosen), 0.1, 0.01)
	within(t, "kept share", float64(kept)/float64(chosen), 0.1, 0.01)
}

func within(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Fatalf("%s = %.4f, want %.3f ± %.3f", name, got, want, tol)
	}
	t.Logf("%s = %.4f (want %.3f ± %.3f)", name, got, want, tol)
}

func TestSwapColour(t *testing.T) {
	v := testVocab(t, "blue", "green", "large", "small", "square")
	for pair := uint64(0); pair < 200; pair++ {
		in := "a small Red circle left of a large blue square."
		out, ok := swapColour(in, v, newStream(5, 0, pair, purposeITM))
		if !ok {
			t.Fatal("no colour found")
		}
		a, b := strings.Fields(in), strings.Fields(out)
		if len(a) != len(b) {
			t.Fatalf("%q → %q: word count changed", in, out)
		}
		diff := 0
		for i := range a {
			if a[i] != b[i] {
				diff++
				oldC := strings.ToLower(a[i])
				newC := b[i]
				if !colourSet[oldC] || !colourSet[newC] || oldC == newC {
					t.Fatalf("%q → %q: swapped %q for %q", in, out, a[i], b[i])
				}
				if _, ok := v.ID(newC); !ok {
					t.Fatalf("replacement %q is not in the vocabulary", newC)
				}
			}
		}
		if diff != 1 {
			t.Fatalf("%q → %q: %d words changed, want 1", in, out, diff)
		}
	}
	if _, ok := swapColour("a dog on a sofa", v, newStream(1, 1, 1, purposeITM)); ok {
		t.Fatal("swap found a colour in a text without one")
	}
}

func TestITMAndMLMInBatches(t *testing.T) {
	w, err := NewSynthWorld(synth.Config{Seed: 5, Images: 160, Width: 48, Height: 48}, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.BatchSize = 40
	cfg.Image = SquareImageConfig(32)
	cfg.MaxTextLen, cfg.MaxCaptionLen = 40, 40
	cfg.Seed = 9
	batches, err := w.Batches(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The same batches unmasked: ITM choices have their own streams, so
	// they are the same rows with the same negatives.
	plainCfg := cfg
	plainCfg.MLMProb = 0
	plain, err := w.Batches(plainCfg)
	if err != nil {
		t.Fatal(err)
	}
	v := w.Tokenizer.Vocab()
	var rows, neg, swap, other, labelled, tokens int
	var maskPos, tokPos, maskNeg, tokNeg int
	for bi, b := range batches {
		L, T := b.SeqLen, b.CapLen
		pb := plain[bi]
		capRow := func(i int) []int64 { return trimPad(b.CaptionIDs[i*T:(i+1)*T], v) }
		for i := 0; i < b.Size; i++ {
			rows++
			enc := trimPad(b.TokenIDs[i*L:(i+1)*L], v)
			labels := b.MLMLabels[i*L : (i+1)*L]
			masks := 0
			for _, id := range enc {
				if id == v.MaskID {
					masks++
				}
			}
			if b.ITMLabels[i] != pb.ITMLabels[i] || b.NegKinds[i] != pb.NegKinds[i] {
				t.Fatalf("row %d: masking changed the ITM choice", i)
			}
			if b.ITMLabels[i] == 0 {
				neg++
				maskNeg += masks
				tokNeg += len(enc) - 2
				for _, l := range labels {
					if l != IgnoreIndex {
						t.Fatal("MLM label on an ITM negative")
					}
				}
				// The negative is masked exactly as a positive with its text would be.
				unmasked := trimPad(pb.TokenIDs[i*pb.SeqLen:(i+1)*pb.SeqLen], v)
				want := append([]int64(nil), unmasked...)
				maskTokens(want, make([]int64, len(want)), v, cfg.MLMProb, newStream(cfg.Seed, cfg.Epoch, b.SampleIDs[i], purposeMLM))
				if !reflect.DeepEqual(enc, want) {
					t.Fatalf("row %d: negative text %v is not its text %v masked like a positive (%v)", i, enc, unmasked, want)
				}
				own := capRow(i)
				switch b.NegKinds[i] {
				case NegColourSwap:
					swap++
					if len(unmasked) != len(own) || diffCount(unmasked, own) != 1 {
						t.Fatalf("colour swap %v vs own caption %v", unmasked, own)
					}
				case NegOtherInBatch:
					other++
					found := false
					for j := 0; j < b.Size; j++ {
						if b.ImageIDs[j] != b.ImageIDs[i] && reflect.DeepEqual(capRow(j), unmasked) {
							found = true
						}
					}
					if !found {
						t.Fatalf("row %d: negative text is no other image's caption in the batch", i)
					}
				default:
					t.Fatalf("row %d: ITM label 0 with kind %d", i, b.NegKinds[i])
				}
				continue
			}
			if b.NegKinds[i] != NegNone {
				t.Fatal("positive row with a negative kind")
			}
			maskPos += masks
			tokPos += len(enc) - 2
			// Positive: unmasking the labelled positions gives the caption.
			restored := append([]int64(nil), enc...)
			for j, l := range labels[:len(enc)] {
				if l != IgnoreIndex {
					restored[j] = l
					labelled++
				}
			}
			if !reflect.DeepEqual(restored, capRow(i)) {
				t.Fatalf("row %d: masked text %v does not restore to its caption %v", i, restored, capRow(i))
			}
			tokens += len(enc) - 2
		}
	}
	within(t, "ITM negative share", float64(neg)/float64(rows), 0.5, 0.06)
	within(t, "hard share of negatives", float64(swap)/float64(neg), 0.5, 0.08)
	within(t, "MLM share on positives", float64(labelled)/float64(tokens), 0.15, 0.03)
	// [MASK] is as common in negatives as in positives (0.15 × 0.8), so it
	// does not tell the ITM label.
	within(t, "[MASK] share on positives", float64(maskPos)/float64(tokPos), 0.12, 0.03)
	within(t, "[MASK] share on negatives", float64(maskNeg)/float64(tokNeg), 0.12, 0.03)
	if other == 0 {
		t.Fatal("no in-batch negatives")
	}
}

func trimPad(ids []int64, v *Vocab) []int64 {
	n := len(ids)
	for n > 0 && ids[n-1] == v.PadID {
		n--
	}
	return ids[:n]
}

func diffCount(a, b []int64) int {
	d := 0
	for i := range a {
		if a[i] != b[i] {
			d++
		}
	}
	return d
}
