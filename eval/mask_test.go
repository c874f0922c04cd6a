package eval

import (
	"slices"
	"testing"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/synth"
)

// TestMaskColours: one per text masks exactly one of each text's colour
// words, rotating over its positions along the set; all masks every one;
// the labels are the hidden words and the batch itself is left unchanged.
func TestMaskColours(t *testing.T) {
	w, err := data.NewSynthWorld(synth.Config{Seed: 3, Images: 24, Width: 32, Height: 32, MaxObjects: 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	v := w.Tokenizer.Vocab()
	r := &runner{cfg: Config{Tokenizer: w.Tokenizer, ImageSize: 32}, colourIDs: map[int64]bool{}}
	for _, name := range synth.ColourNames {
		if id, ok := v.ID(name); ok {
			r.colourIDs[id] = true
		}
	}
	var rows []data.Example
	for _, e := range w.Examples {
		if e.Meta.Texts[e.Text].Kind == "caption" {
			rows = append(rows, e)
		}
	}
	dc := data.DefaultConfig()
	dc.BatchSize, dc.Workers, dc.Seed = len(rows), 1, 1
	dc.Image = data.SquareImageConfig(32)
	dc.MLMProb, dc.ITMNegProb = 0, 0
	b, err := data.BuildBatch(dc, w.Tokenizer, rows)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(b.TokenIDs)
	L := b.SeqLen
	firstAsked, secondAsked := 0, 0
	for _, all := range []bool{false, true} {
		for _, lo := range []int{0, 1} {
			m := r.maskColours(b, lo, all)
			for row := range b.Size {
				colours, masked := 0, 0
				for k := row * L; k < (row+1)*L; k++ {
					if r.colourIDs[b.TokenIDs[k]] && !b.TokenMask[k] {
						colours++
						if m.TokenIDs[k] == v.MaskID {
							masked++
							if m.MLMLabels[k] != b.TokenIDs[k] {
								t.Fatalf("row %d: label %d at a masked %d", row, m.MLMLabels[k], b.TokenIDs[k])
							}
							if !all && colours == 1 {
								firstAsked++
							} else if !all {
								secondAsked++
							}
						}
					} else if m.TokenIDs[k] != b.TokenIDs[k] || m.MLMLabels[k] != b.MLMLabels[k] {
						t.Fatalf("row %d: a word that is not a colour changed", row)
					}
				}
				want := min(colours, 1)
				if all {
					want = colours
				}
				if masked != want {
					t.Fatalf("all=%v lo=%d row %d: %d of %d colour words masked, want %d", all, lo, row, masked, colours, want)
				}
			}
		}
	}
	if firstAsked == 0 || secondAsked == 0 {
		t.Fatalf("one per text asked the first colour word %d times, the second %d: both positions must be asked", firstAsked, secondAsked)
	}
	if !slices.Equal(b.TokenIDs, before) {
		t.Fatal("masking changed the batch it was given")
	}
}
