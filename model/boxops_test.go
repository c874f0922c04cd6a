package model

import (
	"math"
	"testing"
)

func TestBoxConversionsRoundTrip(t *testing.T) {
	for _, b := range []Box{{0.5, 0.5, 0.2, 0.4}, {0.1, 0.9, 0, 0}, {0.3, 0.3, 0.6, 0.6}} {
		got := XyxyToCxcywh(CxcywhToXyxy(b))
		for i := range b {
			if math.Abs(got[i]-b[i]) > 1e-12 {
				t.Fatalf("round trip %v -> %v", b, got)
			}
		}
	}
	if got := CxcywhToXyxy(Box{0.5, 0.5, 0.2, 0.4}); math.Abs(got[0]-0.4) > 1e-12 || math.Abs(got[3]-0.7) > 1e-12 {
		t.Fatalf("cxcywh->xyxy = %v", got)
	}
}

func TestIoUGIoU(t *testing.T) {
	tests := []struct {
		name      string
		a, b      Box
		iou, giou float64
	}{
		{"same", Box{0, 0, 1, 1}, Box{0, 0, 1, 1}, 1, 1},
		{"half overlap", Box{0, 0, 2, 1}, Box{1, 0, 3, 1}, 1.0 / 3, 1.0 / 3},
		{"disjoint touching", Box{0, 0, 1, 1}, Box{1, 0, 2, 1}, 0, 0},
		{"disjoint gap", Box{0, 0, 1, 1}, Box{2, 0, 3, 1}, 0, -1.0 / 3},
		{"nested", Box{0, 0, 2, 2}, Box{0, 0, 1, 1}, 0.25, 0.25},
		{"far corner", Box{0, 0, 1, 1}, Box{2, 2, 3, 3}, 0, 2.0/9 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iou, _ := IoU(tc.a, tc.b)
			if math.Abs(iou-tc.iou) > 1e-12 {
				t.Errorf("IoU = %v, want %v", iou, tc.iou)
			}
			if g := GIoU(tc.a, tc.b); math.Abs(g-tc.giou) > 1e-12 {
				t.Errorf("GIoU = %v, want %v", g, tc.giou)
			}
			if g := GIoU(tc.b, tc.a); math.Abs(g-tc.giou) > 1e-12 {
				t.Errorf("GIoU not symmetric: %v", g)
			}
		})
	}
}
