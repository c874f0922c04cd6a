package eval

import (
	"fmt"
	"math"
)

// ciderSigma is CIDEr-D's length penalty width, in tokens.
const ciderSigma = 6.0

// ciderVec is one caption's TF-IDF vectors, one per n-gram length, their
// norms, and its length as coco-caption counts it.
type ciderVec struct {
	w      [bleuN]map[string]float64
	norm   [bleuN]float64
	length float64
}

// CIDErD is coco-caption's CIDEr-D (Vedantam et al. 2015, the "D" variant
// of pycocoevalcap's CiderD scorer): per caption, for n = 1…4, the cosine
// similarity of TF-IDF n-gram vectors of the candidate and each reference,
// with the candidate's weights clipped to the reference's (min(c, r)·r)
// and a Gaussian penalty exp(−δ²/2σ²) on the length difference δ (σ = 6);
// averaged over references and n, times 10. The IDF is
// log(N) − log(max(1, df)) with df the number of the N captions' reference
// sets holding the n-gram. As coco-caption does, a caption's length is its
// count of bigrams (words − 1).
//
// It returns the corpus mean and each caption's score. hyps and refs are as
// for CorpusBLEU.
func CIDErD(hyps [][]string, refs [][][]string) (float64, []float64, error) {
	if len(hyps) != len(refs) {
		return 0, nil, fmt.Errorf("eval: cider-d: %d captions, %d reference lists", len(hyps), len(refs))
	}
	df := map[string]int{}
	for i, rs := range refs {
		if len(rs) == 0 {
			return 0, nil, fmt.Errorf("eval: cider-d: caption %d has no reference", i)
		}
		seen := map[string]bool{}
		for _, r := range rs {
			for g := range ngramCounts(r, bleuN) {
				seen[g] = true
			}
		}
		for g := range seen {
			df[g]++
		}
	}
	logN := math.Log(float64(len(hyps)))
	vec := func(tokens []string) ciderVec {
		var v ciderVec
		for n := range v.w {
			v.w[n] = map[string]float64{}
		}
		for g, tf := range ngramCounts(tokens, bleuN) {
			n := gramLen(g) - 1
			w := float64(tf) * (logN - math.Log(math.Max(1, float64(df[g]))))
			v.w[n][g] = w
			v.norm[n] += w * w
			if n == 1 {
				v.length += float64(tf)
			}
		}
		for n := range v.norm {
			v.norm[n] = math.Sqrt(v.norm[n])
		}
		return v
	}
	scores := make([]float64, len(hyps))
	total := 0.0
	for i, h := range hyps {
		hv := vec(h)
		var sum [bleuN]float64
		for _, r := range refs[i] {
			rv := vec(r)
			delta := hv.length - rv.length
			for n := range sum {
				val := 0.0
				for g, w := range hv.w[n] {
					val += math.Min(w, rv.w[n][g]) * rv.w[n][g]
				}
				if hv.norm[n] != 0 && rv.norm[n] != 0 {
					val /= hv.norm[n] * rv.norm[n]
				}
				sum[n] += val * math.Exp(-delta*delta/(2*ciderSigma*ciderSigma))
			}
		}
		mean := 0.0
		for _, s := range sum {
			mean += s
		}
		scores[i] = mean / bleuN / float64(len(refs[i])) * 10
		total += scores[i]
	}
	if len(hyps) == 0 {
		return 0, scores, nil
	}
	return total / float64(len(hyps)), scores, nil
}
