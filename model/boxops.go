package model

import "math"

// Box is an axis-aligned box; whether it is (cx, cy, w, h) or
// (x0, y0, x1, y1) is said by the function that takes it. These are the
// host-side float64 box maths of the matcher and the AP evaluation; the
// criterion has its tensor twin in criterion.go.
type Box [4]float64

// CxcywhToXyxy turns (cx, cy, w, h) into (x0, y0, x1, y1).
func CxcywhToXyxy(b Box) Box {
	return Box{b[0] - b[2]/2, b[1] - b[3]/2, b[0] + b[2]/2, b[1] + b[3]/2}
}

// XyxyToCxcywh turns (x0, y0, x1, y1) into (cx, cy, w, h).
func XyxyToCxcywh(b Box) Box {
	return Box{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]}
}

// Area of an xyxy box; a degenerate box has area 0.
func Area(b Box) float64 {
	return math.Max(0, b[2]-b[0]) * math.Max(0, b[3]-b[1])
}

// IoU of two xyxy boxes and their union; IoU is 0 when the union is empty.
func IoU(a, b Box) (iou, union float64) {
	iw := math.Max(0, math.Min(a[2], b[2])-math.Max(a[0], b[0]))
	ih := math.Max(0, math.Min(a[3], b[3])-math.Max(a[1], b[1]))
	inter := iw * ih
	union = Area(a) + Area(b) - inter
	if union <= 0 {
		return 0, union
	}
	return inter / union, union
}

// GIoU is the generalised IoU of two xyxy boxes (Rezatofighi et al. 2019):
// IoU − (|C| − |A∪B|)/|C| with C the smallest enclosing box, in [−1, 1].
func GIoU(a, b Box) float64 {
	iou, union := IoU(a, b)
	cw := math.Max(a[2], b[2]) - math.Min(a[0], b[0])
	ch := math.Max(a[3], b[3]) - math.Min(a[1], b[1])
	c := math.Max(0, cw) * math.Max(0, ch)
	if c <= 0 {
		return iou
	}
	return iou - (c-union)/c
}
