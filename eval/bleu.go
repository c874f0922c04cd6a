package eval

import (
	"fmt"
	"math"
)

// bleuN is the longest n-gram BLEU counts.
const bleuN = 4

// CorpusBLEU is coco-caption's corpus BLEU-1…4 (pycocoevalcap's
// BleuScorer with option "closest"): over the whole corpus, the clipped
// n-gram matches (each n-gram counted at most as often as in the reference
// that has it most) over the candidate n-grams, for n = 1…4; BLEU-n is the
// geometric mean of the first n of these precisions times the brevity
// penalty exp(1 − r/c) when the candidates' total length c is below r, the
// sum over captions of the reference length closest to the candidate's
// (the shorter on a tie). As coco-caption does, each precision is
// (matches + 1e-15)/(candidates + 1e-9), so a corpus with no 4-gram match
// gets a tiny BLEU-4 rather than 0.
//
// hyps[i] is caption i's tokens (CaptionTokens), refs[i] its references';
// every caption needs at least one reference.
func CorpusBLEU(hyps [][]string, refs [][][]string) ([bleuN]float64, error) {
	var out [bleuN]float64
	if len(hyps) != len(refs) {
		return out, fmt.Errorf("eval: bleu: %d captions, %d reference lists", len(hyps), len(refs))
	}
	var correct, guess [bleuN]float64
	var testLen, refLen float64
	for i, h := range hyps {
		if len(refs[i]) == 0 {
			return out, fmt.Errorf("eval: bleu: caption %d has no reference", i)
		}
		maxRef := map[string]int{}
		closest := len(refs[i][0])
		for _, r := range refs[i] {
			for g, c := range ngramCounts(r, bleuN) {
				maxRef[g] = max(maxRef[g], c)
			}
			d, best := abs(len(r)-len(h)), abs(closest-len(h))
			if d < best || (d == best && len(r) < closest) {
				closest = len(r)
			}
		}
		testLen += float64(len(h))
		refLen += float64(closest)
		for k := 0; k < bleuN; k++ {
			guess[k] += float64(max(0, len(h)-k))
		}
		for g, c := range ngramCounts(h, bleuN) {
			correct[gramLen(g)-1] += float64(min(c, maxRef[g]))
		}
	}
	const tiny, small = 1e-15, 1e-9
	prod := 1.0
	for k := 0; k < bleuN; k++ {
		prod *= (correct[k] + tiny) / (guess[k] + small)
		out[k] = math.Pow(prod, 1/float64(k+1))
	}
	if ratio := (testLen + tiny) / (refLen + small); ratio < 1 {
		for k := range out {
			out[k] *= math.Exp(1 - 1/ratio)
		}
	}
	return out, nil
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
