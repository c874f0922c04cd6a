package eval

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Box is an axis-aligned box in pixels as COCO writes it: the top-left
// corner and the size.
type Box struct{ X, Y, W, H float64 }

// Area is W·H.
func (b Box) Area() float64 { return b.W * b.H }

// Detection is one predicted object.
type Detection struct {
	Image      int
	Class      int
	Score      float64
	Box        Box
	Attributes []int // attribute ids, most probable first (may be empty)
}

// GroundTruth is one annotated object.
type GroundTruth struct {
	Image      int
	Class      int
	Box        Box
	Area       float64 // COCO's "area" (a segment's area in COCO); 0: Box.Area()
	Crowd      bool    // COCO's iscrowd: never a false negative, matched by any number of detections
	Attributes []int
}

func (g GroundTruth) area() float64 {
	if g.Area > 0 {
		return g.Area
	}
	return g.Box.Area()
}

// COCOStats are the twelve numbers pycocotools' COCOeval.summarize prints,
// each a mean over IoU thresholds (where not fixed), classes and recall
// points. A value is -1 where no class has a ground truth in its area range,
// as in pycocotools.
type COCOStats struct {
	AP       float64 `json:"ap"`        // IoU .50:.05:.95, all areas, 100 detections
	AP50     float64 `json:"ap50"`      // IoU .50
	AP75     float64 `json:"ap75"`      // IoU .75
	APSmall  float64 `json:"ap_small"`  // area < 32²
	APMedium float64 `json:"ap_medium"` // 32² ≤ area ≤ 96²
	APLarge  float64 `json:"ap_large"`  // area > 96²
	AR1      float64 `json:"ar1"`       // recall with 1 detection per image and class
	AR10     float64 `json:"ar10"`
	AR100    float64 `json:"ar100"`
	ARSmall  float64 `json:"ar_small"`
	ARMedium float64 `json:"ar_medium"`
	ARLarge  float64 `json:"ar_large"`
}

// Match pairs a detection with the ground truth it matched (indices into
// the slices given to EvaluateCOCO).
type Match struct{ Det, GT int }

// COCOResult is what EvaluateCOCO measures.
type COCOResult struct {
	Stats COCOStats
	// ClassAP is each class's AP (IoU .50:.05:.95, all areas, 100
	// detections); -1 for a class with no ground truth.
	ClassAP map[int]float64
	// Matches50 are the matches at IoU .50 with all areas and 100
	// detections per image and class, crowds left out.
	Matches50 []Match
}

// The evaluation grid of pycocotools' COCOeval for boxes.
var (
	// cocoIoUs are .50:.05:.95, computed as numpy.linspace(.5, .95, 10) does.
	cocoIoUs = linspace(0.5, 0.95, 10)
	// cocoRecalls are the 101 recall points, numpy.linspace(0, 1, 101).
	cocoRecalls = linspace(0, 1, 101)
	cocoMaxDets = []int{1, 10, 100}
	// cocoAreas are all, small, medium, large in pixels².
	cocoAreas = [][2]float64{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}
)

// linspace is numpy.linspace with its endpoint: i·step + start, the last
// exactly stop. Thresholds must round like pycocotools' to agree on
// recalls that fall exactly on one.
func linspace(start, stop float64, n int) []float64 {
	step := (stop - start) / float64(n-1)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[n-1] = stop
	return out
}

// IoU is COCO's box overlap: intersection over union, or over the
// detection's own area when the ground truth is a crowd.
func IoU(d, g Box, crowd bool) float64 {
	w := math.Min(d.X+d.W, g.X+g.W) - math.Max(d.X, g.X)
	if w <= 0 {
		return 0
	}
	h := math.Min(d.Y+d.H, g.Y+g.H) - math.Max(d.Y, g.Y)
	if h <= 0 {
		return 0
	}
	in := w * h
	if crowd {
		return in / d.Area()
	}
	return in / (d.Area() + g.Area() - in)
}

// imageEval is one (image, class, area range) of COCOeval.evaluateImg:
// detections best first (at most the largest maxDets), per IoU threshold
// whether each matched and whether it is ignored, and which ground truths
// do not count.
type imageEval struct {
	dets     []int     // detection indices, best score first
	scores   []float64 // their scores
	matched  [][]int   // [T][D] ground-truth index matched, or -1
	ignored  [][]bool  // [T][D]
	gtIgnore []bool    // [G]
	gts      []int     // ground-truth indices, counted ones first
}

// EvaluateCOCO evaluates detections with the semantics of pycocotools'
// COCOeval (iouType "bbox"): images and classes are the ground-truth
// file's image and category ids (an image with no object still counts:
// detections on it are false positives). A detection on an image not in
// images is an error (pycocotools refuses the results file); one of a
// class not in classes is ignored, as pycocotools does.
func EvaluateCOCO(images, classes []int, gts []GroundTruth, dets []Detection) (COCOResult, error) {
	imgs := slices.Clone(images)
	slices.Sort(imgs)
	imgs = slices.Compact(imgs)
	cls := slices.Clone(classes)
	slices.Sort(cls)
	cls = slices.Compact(cls)
	known := map[int]bool{}
	for _, i := range imgs {
		known[i] = true
	}
	type key struct{ image, class int }
	gtCell, dtCell := map[key][]int{}, map[key][]int{}
	for i, g := range gts {
		if !known[g.Image] {
			return COCOResult{}, fmt.Errorf("eval: ground truth %d is on image %d, not among the %d evaluated images", i, g.Image, len(imgs))
		}
		gtCell[key{g.Image, g.Class}] = append(gtCell[key{g.Image, g.Class}], i)
	}
	for i, d := range dets {
		if !known[d.Image] {
			return COCOResult{}, fmt.Errorf("eval: detection %d is on image %d, not among the %d evaluated images", i, d.Image, len(imgs))
		}
		dtCell[key{d.Image, d.Class}] = append(dtCell[key{d.Image, d.Class}], i)
	}
	T, R, K, A, M := len(cocoIoUs), len(cocoRecalls), len(cls), len(cocoAreas), len(cocoMaxDets)
	// precision[t][r][k][a][m] and recall[t][k][a][m] flattened; -1: undefined.
	precision := make([]float64, T*R*K*A*M)
	recall := make([]float64, T*K*A*M)
	for i := range precision {
		precision[i] = -1
	}
	for i := range recall {
		recall[i] = -1
	}
	pIdx := func(t, r, k, a, m int) int { return (((t*R+r)*K+k)*A+a)*M + m }
	rIdx := func(t, k, a, m int) int { return ((t*K+k)*A+a)*M + m }
	res := COCOResult{ClassAP: map[int]float64{}}
	maxDet := cocoMaxDets[M-1]
	for k, c := range cls {
		for a, rng := range cocoAreas {
			var evals []*imageEval
			for _, im := range imgs {
				if e := evaluateImage(gts, dets, gtCell[key{im, c}], dtCell[key{im, c}], rng, maxDet); e != nil {
					evals = append(evals, e)
				}
			}
			if a == 0 {
				for _, e := range evals {
					for d, g := range e.matched[0] {
						if g >= 0 && !gts[g].Crowd {
							res.Matches50 = append(res.Matches50, Match{Det: e.dets[d], GT: g})
						}
					}
				}
			}
			for m, md := range cocoMaxDets {
				prec, rec, ok := accumulate(evals, md)
				if !ok {
					continue
				}
				for t := range T {
					recall[rIdx(t, k, a, m)] = rec[t]
					for r := range R {
						precision[pIdx(t, r, k, a, m)] = prec[t][r]
					}
				}
			}
		}
	}
	// summarize: the mean of every defined entry of a slice of the grid.
	mean := func(ap bool, iou float64, a, m int) float64 {
		sum, n := 0.0, 0
		for t, thr := range cocoIoUs {
			if iou >= 0 && thr != iou {
				continue
			}
			for k := range K {
				if !ap {
					if v := recall[rIdx(t, k, a, m)]; v > -1 {
						sum, n = sum+v, n+1
					}
					continue
				}
				for r := range R {
					if v := precision[pIdx(t, r, k, a, m)]; v > -1 {
						sum, n = sum+v, n+1
					}
				}
			}
		}
		if n == 0 {
			return -1
		}
		return sum / float64(n)
	}
	all, m100 := 0, M-1
	res.Stats = COCOStats{
		AP: mean(true, -1, all, m100), AP50: mean(true, 0.5, all, m100), AP75: mean(true, cocoIoUs[5], all, m100),
		APSmall: mean(true, -1, 1, m100), APMedium: mean(true, -1, 2, m100), APLarge: mean(true, -1, 3, m100),
		AR1: mean(false, -1, all, 0), AR10: mean(false, -1, all, 1), AR100: mean(false, -1, all, m100),
		ARSmall: mean(false, -1, 1, m100), ARMedium: mean(false, -1, 2, m100), ARLarge: mean(false, -1, 3, m100),
	}
	for k, c := range cls {
		sum, n := 0.0, 0
		for t := range T {
			for r := range R {
				if v := precision[pIdx(t, r, k, all, m100)]; v > -1 {
					sum, n = sum+v, n+1
				}
			}
		}
		res.ClassAP[c] = -1
		if n > 0 {
			res.ClassAP[c] = sum / float64(n)
		}
	}
	return res, nil
}

// evaluateImage is COCOeval.evaluateImg for one image and class: nil when
// it has neither ground truth nor detection.
func evaluateImage(gts []GroundTruth, dets []Detection, gtIdx, dtIdx []int, rng [2]float64, maxDet int) *imageEval {
	if len(gtIdx) == 0 && len(dtIdx) == 0 {
		return nil
	}
	outside := func(area float64) bool { return area < rng[0] || area > rng[1] }
	e := &imageEval{}
	// Ground truths that count first; the order among each kind is kept.
	e.gts = slices.Clone(gtIdx)
	ignore := func(g int) bool { return gts[g].Crowd || outside(gts[g].area()) }
	sort.SliceStable(e.gts, func(i, j int) bool { return !ignore(e.gts[i]) && ignore(e.gts[j]) })
	e.gtIgnore = make([]bool, len(e.gts))
	for i, g := range e.gts {
		e.gtIgnore[i] = ignore(g)
	}
	e.dets = slices.Clone(dtIdx)
	sort.SliceStable(e.dets, func(i, j int) bool { return dets[e.dets[i]].Score > dets[e.dets[j]].Score })
	e.dets = e.dets[:min(len(e.dets), maxDet)]
	e.scores = make([]float64, len(e.dets))
	for i, d := range e.dets {
		e.scores[i] = dets[d].Score
	}
	ious := make([][]float64, len(e.dets)) // [D][G]
	for i, d := range e.dets {
		ious[i] = make([]float64, len(e.gts))
		for j, g := range e.gts {
			ious[i][j] = IoU(dets[d].Box, gts[g].Box, gts[g].Crowd)
		}
	}
	e.matched = make([][]int, len(cocoIoUs))
	e.ignored = make([][]bool, len(cocoIoUs))
	for t, thr := range cocoIoUs {
		e.matched[t] = make([]int, len(e.dets))
		e.ignored[t] = make([]bool, len(e.dets))
		taken := make([]bool, len(e.gts))
		for i, d := range e.dets {
			e.matched[t][i] = -1
			best, m := math.Min(thr, 1-1e-10), -1
			for j, g := range e.gts {
				if taken[j] && !gts[g].Crowd {
					continue
				}
				// Once a counted ground truth matched, ignored ones (sorted
				// last) may not take the detection from it.
				if m > -1 && !e.gtIgnore[m] && e.gtIgnore[j] {
					break
				}
				if ious[i][j] < best {
					continue
				}
				best, m = ious[i][j], j
			}
			if m == -1 {
				// Unmatched detections outside the area range do not count.
				e.ignored[t][i] = outside(dets[d].Box.Area())
				continue
			}
			e.ignored[t][i] = e.gtIgnore[m]
			e.matched[t][i] = e.gts[m]
			taken[m] = true
		}
	}
	return e
}

// accumulate is COCOeval.accumulate for one class and area range: the
// images' top maxDet detections merged by score, precision at the 101
// recall points per IoU threshold (made monotone, 0 beyond the last
// recall reached) and the final recall. ok is false when no ground truth
// counts (the entry stays undefined).
func accumulate(evals []*imageEval, maxDet int) (prec [][]float64, rec []float64, ok bool) {
	if len(evals) == 0 {
		return nil, nil, false
	}
	type det struct {
		score    float64
		eval, at int
	}
	var all []det
	counted := 0
	for ei, e := range evals {
		for i := range min(len(e.dets), maxDet) {
			all = append(all, det{e.scores[i], ei, i})
		}
		for _, ig := range e.gtIgnore {
			if !ig {
				counted++
			}
		}
	}
	if counted == 0 {
		return nil, nil, false
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].score > all[j].score })
	const eps = 2.220446049250313e-16 // numpy.spacing(1)
	prec = make([][]float64, len(cocoIoUs))
	rec = make([]float64, len(cocoIoUs))
	for t := range cocoIoUs {
		var rc, pr []float64
		tp, fp := 0.0, 0.0
		for _, d := range all {
			e := evals[d.eval]
			if e.ignored[t][d.at] {
				continue
			}
			if e.matched[t][d.at] >= 0 {
				tp++
			} else {
				fp++
			}
			rc = append(rc, tp/float64(counted))
			pr = append(pr, tp/(tp+fp+eps))
		}
		if len(rc) > 0 {
			rec[t] = rc[len(rc)-1]
		}
		for i := len(pr) - 1; i > 0; i-- {
			pr[i-1] = math.Max(pr[i-1], pr[i])
		}
		prec[t] = make([]float64, len(cocoRecalls))
		for r, thr := range cocoRecalls {
			i := sort.SearchFloat64s(rc, thr) // first recall ≥ thr
			if i < len(pr) {
				prec[t][r] = pr[i]
			}
		}
	}
	return prec, rec, true
}
