package model

import (
	"encoding/json"
	"math"
	"testing"
)

// TestSinePositionsMatchPyTorch compares the host positions and the mask
// downsampling with the reference's torch code on padded masks.
func TestSinePositionsMatchPyTorch(t *testing.T) {
	const b, ph, pw, h, w, d = 2, 20, 28, 5, 7, 16
	pix := make([]bool, b*ph*pw)
	for y := 0; y < ph; y++ {
		for x := 0; x < pw; x++ {
			pix[(1*ph+y)*pw+x] = y >= 12 || x >= 17 // image 1 padded bottom and right
		}
	}
	mask := featureMask(pix, b, ph, pw, h, w)
	got := sinePositions(mask, b, h, w, d)
	in, _ := json.Marshal(map[string]any{"pix": pix})
	script := `
import json, sys
sys.path.insert(0, "../reference")
import torch, torch.nn.functional as F
import e2evlp
p = torch.tensor(json.load(sys.stdin)["pix"]).view(2, 20, 28)
m = F.interpolate(p[None].float(), size=(5, 7))[0].bool()
pos = e2evlp.sine_position(m, 16)
json.dump({"mask": m.flatten().tolist(), "pos": pos.flatten().tolist()}, sys.stdout)
`
	var want struct {
		Mask []bool    `json:"mask"`
		Pos  []float64 `json:"pos"`
	}
	if err := json.Unmarshal(runPython(t, in, "-c", script), &want); err != nil {
		t.Fatal(err)
	}
	for i := range mask {
		if mask[i] != want.Mask[i] {
			t.Fatalf("mask[%d] = %v, torch %v", i, mask[i], want.Mask[i])
		}
	}
	if len(got) != len(want.Pos) {
		t.Fatalf("len %d, torch %d", len(got), len(want.Pos))
	}
	for i := range got {
		if math.Abs(float64(got[i])-want.Pos[i]) > 2e-5 {
			t.Fatalf("pos[%d] = %v, torch %v", i, got[i], want.Pos[i])
		}
	}
}
