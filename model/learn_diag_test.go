package model_test

import (
	"fmt"
	"github.com/e2evlp/vlp/model"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/synth"
)

// learnDiag splits the learning test's held-out metrics by what they need,
// to tell which skill a recipe is waiting for (VLP_LEARN_EVAL_EVERY logs it):
// colour-word MLM and ITM on one-shape and two-shape images (two shapes need
// the colour bound to the right object), caption accuracy on shape, colour
// and size words, and detection split into localisation (some query within
// IoU 0.5 of the object) and the shape class of the best-placed query.
type learnDiag struct {
	mlm, itm           [3]ratio // by object count (index 1, 2)
	mlm2By             [3]ratio // two-shape MLM by colour words in the text (1, 2+)
	capShape, capCol   ratio
	capSize, capOther  ratio
	detLoc, detShape   ratio
	noObjOnBest, count int
}

type ratio struct{ ok, n int }

func (r *ratio) add(ok bool) {
	r.n++
	if ok {
		r.ok++
	}
}

func (r ratio) String() string {
	if r.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(r.ok)/float64(r.n))
}

func (d *learnDiag) String() string {
	return fmt.Sprintf("MLM colour 1/2 shapes %v/%v (two shapes, one/two colour words in the text %v/%v), ITM 1/2 %v/%v, caption shape %v colour %v size %v other %v, det located %v, shape of best query %v",
		d.mlm[1], d.mlm[2], d.mlm2By[1], d.mlm2By[2], d.itm[1], d.itm[2], d.capShape, d.capCol, d.capSize, d.capOther, d.detLoc, d.detShape)
}

// wordKinds maps token ids to "shape", "colour" or "size".
func wordKinds(v *data.Vocab) map[int64]string {
	k := map[int64]string{}
	for kind, words := range map[string][]string{"shape": synth.ClassNames, "colour": synth.ColourNames, "size": synth.SizeNames} {
		for _, w := range words {
			if id, ok := v.ID(w); ok {
				k[id] = kind
			}
		}
	}
	return k
}

// objects returns row i's object count (1 or 2 in the learning world).
func objects(in *model.Inputs, i int) int { return min(len(in.Targets[i].Classes), 2) }

// addMLM adds colour-word MLM results: labels [B·L], preds [M] in label order.
// addMLM: labels and pred as the MLM head sees them; colourWords[i] is row
// i's number of colour words before masking.
func (d *learnDiag) addMLM(in *model.Inputs, labels, pred []int64, L int, colourWords []int) {
	k := 0
	for j, l := range labels {
		if l == data.IgnoreIndex {
			continue
		}
		ok := k < len(pred) && pred[k] == l
		d.mlm[objects(in, j/L)].add(ok)
		if objects(in, j/L) == 2 {
			d.mlm2By[min(colourWords[j/L], 2)].add(ok)
		}
		k++
	}
}

func (d *learnDiag) addITM(in *model.Inputs, labels, pred []int64) {
	for i, l := range labels {
		d.itm[objects(in, i)].add(pred[i] == l)
	}
}

func (d *learnDiag) addCaption(kinds map[int64]string, target, pred []int64) {
	for i, tgt := range target {
		if tgt == data.IgnoreIndex {
			continue
		}
		ok := pred[i] == tgt
		switch kinds[tgt] {
		case "shape":
			d.capShape.add(ok)
		case "colour":
			d.capCol.add(ok)
		case "size":
			d.capSize.add(ok)
		default:
			d.capOther.add(ok)
		}
	}
}

// addDetections: for every object, the query with the highest IoU.
func (d *learnDiag) addDetections(dets []model.ObjectDetection, gts []model.GroundTruth) {
	for _, g := range gts {
		best, bi := 0.0, -1
		for j, o := range dets {
			if iou, _ := model.IoU(o.Box, g.Box); iou > best {
				best, bi = iou, j
			}
		}
		d.detLoc.add(best >= 0.5)
		if best >= 0.5 {
			d.detShape.add(dets[bi].Class == g.Class)
		}
	}
}
