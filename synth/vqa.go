package synth

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// VQA-style questions about a picture: colour, shape, size, count and
// position, each with the true answer and ten "human" answers of which
// some are wrong (FinetuneConfig.Noise), so that the VQA soft score
// (min(#humans who gave it / 3, 1)) and the majority answer matter.

// The question kinds, in the order a picture's questions cycle through.
const (
	KindColour   = "colour"
	KindShape    = "shape"
	KindSize     = "size"
	KindCount    = "count"
	KindPosition = "position"
)

// QuestionKinds lists the kinds.
var QuestionKinds = []string{KindColour, KindShape, KindSize, KindCount, KindPosition}

// HumansPerQuestion is VQA v2's number of answers per question.
const HumansPerQuestion = 10

// VQAItem is one question about one picture.
type VQAItem struct {
	Kind         string
	Question     string
	Answer       string // the true answer, written as VQA v2's answers are (lower case, digits)
	QuestionType string // the question's first words, as VQA v2's question_type
	AnswerType   string // "yes/no", "number" or "other"
	Humans       [HumansPerQuestion]string
	Wrong        int // how many of Humans differ from Answer
}

// MajorityAnswer is the most frequent human answer (multiple_choice_answer);
// a tie goes to the true answer, then to the first in alphabetical order.
func (it VQAItem) MajorityAnswer() string {
	counts := map[string]int{}
	for _, h := range it.Humans {
		counts[h]++
	}
	best := it.Answer
	for a, n := range counts {
		if n > counts[best] || n == counts[best] && best != it.Answer && a < best {
			best = a
		}
	}
	return best
}

// VQAQuestions returns n questions about picture p (of a w x h world),
// cycling through QuestionKinds from a start that depends on the picture,
// with each human answer wrong with probability noise. It is a pure
// function of its arguments.
func VQAQuestions(p Picture, w, h, n int, noise float64, seed uint64) []VQAItem {
	rng := rand.New(rand.NewPCG(seed^0x51a3c0de, uint64(p.Index)))
	start := rng.IntN(len(QuestionKinds))
	out := make([]VQAItem, 0, n)
	for k := 0; k < n; k++ {
		kind := QuestionKinds[(start+k)%len(QuestionKinds)]
		it, wrong := askVQA(rng, p.Objects, kind, w, h)
		for a := range it.Humans {
			it.Humans[a] = it.Answer
			if rng.Float64() < noise {
				it.Humans[a] = wrong[rng.IntN(len(wrong))]
				it.Wrong++
			}
		}
		out = append(out, it)
	}
	return out
}

// askVQA writes one question of kind about objs (or a count question when
// the kind cannot be asked unambiguously) and the wrong answers a careless
// annotator might give.
func askVQA(rng *rand.Rand, objs []Object, kind string, w, h int) (VQAItem, []string) {
	pick := func(ok func(Object) bool) (Object, bool) {
		var cands []Object
		for _, o := range objs {
			if ok(o) {
				cands = append(cands, o)
			}
		}
		if len(cands) == 0 {
			return Object{}, false
		}
		return cands[rng.IntN(len(cands))], true
	}
	unique := func(o Object, key func(Object) string) bool {
		n := 0
		for _, p := range objs {
			if key(p) == key(o) {
				n++
			}
		}
		return n == 1
	}
	class := func(o Object) string { return o.Class }
	colour := func(o Object) string { return o.Colour }
	both := func(o Object) string { return o.Colour + " " + o.Class }

	switch kind {
	case KindColour:
		if o, ok := pick(func(o Object) bool { return unique(o, class) }); ok {
			return VQAItem{Kind: kind, Question: "what color is the " + o.Class + "?", Answer: o.Colour,
				QuestionType: "what color is the", AnswerType: "other"}, others(ColourNames, o.Colour)
		}
	case KindShape:
		if o, ok := pick(func(o Object) bool { return unique(o, colour) }); ok {
			return VQAItem{Kind: kind, Question: "what shape is the " + o.Colour + " object?", Answer: o.Class,
				QuestionType: "what shape is the", AnswerType: "other"}, others(ClassNames, o.Class)
		}
	case KindSize:
		if o, ok := pick(func(o Object) bool { return unique(o, both) }); ok {
			return VQAItem{Kind: kind, Question: "is the " + o.Colour + " " + o.Class + " small or large?", Answer: o.Size,
				QuestionType: "is the", AnswerType: "other"}, others(SizeNames, o.Size)
		}
	case KindPosition:
		if len(objs) >= 2 {
			i := rng.IntN(len(objs))
			j := (i + 1 + rng.IntN(len(objs)-1)) % len(objs)
			a, b := objs[i], objs[j]
			if unique(a, both) && unique(b, both) {
				rel := Relation(a.Box, b.Box)
				answer := "yes"
				if rng.IntN(2) == 0 {
					rel = others(Relations, rel)[rng.IntN(len(Relations)-1)]
					answer = "no"
				}
				return VQAItem{Kind: kind, Question: "is the " + a.Colour + " " + a.Class + " " + rel + " the " + b.Colour + " " + b.Class + "?",
					Answer: answer, QuestionType: "is the", AnswerType: "yes/no"}, others([]string{"yes", "no"}, answer)
			}
		}
		if o, ok := pick(func(o Object) bool { return unique(o, both) }); ok {
			where := strings.TrimPrefix(Position(o.Box, w, h), "in the ")
			return VQAItem{Kind: kind, Question: "where is the " + o.Colour + " " + o.Class + "?", Answer: where,
				QuestionType: "where is the", AnswerType: "other"}, others(positionNames, where)
		}
	}
	// Count: always askable, of all shapes or of one colour.
	n, q := len(objs), "how many shapes are there?"
	if rng.IntN(2) == 0 {
		c := ColourNames[rng.IntN(len(ColourNames))]
		n, q = 0, "how many "+c+" shapes are there?"
		for _, o := range objs {
			if o.Colour == c {
				n++
			}
		}
	}
	wrong := []string{strconv.Itoa(n + 1)}
	if n > 0 {
		wrong = append(wrong, strconv.Itoa(n-1))
	}
	return VQAItem{Kind: KindCount, Question: q, Answer: strconv.Itoa(n), QuestionType: "how many", AnswerType: "number"}, wrong
}

// positionNames are the answers of "where is …?" questions.
var positionNames = []string{"top left", "top center", "top right", "middle left", "center", "middle right",
	"bottom left", "bottom center", "bottom right"}

// others returns list without v.
func others(list []string, v string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == v })
}
