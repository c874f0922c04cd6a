package eval

import (
	"fmt"
	"strings"

	"github.com/e2evlp/vlp/downstream"
)

// VQAAccuracy is the official VQA accuracy of one predicted answer against
// the human answers (vqaEval.py, VQA v2), step for step:
//
//   - the prediction: tabs and newlines to spaces, trimmed, then the full
//     answer normalisation (downstream.NormalizeAnswer: punctuation, number
//     words to digits, articles, contractions);
//   - the human answers: only when they are not all the same, each goes
//     through the punctuation step (downstream.ProcessPunctuation) and
//     nothing else — the release's answers are normalised already;
//   - for each human, min(#other humans whose answer equals the prediction
//     / 3, 1); the accuracy is the mean over the humans, i.e. over the
//     subsets of all but one annotator.
//
// With ten humans an answer given by 0, 1, 2, 3, ≥ 4 of them scores 0,
// 0.3, 0.6, 0.9, 1. No human answers scores 0.
func VQAAccuracy(pred string, humans []string) float64 {
	if len(humans) == 0 {
		return 0
	}
	pred = downstream.NormalizeAnswer(pred)
	gts := humans
	if !allSame(humans) {
		gts = make([]string, len(humans))
		for i, h := range humans {
			gts[i] = downstream.ProcessPunctuation(h)
		}
	}
	matches := 0
	for _, g := range gts {
		if g == pred {
			matches++
		}
	}
	sum := 0.0
	for _, g := range gts {
		others := matches
		if g == pred {
			others--
		}
		sum += min(1, float64(others)/3)
	}
	return sum / float64(len(gts))
}

func allSame(s []string) bool {
	for _, x := range s[1:] {
		if x != s[0] {
			return false
		}
	}
	return true
}

// VQAResult is the VQA accuracy of a set of questions, overall and by
// answer type ("yes/no", "number", "other") as the official script
// reports it (fractions here, not percentages).
type VQAResult struct {
	Accuracy     float64            `json:"accuracy"`
	Questions    int                `json:"questions"`
	ByAnswerType map[string]float64 `json:"by_answer_type,omitempty"`
	TypeCounts   map[string]int     `json:"type_counts,omitempty"`
}

// ScoreVQA averages VQAAccuracy over questions: preds[i] answers the
// question whose human answers are humans[i] and whose answer type is
// types[i] (types may be nil).
func ScoreVQA(preds []string, humans [][]string, types []string) (VQAResult, error) {
	if len(preds) != len(humans) || types != nil && len(types) != len(preds) {
		return VQAResult{}, fmt.Errorf("eval: VQA: %d predictions, %d human answer lists, %d types", len(preds), len(humans), len(types))
	}
	r := VQAResult{Questions: len(preds)}
	if len(preds) == 0 {
		return r, nil
	}
	sums := map[string]float64{}
	if types != nil {
		r.ByAnswerType, r.TypeCounts = map[string]float64{}, map[string]int{}
	}
	total := 0.0
	for i, p := range preds {
		acc := VQAAccuracy(p, humans[i])
		total += acc
		if types != nil {
			t := strings.TrimSpace(types[i])
			sums[t] += acc
			r.TypeCounts[t]++
		}
	}
	r.Accuracy = total / float64(len(preds))
	for t, s := range sums {
		r.ByAnswerType[t] = s / float64(r.TypeCounts[t])
	}
	return r, nil
}
