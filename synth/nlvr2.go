package synth

import (
	"math/rand/v2"
)

// NLVR2-style statements about two pictures ("the left image has more
// circles than the right image"), each true or false of a pair. NLVR2
// writes each sentence about a set of images and pairs it with several
// pairs of the set, some for which it holds and some for which it does
// not; NLVR2Statement does the same for the four pairs of an eight-image
// set, so that labels are balanced and the consistency metric (every pair
// of a sentence right) means something.

// Statement is a sentence and, for each pair it is asked about, whether it
// holds.
type Statement struct {
	Sentence string
	Labels   []bool // one per pair, in the order given
}

// countWordsTo are the number words statements use.
var countWordsTo = []string{"zero", "one", "two", "three", "four"}

// statementOf is a sentence and its truth as a function of the two
// pictures' objects.
type statementOf struct {
	sentence string
	holds    func(left, right []Object) bool
}

func plural(class string) string {
	if class == "cross" {
		return "crosses"
	}
	return class + "s"
}

func count(objs []Object, ok func(Object) bool) int {
	n := 0
	for _, o := range objs {
		if ok(o) {
			n++
		}
	}
	return n
}

// randomStatement draws one statement template and its words.
func randomStatement(rng *rand.Rand) statementOf {
	class := ClassNames[rng.IntN(len(ClassNames))]
	colour := ColourNames[rng.IntN(len(ColourNames))]
	size := SizeNames[rng.IntN(len(SizeNames))]
	isClass := func(o Object) bool { return o.Class == class }
	isColour := func(o Object) bool { return o.Colour == colour }
	isSize := func(o Object) bool { return o.Size == size }
	switch rng.IntN(6) {
	case 0:
		return statementOf{"the left image has more " + plural(class) + " than the right image",
			func(l, r []Object) bool { return count(l, isClass) > count(r, isClass) }}
	case 1:
		return statementOf{"the right image has more " + colour + " shapes than the left image",
			func(l, r []Object) bool { return count(r, isColour) > count(l, isColour) }}
	case 2:
		return statementOf{"both images contain a " + colour + " shape",
			func(l, r []Object) bool { return count(l, isColour) > 0 && count(r, isColour) > 0 }}
	case 3:
		return statementOf{"exactly one image contains a " + class,
			func(l, r []Object) bool { return (count(l, isClass) > 0) != (count(r, isClass) > 0) }}
	case 4:
		n := 1 + rng.IntN(3)
		return statementOf{"there are exactly " + countWordsTo[n] + " shapes in the left image",
			func(l, r []Object) bool { return len(l) == n }}
	default:
		n := 1 + rng.IntN(3)
		return statementOf{"there are " + countWordsTo[n] + " " + size + " shapes in the two images together",
			func(l, r []Object) bool { return count(l, isSize)+count(r, isSize) == n }}
	}
}

// NLVR2Statement writes sentence number k about the pairs (left[i],
// right[i]): of up to 64 drawn statements, the first true of exactly half
// the pairs, else the one closest to half. It is a pure function of its
// arguments.
func NLVR2Statement(left, right []Picture, seed uint64, set, k int) Statement {
	rng := rand.New(rand.NewPCG(seed^0x4e4c5652, uint64(set)<<8|uint64(k)))
	var best Statement
	bestGap := -1
	for try := 0; try < 64; try++ {
		st := randomStatement(rng)
		s := Statement{Sentence: st.sentence, Labels: make([]bool, len(left))}
		trues := 0
		for i := range left {
			s.Labels[i] = st.holds(left[i].Objects, right[i].Objects)
			if s.Labels[i] {
				trues++
			}
		}
		gap := abs(2*trues - len(left))
		if bestGap < 0 || gap < bestGap {
			best, bestGap = s, gap
		}
		if gap == 0 {
			break
		}
	}
	return best
}
