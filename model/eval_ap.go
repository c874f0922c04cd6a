package model

import "sort"

// Detection is one predicted object for evaluation; Box is xyxy in any unit
// shared with the ground truth.
type Detection struct {
	Image int
	Class int
	Score float64
	Box   Box
}

// GroundTruth is one annotated object; Box is xyxy.
type GroundTruth struct {
	Image int
	Class int
	Box   Box
}

// AveragePrecision is COCO's AP at one IoU threshold (AP50 at 0.5): per
// class, detections sorted by score (stable) greedily take the unmatched
// ground truth of the same image with the highest IoU ≥ thr; precision is
// made monotone and sampled at 101 recall points. The mean is over classes
// with at least one ground truth (COCO skips the rest); perClass holds each.
// With no ground truth at all, the mean is 0.
func AveragePrecision(dets []Detection, gts []GroundTruth, thr float64) (mean float64, perClass map[int]float64) {
	perClass = map[int]float64{}
	gtByClass := map[int][]GroundTruth{}
	for _, g := range gts {
		gtByClass[g.Class] = append(gtByClass[g.Class], g)
	}
	detByClass := map[int][]Detection{}
	for _, d := range dets {
		detByClass[d.Class] = append(detByClass[d.Class], d)
	}
	classes := make([]int, 0, len(gtByClass))
	for c := range gtByClass {
		classes = append(classes, c)
	}
	sort.Ints(classes)
	for _, c := range classes {
		perClass[c] = classAP(detByClass[c], gtByClass[c], thr)
		mean += perClass[c]
	}
	if len(classes) > 0 {
		mean /= float64(len(classes))
	}
	return mean, perClass
}

func classAP(dets []Detection, gts []GroundTruth, thr float64) float64 {
	sort.SliceStable(dets, func(i, j int) bool { return dets[i].Score > dets[j].Score })
	byImage := map[int][]int{} // image → indices into gts
	for i, g := range gts {
		byImage[g.Image] = append(byImage[g.Image], i)
	}
	taken := make([]bool, len(gts))
	tp := make([]float64, len(dets))
	for k, d := range dets {
		best, bestIoU := -1, thr
		for _, gi := range byImage[d.Image] {
			if taken[gi] {
				continue
			}
			if iou, _ := IoU(d.Box, gts[gi].Box); iou >= bestIoU {
				best, bestIoU = gi, iou
			}
		}
		if best >= 0 {
			taken[best] = true
			tp[k] = 1
		}
	}
	n := len(dets)
	recall, precision := make([]float64, n), make([]float64, n)
	cumTP := 0.0
	for k := range dets {
		cumTP += tp[k]
		recall[k] = cumTP / float64(len(gts))
		precision[k] = cumTP / float64(k+1)
	}
	// Precision envelope: the best precision at any higher recall.
	for k := n - 2; k >= 0; k-- {
		if precision[k+1] > precision[k] {
			precision[k] = precision[k+1]
		}
	}
	sum := 0.0
	for i := 0; i <= 100; i++ {
		r := float64(i) / 100
		k := sort.SearchFloat64s(recall, r) // first recall ≥ r
		if k < n {
			sum += precision[k]
		}
	}
	return sum / 101
}
