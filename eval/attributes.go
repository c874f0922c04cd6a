package eval

import "slices"

// AttributeAccuracy scores the attribute head on the objects the detector
// found: over matched ground truths that have at least one attribute,
// Top1 counts those whose detection's most probable attribute is one of
// theirs, Exact those whose k most probable attributes are exactly their k
// (a detection listing fewer than k attributes is not exact).
type AttributeAccuracy struct {
	Objects int `json:"objects"`
	Top1    int `json:"top1"`
	Exact   int `json:"exact"`
}

// Top1Rate is Top1/Objects (0 with no object).
func (a AttributeAccuracy) Top1Rate() float64 { return ratio(a.Top1, a.Objects) }

// ExactRate is Exact/Objects (0 with no object).
func (a AttributeAccuracy) ExactRate() float64 { return ratio(a.Exact, a.Objects) }

// MatchedAttributes measures AttributeAccuracy over matches (usually
// COCOResult.Matches50: IoU ≥ .5, crowds left out).
func MatchedAttributes(dets []Detection, gts []GroundTruth, matches []Match) AttributeAccuracy {
	var acc AttributeAccuracy
	for _, m := range matches {
		want, got := gts[m.GT].Attributes, dets[m.Det].Attributes
		if len(want) == 0 {
			continue
		}
		acc.Objects++
		if len(got) > 0 && slices.Contains(want, got[0]) {
			acc.Top1++
		}
		if len(got) >= len(want) {
			a, b := slices.Clone(want), slices.Clone(got[:len(want)])
			slices.Sort(a)
			slices.Sort(b)
			if slices.Equal(a, b) {
				acc.Exact++
			}
		}
	}
	return acc
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
