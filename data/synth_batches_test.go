package data

import (
	"testing"

	"github.com/e2evlp/vlp/synth"
)

func TestSynthBatches(t *testing.T) {
	scfg := synth.Config{Seed: 3, Images: 20, Width: 96, Height: 72}
	cfg := DefaultConfig()
	cfg.BatchSize = 16
	cfg.Image = SquareImageConfig(64)
	cfg.Seed = 1
	batches, tok, err := SynthBatches(scfg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := tok.Vocab()
	rows := 0
	seen := map[uint64]bool{}
	for _, b := range batches {
		checkBatchShapes(t, b)
		if b.Height != 64 || b.Width != 64 {
			t.Fatalf("batch %dx%d, want 64x64", b.Height, b.Width)
		}
		for i := 0; i < b.Size; i++ {
			if seen[b.SampleIDs[i]] {
				t.Fatalf("pair %d twice in an epoch", b.SampleIDs[i])
			}
			seen[b.SampleIDs[i]] = true
			for j := 0; j < b.SeqLen; j++ {
				if id := b.TokenIDs[i*b.SeqLen+j]; id == v.UNKID {
					t.Fatalf("row %d has [UNK]: the synth vocabulary must cover every synth text", i)
				}
			}
			if len(b.Targets[i].Boxes) == 0 {
				t.Fatalf("row %d has no objects", i)
			}
		}
		rows += b.Size
	}
	if rows != 20*5 {
		t.Fatalf("%d rows, want %d (20 images × 5 captions)", rows, 20*5)
	}
}

// checkBatchShapes asserts every slice has the length the layout promises
// and the masks agree with the padding.
func checkBatchShapes(t *testing.T, b *Batch) {
	t.Helper()
	B, H, W, L, T := b.Size, b.Height, b.Width, b.SeqLen, b.CapLen
	lens := []struct {
		name    string
		got, wa int
	}{
		{"Images", len(b.Images), B * 3 * H * W}, {"PixelMask", len(b.PixelMask), B * H * W},
		{"TokenIDs", len(b.TokenIDs), B * L}, {"TokenMask", len(b.TokenMask), B * L},
		{"MLMLabels", len(b.MLMLabels), B * L}, {"ITMLabels", len(b.ITMLabels), B},
		{"Targets", len(b.Targets), B}, {"CaptionIDs", len(b.CaptionIDs), B * T},
		{"CaptionMask", len(b.CaptionMask), B * T}, {"SampleIDs", len(b.SampleIDs), B},
		{"ImageIDs", len(b.ImageIDs), B}, {"NegKinds", len(b.NegKinds), B},
	}
	for _, l := range lens {
		if l.got != l.wa {
			t.Fatalf("len(%s) = %d, want %d", l.name, l.got, l.wa)
		}
	}
	for i := 0; i < B; i++ {
		for j := 0; j < L; j++ {
			k := i*L + j
			if b.TokenMask[k] && b.MLMLabels[k] != IgnoreIndex {
				t.Fatalf("row %d pos %d: MLM label on padding", i, j)
			}
		}
		for j := 0; j < H*W; j++ {
			if b.PixelMask[i*H*W+j] {
				for c := 0; c < 3; c++ {
					if b.Images[(i*3+c)*H*W+j] != 0 {
						t.Fatalf("row %d: non-zero pixel in padding", i)
					}
				}
			}
		}
	}
}
