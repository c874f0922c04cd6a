package eval

import (
	"fmt"
	"strings"
)

// NLVR2Result is NLVR2's two numbers (the official eval/metrics.py):
// accuracy over examples, and consistency, the fraction of sentences for
// which every example (every image pair the sentence is paired with) is
// right.
type NLVR2Result struct {
	Accuracy    float64 `json:"accuracy"`
	Consistency float64 `json:"consistency"`
	Examples    int     `json:"examples"`
	Sentences   int     `json:"sentences"`
}

// NLVR2SentenceKey is the group an example's identifier
// (split-set_id-pair_id-sentence_id) belongs to for consistency: the
// identifier with its pair_id emptied, as the official script forms it
// ("dev-850-0-1" → "dev-850--1").
func NLVR2SentenceKey(identifier string) (string, error) {
	parts := strings.Split(identifier, "-")
	if len(parts) < 3 {
		return "", fmt.Errorf("eval: NLVR2 identifier %q has no pair_id", identifier)
	}
	parts[2] = ""
	return strings.Join(parts, "-"), nil
}

// ScoreNLVR2 scores predictions: preds[i] and labels[i] are the predicted
// and true label of the example named ids[i].
func ScoreNLVR2(ids []string, preds, labels []bool) (NLVR2Result, error) {
	if len(ids) != len(preds) || len(ids) != len(labels) {
		return NLVR2Result{}, fmt.Errorf("eval: NLVR2: %d identifiers, %d predictions, %d labels", len(ids), len(preds), len(labels))
	}
	r := NLVR2Result{Examples: len(ids)}
	if len(ids) == 0 {
		return r, nil
	}
	consistent := map[string]bool{}
	right := 0
	for i, id := range ids {
		key, err := NLVR2SentenceKey(id)
		if err != nil {
			return NLVR2Result{}, err
		}
		if _, ok := consistent[key]; !ok {
			consistent[key] = true
		}
		if preds[i] == labels[i] {
			right++
		} else {
			consistent[key] = false
		}
	}
	n := 0
	for _, ok := range consistent {
		if ok {
			n++
		}
	}
	r.Sentences = len(consistent)
	r.Accuracy = float64(right) / float64(len(ids))
	r.Consistency = float64(n) / float64(len(consistent))
	return r, nil
}
