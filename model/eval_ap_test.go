package model

import (
	"math"
	"testing"
)

func TestAveragePrecision(t *testing.T) {
	sq := func(x float64) Box { return Box{x, 0, x + 1, 1} }
	tests := []struct {
		name string
		dets []Detection
		gts  []GroundTruth
		want float64
	}{
		{"perfect", []Detection{{0, 1, 0.9, sq(0)}, {1, 1, 0.8, sq(5)}},
			[]GroundTruth{{0, 1, sq(0)}, {1, 1, sq(5)}}, 1},
		{"no detections", nil, []GroundTruth{{0, 1, sq(0)}}, 0},
		{"no ground truth", []Detection{{0, 1, 0.9, sq(0)}}, nil, 0},
		// Half the objects found, at precision 1: recall points 0..0.5 → 51/101.
		{"half recall", []Detection{{0, 1, 0.9, sq(0)}},
			[]GroundTruth{{0, 1, sq(0)}, {0, 1, sq(5)}}, 51.0 / 101},
		// A false positive ranked first: precision 1/2 at recall 1 → 0.5.
		{"false positive first", []Detection{{0, 1, 0.9, sq(9)}, {0, 1, 0.5, sq(0)}},
			[]GroundTruth{{0, 1, sq(0)}}, 0.5},
		// A false positive ranked last costs nothing.
		{"false positive last", []Detection{{0, 1, 0.9, sq(0)}, {0, 1, 0.5, sq(9)}},
			[]GroundTruth{{0, 1, sq(0)}}, 1},
		// IoU 1/3 < 0.5: a miss.
		{"low IoU", []Detection{{0, 1, 0.9, Box{0.5, 0, 1.5, 1}}},
			[]GroundTruth{{0, 1, Box{0, 0, 1, 1}}}, 1.0 / 1 * 0},
		// Exactly at IoU 0.5 counts (COCO uses ≥).
		{"IoU one half", []Detection{{0, 1, 0.9, Box{0, 0, 1, 1}}},
			[]GroundTruth{{0, 1, Box{0, 0, 2, 1}}}, 1},
		// Wrong image or wrong class never matches.
		{"wrong image", []Detection{{1, 1, 0.9, sq(0)}}, []GroundTruth{{0, 1, sq(0)}}, 0},
		{"wrong class", []Detection{{0, 2, 0.9, sq(0)}}, []GroundTruth{{0, 1, sq(0)}}, 0},
		// A duplicate detection is a false positive.
		{"duplicate", []Detection{{0, 1, 0.9, sq(0)}, {0, 1, 0.8, sq(0)}, {0, 1, 0.7, sq(5)}},
			[]GroundTruth{{0, 1, sq(0)}, {0, 1, sq(5)}}, (51 + 50*2.0/3) / 101},
		// Two classes: mean of 1 and 0.
		{"two classes", []Detection{{0, 1, 0.9, sq(0)}},
			[]GroundTruth{{0, 1, sq(0)}, {0, 2, sq(5)}}, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := AveragePrecision(tc.dets, tc.gts, 0.5)
			if math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("AP50 = %v, want %v", got, tc.want)
			}
		})
	}
}
