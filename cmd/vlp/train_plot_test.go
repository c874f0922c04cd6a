package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/data"
)

func TestPlotLosses(t *testing.T) {
	falling := func(n int) []lossPoint {
		var ps []lossPoint
		for i := 1; i <= n; i++ {
			ps = append(ps, lossPoint{Step: uint64(i), Losses: map[string]float64{
				"total": 30 / float64(i), "mlm": 4 / float64(i), "itm": 0.7, "det_ce_3": 1}})
		}
		return ps
	}
	tests := []struct {
		name    string
		points  []lossPoint
		wantErr bool
		legend  []string
	}{
		{"one point", falling(1), true, nil},
		{"no positive values", []lossPoint{{1, map[string]float64{"total": 0}}, {2, map[string]float64{"total": 0}}}, true, nil},
		{"falling", falling(50), false, []string{"total=black", "itm=red", "mlm=blue", "steps 1–50"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "curve.png")
			legend, err := plotLosses(path, tc.points)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.legend {
				if !strings.Contains(legend, w) {
					t.Errorf("legend %q lacks %q", legend, w)
				}
			}
			if strings.Contains(legend, "det_ce_3") {
				t.Errorf("legend %q plots an auxiliary loss", legend)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			// The total falls: its line starts high on the left and ends low
			// on the right (black pixels in the first and last columns).
			b := img.Bounds()
			blackRows := func(x int) []int {
				var ys []int
				for y := b.Min.Y; y < b.Max.Y; y++ {
					if r, g, bl, _ := img.At(x, y).RGBA(); r == 0 && g == 0 && bl == 0 {
						ys = append(ys, y)
					}
				}
				return ys
			}
			left, right := blackRows(35), blackRows(b.Max.X-35)
			if len(left) == 0 || len(right) == 0 || left[0] >= right[0] {
				t.Fatalf("the total's line is not falling: rows %v at the left, %v at the right", left, right)
			}
		})
	}
}

func TestDetokenize(t *testing.T) {
	v, err := data.NewVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "sq", "##uare"})
	if err != nil {
		t.Fatal(err)
	}
	if got := detokenize(v, []int64{5, 6, 7, 8}); got != "a red square" {
		t.Fatalf("detokenize = %q", got)
	}
}
