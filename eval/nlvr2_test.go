package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestScoreNLVR2ByHand(t *testing.T) {
	// Sentence 0 of set 1 is paired with pairs 0..3, sentence 1 with 0 and
	// 1; set 2's sentence 0 with one pair.
	ids := []string{"dev-1-0-0", "dev-1-1-0", "dev-1-2-0", "dev-1-3-0", "dev-1-0-1", "dev-1-1-1", "dev-2-0-0"}
	labels := []bool{true, false, true, false, true, true, false}
	preds := []bool{true, false, true, true, true, true, true}
	r, err := ScoreNLVR2(ids, preds, labels)
	if err != nil {
		t.Fatal(err)
	}
	// Right: 5 of 7. Sentences: dev-1--0 (one pair wrong), dev-1--1 (all
	// right), dev-2--0 (wrong): 1 of 3 consistent.
	if r.Examples != 7 || r.Sentences != 3 || math.Abs(r.Accuracy-5.0/7) > 1e-15 || math.Abs(r.Consistency-1.0/3) > 1e-15 {
		t.Errorf("got %+v", r)
	}
	if k, _ := NLVR2SentenceKey("test1-850-3-1"); k != "test1-850--1" {
		t.Errorf("key %q", k)
	}
	if _, err := ScoreNLVR2([]string{"dev-1"}, []bool{true}, []bool{true}); err == nil {
		t.Error("an identifier without a pair_id was accepted")
	}
	if _, err := ScoreNLVR2(ids, preds[:2], labels); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

// nlvr2Oracle is the official eval/metrics.py's computation, reading
// predictions and labels as its CSV and JSON lines would give them.
const nlvr2Oracle = `
import json, sys
examples = json.load(sys.stdin)
predictions = {e['identifier']: e['prediction'] for e in examples}
num_correct = 0.
consistency_dict = {}
for example in examples:
    anon_label = example["identifier"].split("-")
    anon_label[2] = ''
    anon_label = '-'.join(anon_label)
    if not anon_label in consistency_dict:
        consistency_dict[anon_label] = True
    prediction = predictions[example["identifier"]]
    if prediction.lower() == example["label"].lower():
        num_correct += 1.
    else:
        consistency_dict[anon_label] = False
num_consistent = float(sum(1 for v in consistency_dict.values() if v))
json.dump({"accuracy": num_correct / len(examples), "consistency": num_consistent / len(consistency_dict)}, sys.stdout)
`

func TestScoreNLVR2AgainstPython(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for trial := 0; trial < 10; trial++ {
		type example struct {
			Identifier string `json:"identifier"`
			Label      string `json:"label"`
			Prediction string `json:"prediction"`
		}
		var exs []example
		var ids []string
		var preds, labels []bool
		skill := 0.5 + 0.5*rng.Float64()
		for set := 0; set < 30; set++ {
			for s := 0; s < 1+rng.IntN(2); s++ {
				for pair := 0; pair < 1+rng.IntN(4); pair++ {
					id := fmt.Sprintf("%s-%d-%d-%d", []string{"dev", "test1"}[set%2], set, pair, s)
					label := rng.IntN(2) == 0
					pred := label
					if rng.Float64() > skill {
						pred = !pred
					}
					ids, preds, labels = append(ids, id), append(preds, pred), append(labels, label)
					exs = append(exs, example{Identifier: id, Label: []string{"False", "True"}[b2i(label)], Prediction: []string{"false", "true"}[b2i(pred)]})
				}
			}
		}
		var want struct{ Accuracy, Consistency float64 }
		runOracle(t, nlvr2Oracle, exs, &want)
		got, err := ScoreNLVR2(ids, preds, labels)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.Accuracy-want.Accuracy) > 1e-12 || math.Abs(got.Consistency-want.Consistency) > 1e-12 {
			t.Errorf("trial %d: got %+v, Python %+v", trial, got, want)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
