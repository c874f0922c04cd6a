package data

import (
	"math"
	"reflect"
	"slices"
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
		maskTokens(ids, labels, v, 0.15, 0, nil, newStream(1, 2, pair, purposeMLM))
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

// TestColourMasking: colour words are chosen at ColourMaskProb, every other
// token at MLMProb, and with ColourMaskProb 0 the draws are BERT's.
func TestColourMasking(t *testing.T) {
	v := testVocab(t, "blue", "green", "large", "small", "square", "left", "of")
	col := newColourTokens(v)
	var colourChosen, colourTotal, otherChosen, otherTotal int
	for pair := uint64(0); pair < 20000; pair++ {
		base := []int64{v.CLSID}
		for _, w := range strings.Fields("a small red circle left of a large blue square") {
			id, _ := v.ID(w)
			base = append(base, id)
		}
		base = append(base, v.SEPID)
		ids := append([]int64(nil), base...)
		labels := make([]int64, len(ids))
		maskTokens(ids, labels, v, 0.15, 0.5, col.set, newStream(1, 2, pair, purposeMLM))
		for i, id := range base[1 : len(base)-1] {
			chosen := labels[i+1] != IgnoreIndex
			if col.set[id] {
				colourTotal++
				if chosen {
					colourChosen++
				}
			} else {
				otherTotal++
				if chosen {
					otherChosen++
				}
			}
		}
		// ColourMaskProb 0 (or below MLMProb) is BERT's masking, draw for draw.
		bert, bertLabels := append([]int64(nil), base...), make([]int64, len(base))
		maskTokens(bert, bertLabels, v, 0.15, 0, nil, newStream(1, 2, pair, purposeMLM))
		low, lowLabels := append([]int64(nil), base...), make([]int64, len(base))
		maskTokens(low, lowLabels, v, 0.15, 0.1, col.set, newStream(1, 2, pair, purposeMLM))
		if !reflect.DeepEqual(bert, low) || !reflect.DeepEqual(bertLabels, lowLabels) {
			t.Fatalf("pair %d: ColourMaskProb below MLMProb changed the masking", pair)
		}
	}
	within(t, "colour words chosen", float64(colourChosen)/float64(colourTotal), 0.5, 0.01)
	within(t, "other words chosen", float64(otherChosen)/float64(otherTotal), 0.15, 0.005)
}

func TestSwapColour(t *testing.T) {
	v := testVocab(t, "blue", "green", "grey", "gray", "large", "small", "square", "left", "of")
	col := newColourTokens(v)
	in := []int64{v.CLSID}
	for _, w := range strings.Fields("a small red circle left of a large blue square") {
		id, ok := v.ID(w)
		if !ok {
			t.Fatalf("%q not in the test vocabulary", w)
		}
		in = append(in, id)
	}
	in = append(in, v.SEPID)
	seen := map[int]bool{}
	for pair := uint64(0); pair < 200; pair++ {
		ids := append([]int64(nil), in...)
		changed := col.swapColour(ids, v, 0, newStream(5, 0, pair, purposeITM))
		if len(changed) != 1 {
			t.Fatalf("changed %v, want one position", changed)
		}
		j := changed[0]
		seen[j] = true
		if d := diffCount(in, ids); d != 1 || ids[j] == in[j] || !col.set[in[j]] || !col.set[ids[j]] {
			t.Fatalf("%q → %q at %d: want one colour swapped for another", v.Token(in[j]), v.Token(ids[j]), j)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("swapped positions %v, want both colours", seen)
	}
	// Exchange: the two colours trade places; every other token stays.
	exchanged := 0
	for pair := uint64(0); pair < 200; pair++ {
		ids := append([]int64(nil), in...)
		changed := col.swapColour(ids, v, 0.5, newStream(7, 0, pair, purposeITM))
		switch len(changed) {
		case 2:
			exchanged++
			a, b := changed[0], changed[1]
			if ids[a] != in[b] || ids[b] != in[a] || diffCount(in, ids) != 2 {
				t.Fatalf("exchange %v: %v → %v", changed, in, ids)
			}
		case 1:
		default:
			t.Fatalf("changed %v", changed)
		}
	}
	within(t, "exchanged share", float64(exchanged)/200, 0.5, 0.1)
	// Grey is never swapped for gray.
	grey, _ := v.ID("grey")
	for pair := uint64(0); pair < 200; pair++ {
		ids := []int64{v.CLSID, grey, v.SEPID}
		if c := col.swapColour(ids, v, 1, newStream(5, 0, pair, purposeITM)); !slices.Equal(c, []int{1}) {
			t.Fatal("grey not swapped")
		}
		if w := v.Token(ids[1]); isGrey(w) {
			t.Fatalf("grey swapped for %q", w)
		}
	}
	if c := col.swapColour([]int64{v.CLSID, in[1], in[2], v.SEPID}, v, 1, newStream(1, 1, 1, purposeITM)); len(c) != 0 {
		t.Fatal("swap found a colour in a text without one")
	}
}

func TestITMAndMLMInBatches(t *testing.T) {
	t.Run("bert", func(t *testing.T) { checkITMAndMLM(t, 0, 0) })
	t.Run("colour-words-0.5", func(t *testing.T) { checkITMAndMLM(t, 0.5, 0) })
	t.Run("exchange-0.5", func(t *testing.T) { checkITMAndMLM(t, 0.5, 0.5) })
}

// checkITMAndMLM builds batches with ColourMaskProb colourMask and checks
// every row's ITM choice and masking.
func checkITMAndMLM(t *testing.T, colourMask, exchange float64) {
	w, err := NewSynthWorld(synth.Config{Seed: 5, Images: 160, Width: 48, Height: 48}, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.BatchSize = 40
	cfg.Image = SquareImageConfig(32)
	cfg.MaxTextLen, cfg.MaxCaptionLen = 40, 40
	cfg.Seed = 9
	cfg.AttributeMaskProb, cfg.ExchangeProb = colourMask, exchange
	batches, err := w.Batches(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The same batches unmasked: ITM choices have their own streams, so
	// they are the same rows with the same negatives.
	plainCfg := cfg
	plainCfg.MLMProb, plainCfg.AttributeMaskProb = 0, 0
	plain, err := w.Batches(plainCfg)
	if err != nil {
		t.Fatal(err)
	}
	v := w.Tokenizer.Vocab()
	colours := newColourTokens(v)
	var rows, neg, swap, other, labelled, tokens int
	var maskPos, tokPos, maskNeg, tokNeg int
	var ncMaskPos, ncTokPos, ncMaskNeg, ncTokNeg int
	exchanges := 0
	for bi, b := range batches {
		L, T := b.SeqLen, b.CapLen
		pb := plain[bi]
		capRow := func(i int) []int64 { return trimPad(b.CaptionIDs[i*T:(i+1)*T], v) }
		for i := 0; i < b.Size; i++ {
			rows++
			enc := trimPad(b.TokenIDs[i*L:(i+1)*L], v)
			labels := b.MLMLabels[i*L : (i+1)*L]
			// [MASK]s over all tokens, and over the words that are not
			// colours (the unmasked text tells which).
			masks, ncMasks, ncTokens := 0, 0, 0
			for j, id := range enc {
				if id == v.MaskID {
					masks++
				}
				if orig := pb.TokenIDs[i*pb.SeqLen+j]; !colours.set[orig] && !v.IsSpecial(orig) {
					ncTokens++
					if id == v.MaskID {
						ncMasks++
					}
				}
			}
			// ITM choices have their own stream: masking does not change them.
			if b.ITMLabels[i] != pb.ITMLabels[i] {
				t.Fatalf("row %d: masking changed the ITM label", i)
			}
			if b.NegKinds[i] != pb.NegKinds[i] {
				t.Fatalf("row %d: masking changed the ITM choice", i)
			}
			if b.ITMLabels[i] == 0 {
				neg++
				maskNeg += masks
				tokNeg += len(enc) - 2
				ncMaskNeg += ncMasks
				ncTokNeg += ncTokens
				for _, l := range labels {
					if l != IgnoreIndex {
						t.Fatal("MLM label on an ITM negative")
					}
				}
				// A negative is masked exactly as a positive with its text would be.
				masked := func(text []int64) []int64 {
					out := append([]int64(nil), text...)
					maskTokens(out, make([]int64, len(out)), v, cfg.MLMProb, cfg.AttributeMaskProb, colours.set, newStream(cfg.Seed, cfg.Epoch, b.SampleIDs[i], purposeMLM))
					return out
				}
				switch b.NegKinds[i] {
				case NegColourSwap:
					swap++
					// Its own caption masked, one colour shown and swapped, or
					// two exchanged.
					own, plain := masked(capRow(i)), capRow(i)
					swapped := pb.TokenIDs[i*pb.SeqLen : i*pb.SeqLen+len(plain)]
					d := diffCount(plain, swapped)
					if len(own) != len(enc) || d < 1 || d > 2 {
						t.Fatalf("row %d: colour swap %v vs its own caption %v", i, enc, plain)
					}
					if d == 2 {
						exchanges++
						if !reflect.DeepEqual(slices.Sorted(slices.Values(plain)), slices.Sorted(slices.Values(swapped))) {
							t.Fatalf("row %d: %v is no exchange of %v's colours", i, swapped, plain)
						}
					}
					for j := range own {
						switch {
						case plain[j] != pb.TokenIDs[i*pb.SeqLen+j]: // the swap
							if enc[j] != pb.TokenIDs[i*pb.SeqLen+j] || !colours.set[plain[j]] || !colours.set[enc[j]] {
								t.Fatalf("row %d: swapped %q for %q", i, v.Token(plain[j]), v.Token(enc[j]))
							}
						case own[j] != enc[j]:
							t.Fatalf("row %d: position %d masked %q, want %q as a positive", i, j, v.Token(enc[j]), v.Token(own[j]))
						}
					}
				case NegOtherInBatch:
					other++
					found := false
					for j := 0; j < b.Size; j++ {
						if b.ImageIDs[j] != b.ImageIDs[i] && reflect.DeepEqual(masked(capRow(j)), enc) {
							found = true
						}
					}
					if !found {
						t.Fatalf("row %d: negative text is no other image's caption in the batch, masked like a positive", i)
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
			ncMaskPos += ncMasks
			ncTokPos += ncTokens
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
	// [MASK] is as common in negatives as in positives, so it does not
	// tell the ITM label. The one exception is the colour a hard negative
	// swapped, which is always shown: a [MASK] on a colour word says that
	// word was not swapped, which is true of the text the model sees. The
	// words that are not colours are masked alike.
	posShare, negShare := float64(maskPos)/float64(tokPos), float64(maskNeg)/float64(tokNeg)
	within(t, "[MASK] share on words not colours, negatives against positives",
		float64(ncMaskNeg)/float64(ncTokNeg), float64(ncMaskPos)/float64(ncTokPos), 0.02)
	if colourMask == 0 {
		within(t, "[MASK] share, negatives against positives", negShare, posShare, 0.03)
		within(t, "MLM share on positives", float64(labelled)/float64(tokens), 0.15, 0.03)
		within(t, "[MASK] share on positives", posShare, 0.12, 0.03) // 0.15 × 0.8
	} else if posShare < 0.15 {
		t.Errorf("[MASK] share on positives %.3f: colour words masked at %g should raise it above BERT's 0.12", posShare, colourMask)
	}
	if other == 0 {
		t.Fatal("no in-batch negatives")
	}
	if (exchanges > 0) != (exchange > 0) {
		t.Errorf("%d colour exchanges with ExchangeProb %g", exchanges, exchange)
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

// TestAttributeTokens: colour words are always attribute words; every word
// of an attribute name that is a whole token is too, and nothing else.
func TestAttributeTokens(t *testing.T) {
	v := testVocab(t, "blue", "traffic", "light", "small", "square", "left")
	got := attributeTokens(v, []string{"Traffic Light", "small", "unknownword"})
	var words []string
	for id := range got {
		words = append(words, v.Token(id))
	}
	slices.Sort(words)
	if want := []string{"blue", "light", "red", "small", "traffic"}; !slices.Equal(words, want) {
		t.Fatalf("attribute words %v, want %v", words, want)
	}
}
