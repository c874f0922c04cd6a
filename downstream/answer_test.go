package downstream

import (
	"math"
	"testing"
)

func TestNormalizeAnswerByHand(t *testing.T) {
	for in, want := range map[string]string{
		"Two":             "2",
		"  The Red Ball ": "red ball",
		"dont know":       "don't know",
		"yes.":            "yes",
		"3.5":             "3.5",
		"1,000":           "1000",
		"t-shirt":         "t shirt",
		"black - white":   "black white",
		"a\tcat\nand dog": "cat and dog",
		"none":            "0",
		"Im":              "im", // the table's capitalised keys never match
	} {
		if got := NormalizeAnswer(in); got != want {
			t.Errorf("NormalizeAnswer(%q) = %q, want %q", in, got, want)
		}
	}
	// At most 32 periods go: the script's re.UNICODE in re.sub's count.
	in := ""
	for i := 0; i < 40; i++ {
		in += "."
	}
	if got := ProcessPunctuation("a" + in); got != "a........" {
		t.Errorf("40 periods left %q", got)
	}
}

func TestSoftScore(t *testing.T) {
	for n, want := range []float64{0, 0.3, 0.6, 0.9, 1, 1, 1, 1, 1, 1, 1} {
		if got := SoftScore(n, 10); math.Abs(got-want) > 1e-12 {
			t.Errorf("SoftScore(%d, 10) = %v, want %v", n, got, want)
		}
	}
	// Three humans: one match leaves 0 or 1 others: (1·0 + 2·1/3)/3.
	if got := SoftScore(1, 3); math.Abs(got-2.0/9) > 1e-12 {
		t.Errorf("SoftScore(1, 3) = %v", got)
	}
	if SoftScore(1, 1) != 0 || SoftScore(0, 0) != 0 {
		t.Error("a lone annotator has nobody else to agree with")
	}
}

func TestAnswerVocabByHand(t *testing.T) {
	q := func(mc string, humans ...string) VQAQuestion {
		var as []VQAAnswer
		for i, h := range humans {
			as = append(as, VQAAnswer{Answer: h, ID: i + 1})
		}
		return VQAQuestion{MultipleChoiceAnswer: mc, Answers: as}
	}
	qs := []VQAQuestion{q("Two", "2"), q("2", "2"), q("two.", "2"), q("yes", "yes"), q("yes", "yes"), q("red", "red")}
	v, err := BuildAnswerVocab(qs, VocabConfig{MinCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Answers) != 2 || v.Answers[0] != "2" || v.Answers[1] != "yes" || v.Counts[0] != 3 {
		t.Fatalf("vocab %v %v", v.Answers, v.Counts)
	}
	if v2, _ := BuildAnswerVocab(qs, VocabConfig{MinCount: 1, MaxSize: 2}); v2.Len() != 2 {
		t.Errorf("MaxSize: %v", v2.Answers)
	}
	ts := v.Targets([]string{"two", "2", "Two", "yes", "red", "red", "red", "red", "red", "red"})
	if len(ts) != 2 || ts[0].Class != 0 || math.Abs(ts[0].Score-0.9) > 1e-12 || ts[1].Class != 1 || math.Abs(ts[1].Score-0.3) > 1e-12 {
		t.Errorf("targets %+v", ts)
	}
	if _, err := BuildAnswerVocab(qs, VocabConfig{MinCount: 10}); err == nil {
		t.Error("an empty vocabulary was built")
	}
}
