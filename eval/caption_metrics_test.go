package eval

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func toks(s string) []string { return strings.Fields(s) }

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol || math.IsNaN(got) {
		t.Errorf("%s = %.12g, want %.12g (±%g)", what, got, want, tol)
	}
}

func TestCaptionTokens(t *testing.T) {
	got := CaptionTokens("A Red, circle!  Café--next to a   BLUE square.")
	want := []string{"a", "red", "circle", "cafe", "next", "to", "a", "blue", "square"}
	if !slices.Equal(got, want) {
		t.Fatalf("CaptionTokens = %q, want %q", got, want)
	}
}

// TestCorpusBLEUByHand checks BLEU on cases worked out on paper.
func TestCorpusBLEUByHand(t *testing.T) {
	// "the cat sat on the mat" against "the cat is on the mat": clipped
	// matches 5/6, 3/5, 1/4, 0/3; equal lengths, no brevity penalty.
	b, err := CorpusBLEU([][]string{toks("the cat sat on the mat")}, [][][]string{{toks("the cat is on the mat")}})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "BLEU-1", b[0], 5.0/6, 1e-9)
	near(t, "BLEU-2", b[1], math.Sqrt(0.5), 1e-9)
	near(t, "BLEU-3", b[2], 0.5, 1e-9)
	// No 4-gram matches: coco-caption's 1e-15 leaves (0.125·1e-15/3)^¼.
	near(t, "BLEU-4", b[3], 8.0343e-5, 1e-8)

	// Two words against six: precision 1, brevity penalty exp(1 − 6/2).
	b, _ = CorpusBLEU([][]string{toks("the cat")}, [][][]string{{toks("the cat is on the mat")}})
	near(t, "short BLEU-1", b[0], math.Exp(-2), 1e-9)
	near(t, "short BLEU-2", b[1], math.Exp(-2), 1e-9)

	// Four words, references of 3 and 5: the closest is a tie, the shorter
	// (3) wins, so there is no penalty (the longer would give exp(−0.25)).
	// "d" matches through the second reference: clipping takes the maximum
	// count over references.
	b, _ = CorpusBLEU([][]string{toks("a b c d")}, [][][]string{{toks("a b c"), toks("a b c d e")}})
	near(t, "tie BLEU-1", b[0], 1, 1e-9)

	// Clipping: "the the the" against "the cat": 1 of 3 unigrams counts.
	b, _ = CorpusBLEU([][]string{toks("the the the")}, [][][]string{{toks("the cat")}})
	near(t, "clipped BLEU-1", b[0], 1.0/3, 1e-9)

	// Corpus level: sums over captions before dividing (3/4 + 1/2 would
	// average to 0.625 per sentence; the corpus gives 4/6).
	b, _ = CorpusBLEU([][]string{toks("a b c x"), toks("d y")}, [][][]string{{toks("a b c d")}, {toks("d e")}})
	near(t, "corpus BLEU-1", b[0], 4.0/6, 1e-9)

	// A caption shorter than n has no n-gram: it adds nothing to BLEU-n's
	// counts (NLTK would count one). Matches 7/8, 5/6, 3/4; c = 8 against
	// r = 5 + 4 gives the penalty exp(1 − 9/8).
	b, _ = CorpusBLEU([][]string{toks("a b c d e f"), toks("x y")}, [][][]string{{toks("a b c d e")}, {toks("x y z w")}})
	near(t, "short caption BLEU-3", b[2], math.Cbrt(7.0/8*5/6*3/4)*math.Exp(-1.0/8), 1e-9)

	if _, err := CorpusBLEU([][]string{toks("a")}, [][][]string{{}}); err == nil {
		t.Error("a caption with no reference: no error")
	}
}

// TestCIDErDByHand checks CIDEr-D on cases worked out on paper.
func TestCIDErDByHand(t *testing.T) {
	// Two images, each caption equal to its one reference: every n-gram has
	// df 1 of N = 2, cosine 1 for n = 1, 2 and 0 for n = 3, 4 (no grams):
	// 10·(1+1+0+0)/4 = 5.
	mean, per, err := CIDErD([][]string{toks("red circle"), toks("blue square")},
		[][][]string{{toks("red circle")}, {toks("blue square")}})
	if err != nil {
		t.Fatal(err)
	}
	near(t, "identical", mean, 5, 1e-12)
	near(t, "identical[1]", per[1], 5, 1e-12)

	// "a" is in every reference set: IDF 0, so it adds nothing; n = 1, 2,
	// 3 have cosine 1: 10·3/4.
	mean, _, _ = CIDErD([][]string{toks("a red circle"), toks("a blue square")},
		[][][]string{{toks("a red circle")}, {toks("a blue square")}})
	near(t, "common word", mean, 7.5, 1e-12)

	// "red red" against "red": the candidate's weight 2·log2 is clipped to
	// the reference's log2, cosine (log2·log2)/(2log2·log2) = ½; no bigram in
	// the reference; lengths (bigrams) 1 and 0 give exp(−1/72). Image 2 is
	// one identical word: 10·1/4.
	mean, per, _ = CIDErD([][]string{toks("red red"), toks("blue")}, [][][]string{{toks("red")}, {toks("blue")}})
	near(t, "clipped", per[0], 10*0.5*math.Exp(-1.0/72)/4, 1e-12)
	near(t, "one word", per[1], 2.5, 1e-12)
	near(t, "clipped mean", mean, (per[0]+per[1])/2, 1e-12)

	// Nothing in common: 0.
	mean, _, _ = CIDErD([][]string{toks("green star"), toks("blue")}, [][][]string{{toks("red circle")}, {toks("blue")}})
	_, per, _ = CIDErD([][]string{toks("green star"), toks("blue")}, [][][]string{{toks("red circle")}, {toks("blue")}})
	near(t, "disjoint", per[0], 0, 0)
	near(t, "disjoint mean", mean, 1.25, 1e-12)
}

// randomCorpus makes n captions over a small vocabulary, each with 1–5
// references of 4–13 words, the caption a reference with a few words
// changed, dropped or added, so every n-gram order has matches. Captions
// keep at least 4 words: NLTK counts a caption shorter than n as one
// n-gram (its denominator is max(1, count)) where coco-caption counts none.
func randomCorpus(rng *rand.Rand, n int) (hyps [][]string, refs [][][]string) {
	words := strings.Fields("a red blue green circle square star small large and next to the")
	sentence := func() []string {
		s := make([]string, 4+rng.IntN(10))
		for i := range s {
			s[i] = words[rng.IntN(len(words))]
		}
		return s
	}
	for range n {
		var rs [][]string
		for range 1 + rng.IntN(5) {
			rs = append(rs, sentence())
		}
		h := slices.Clone(rs[rng.IntN(len(rs))])
		for range rng.IntN(4) {
			switch i := rng.IntN(len(h)); rng.IntN(3) {
			case 0:
				h[i] = words[rng.IntN(len(words))]
			case 1:
				if len(h) > 4 {
					h = slices.Delete(h, i, i+1)
				}
			default:
				h = slices.Insert(h, i, words[rng.IntN(len(words))])
			}
		}
		hyps, refs = append(hyps, h), append(refs, rs)
	}
	return hyps, refs
}

// randomCorpora are 40 corpora of 5 to 24 captions (randomCorpus).
func randomCorpora(seed uint64) []captionCase {
	rng := rand.New(rand.NewPCG(16, seed))
	var cases []captionCase
	for i := range 40 {
		h, r := randomCorpus(rng, 5+i%20)
		cases = append(cases, captionCase{h, r})
	}
	return cases
}

type captionCase struct {
	Hyps [][]string   `json:"hyps"`
	Refs [][][]string `json:"refs"`
}

// nltkBLEU is the oracle: NLTK's corpus_bleu (closest reference length,
// clipped counts) with uniform weights over 1…n.
const nltkBLEU = `
import json, sys
from nltk.translate.bleu_score import corpus_bleu
out = []
for case in json.load(sys.stdin):
    out.append([corpus_bleu(case["refs"], case["hyps"], weights=tuple([1.0 / n] * n)) for n in range(1, 5)])
json.dump(out, sys.stdout)
`

// TestCorpusBLEUAgainstNLTK compares BLEU-1…4 with NLTK's on random
// corpora (Debian's python3-nltk).
func TestCorpusBLEUAgainstNLTK(t *testing.T) {
	cases := randomCorpora(1)
	var want [][4]float64
	runOracle(t, nltkBLEU, cases, &want)
	for i, c := range cases {
		got, err := CorpusBLEU(c.Hyps, c.Refs)
		if err != nil {
			t.Fatal(err)
		}
		for n := range 4 {
			if want[i][n] < 1e-3 {
				t.Fatalf("case %d: NLTK's BLEU-%d is %g: the generator made a corpus with no %d-gram match", i, n+1, want[i][n], n+1)
			}
			// coco-caption's 1e-9 in each denominator is the only difference.
			near(t, "case BLEU", got[n], want[i][n], 1e-7)
		}
	}
}

// pyCIDErD is an independent CIDEr-D written from the definition in
// Vedantam et al. and coco-caption's conventions (length = bigram count).
const pyCIDErD = `
import json, math, sys

def grams(words):
    c = {}
    for n in range(1, 5):
        for i in range(len(words) - n + 1):
            g = tuple(words[i:i + n])
            c[g] = c.get(g, 0) + 1
    return c

def cider_d(hyps, refs):
    N = len(hyps)
    df = {}
    for rs in refs:
        for g in set(g for r in rs for g in grams(r)):
            df[g] = df.get(g, 0) + 1
    def tfidf(words):
        v = [{}, {}, {}, {}]
        for g, tf in grams(words).items():
            v[len(g) - 1][g] = tf * (math.log(N) - math.log(max(1, df.get(g, 0))))
        return v
    scores = []
    for h, rs in zip(hyps, refs):
        vh = tfidf(h)
        total = 0.0
        for n in range(4):
            for r in rs:
                vr = tfidf(r)[n]
                num = sum(min(w, vr.get(g, 0.0)) * vr.get(g, 0.0) for g, w in vh[n].items())
                nh = math.sqrt(sum(w * w for w in vh[n].values()))
                nr = math.sqrt(sum(w * w for w in vr.values()))
                cos = num / (nh * nr) if nh > 0 and nr > 0 else 0.0
                delta = max(len(h) - 1, 0) - max(len(r) - 1, 0)
                total += cos * math.exp(-delta * delta / (2 * 6.0 ** 2)) / len(rs)
        scores.append(10 * total / 4)
    return sum(scores) / len(scores), scores

json.dump([cider_d(c["hyps"], c["refs"]) for c in json.load(sys.stdin)], sys.stdout)
`

// TestCIDErDAgainstPython compares CIDEr-D, corpus and per caption, with
// the independent Python implementation on random corpora.
func TestCIDErDAgainstPython(t *testing.T) {
	cases := randomCorpora(2)
	var want []struct {
		Mean float64
		Per  []float64
	}
	var raw [][2]any
	runOracle(t, pyCIDErD, cases, &raw)
	for _, r := range raw {
		var w struct {
			Mean float64
			Per  []float64
		}
		w.Mean = r[0].(float64)
		for _, v := range r[1].([]any) {
			w.Per = append(w.Per, v.(float64))
		}
		want = append(want, w)
	}
	nonzero := 0
	for i, c := range cases {
		mean, per, err := CIDErD(c.Hyps, c.Refs)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "CIDEr-D", mean, want[i].Mean, 1e-9)
		for j := range per {
			near(t, "CIDEr-D per caption", per[j], want[i].Per[j], 1e-9)
		}
		if mean > 0.1 {
			nonzero++
		}
	}
	if nonzero < len(cases)/2 {
		t.Fatalf("only %d of %d corpora score above 0.1: the comparison says little", nonzero, len(cases))
	}
}

// A printed caption is marked right only when it is one of the image's captions or region
// descriptions as the captioning metrics tokenise them (case and punctuation aside), and the
// mark says which.
func TestCaptionMatch(t *testing.T) {
	refs := []string{"two shapes: a small red triangle and a small blue star", "a small blue star left of a small red triangle", "a small red triangle in the bottom right"}
	regions := []string{"a small red triangle", "a small blue star"}
	for _, c := range []struct {
		caption string
		want    TextMatch
	}{
		{"two shapes: a small red triangle and a small blue star", TextIsCaption},
		{"Two shapes, a small red triangle and a small blue star.", TextIsCaption},
		{"a small red triangle", TextIsRegion},
		{"a small red", TextIsNone}, // a prefix of a text is not one
		{"a small blue star left of a small green triangle", TextIsNone},
		{"a large blue star", TextIsNone},
		{"", TextIsNone},
	} {
		if got := matchOf(c.caption, refs, regions); got != c.want {
			t.Errorf("matchOf(%q) = %q, want %q", c.caption, got, c.want)
		}
	}
	var b strings.Builder
	r := &Report{Samples: []Sample{
		{Truth: refs[0], Greedy: refs[1], References: 3, Regions: 2, GreedyIs: TextIsCaption},
		{Truth: refs[0], Greedy: regions[0], References: 3, Regions: 2, GreedyIs: TextIsRegion},
		{Truth: refs[0], Greedy: "a large green star", References: 3, Regions: 2, GreedyIs: TextIsNone},
	}}
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"✓ one of the image's 3 captions", "✓ names one of its objects", "✗ none of the image's 3 captions or 2 region descriptions"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
}
