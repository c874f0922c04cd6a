package eval

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/downstream"
)

func TestVQAAccuracyByHand(t *testing.T) {
	ten := func(spec ...any) []string { // ("red", 3, "blue", 7) → 3 × red, 7 × blue
		var out []string
		for i := 0; i < len(spec); i += 2 {
			for k := 0; k < spec[i+1].(int); k++ {
				out = append(out, spec[i].(string))
			}
		}
		return out
	}
	cases := []struct {
		name   string
		pred   string
		humans []string
		want   float64
	}{
		{"all ten agree", "red", ten("red", 10), 1},
		{"four agree: every subset has three", "red", ten("red", 4, "blue", 6), 1},
		{"three agree: 7 subsets of 3, 3 of 2", "red", ten("red", 3, "blue", 7), (7*1.0 + 3*2.0/3) / 10},
		{"two agree", "red", ten("red", 2, "blue", 8), (8*2.0/3 + 2*1.0/3) / 10},
		{"one agrees", "red", ten("red", 1, "blue", 9), 9 * (1.0 / 3) / 10},
		{"nobody", "green", ten("red", 5, "blue", 5), 0},
		{"number word to digit", "Two", ten("2", 3, "3", 7), 0.9},
		{"article and period dropped", "the circle.", ten("circle", 2, "square", 8), 0.6},
		{"contraction restored", "dont know", ten("don't know", 4, "no", 6), 1},
		{"unanimous humans are not normalised", "two", ten("two", 10), 0},
		{"humans' punctuation only when they disagree", "t-shirt", ten("t-shirt", 3, "shirt", 7), 0.9},
		{"a human's mark becomes a space the prediction lacks", "yes", ten("yes!", 3, "no", 7), 0},
		{"humans keep their number words", "two", ten("two", 5, "2", 5), 1}, // pred → "2" matches the five "2"
		{"comma between digits deletes every mark", "1,000", ten("1000", 3, "10 000", 7), 0.9},
		{"no humans", "red", nil, 0},
	}
	for _, c := range cases {
		if got := VQAAccuracy(c.pred, c.humans); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: VQAAccuracy(%q) = %v, want %v", c.name, c.pred, got, c.want)
		}
	}
}

func TestScoreVQAByType(t *testing.T) {
	humans := [][]string{
		strings.Split("yes yes yes yes yes yes yes yes yes yes", " "),
		strings.Split("2 2 2 3 3 3 3 3 3 3", " "),
		strings.Split("red red red red red red red red red red", " "),
	}
	r, err := ScoreVQA([]string{"yes", "2", "blue"}, humans, []string{"yes/no", "number", "other"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Questions != 3 || math.Abs(r.Accuracy-(1+0.9+0)/3) > 1e-12 {
		t.Errorf("overall %+v", r)
	}
	if r.ByAnswerType["yes/no"] != 1 || math.Abs(r.ByAnswerType["number"]-0.9) > 1e-12 || r.ByAnswerType["other"] != 0 {
		t.Errorf("by type %v", r.ByAnswerType)
	}
	if _, err := ScoreVQA([]string{"a"}, nil, nil); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

// vqaOracle is the official evaluation's normalisation and accuracy,
// written from vqaEval.py in Python and run by Python's own re and str.
const vqaOracle = `
import json, re, sys
contractions = {"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
  "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
  "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've",
  "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've",
  "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
  "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
  "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
  "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
  "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
  "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
  "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
  "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
  "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd", "thered've": "there'd've",
  "there'dve": "there'd've", "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
  "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
  "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
  "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've",
  "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
  "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
  "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
  "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
  "youll": "you'll", "youre": "you're", "youve": "you've"}
manualMap = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4', 'five': '5', 'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
articles = ['a', 'an', 'the']
periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
commaStrip = re.compile(r"(\d)(\,)(\d)")
punct = [';', r"/", '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '` + "`" + `', ',', '?', '!']

def processPunctuation(inText):
    outText = inText
    for p in punct:
        if (p + ' ' in inText or ' ' + p in inText) or (re.search(commaStrip, inText) != None):
            outText = outText.replace(p, '')
        else:
            outText = outText.replace(p, ' ')
    outText = periodStrip.sub("", outText, re.UNICODE)
    return outText

def processDigitArticle(inText):
    outText = []
    for word in inText.lower().split():
        word = manualMap.setdefault(word, word)
        if word not in articles:
            outText.append(word)
    for wordId, word in enumerate(outText):
        if word in contractions:
            outText[wordId] = contractions[word]
    return ' '.join(outText)

def accuracy(resAns, answers):
    resAns = resAns.replace('\n', ' ').replace('\t', ' ').strip()
    resAns = processDigitArticle(processPunctuation(resAns))
    gts = [{'answer': a, 'answer_id': i} for i, a in enumerate(answers)]
    if len(set(answers)) > 1:
        for d in gts:
            d['answer'] = processPunctuation(d['answer'])
    acc = []
    for d in gts:
        others = [o for o in gts if o != d]
        acc.append(min(1, float(len([o for o in others if o['answer'] == resAns])) / 3))
    return sum(acc) / len(acc), resAns

out = []
for case in json.load(sys.stdin):
    acc, norm = accuracy(case['pred'], case['humans'])
    out.append({'acc': acc, 'norm': norm})
json.dump(out, sys.stdout)
`

// vqaPieces are the parts generated answers are made of: the cases the
// normalisation treats specially, and plain words.
var vqaPieces = []string{
	"red", "Red", "two", "Two", "2", "ten", "none", "the", "a", "An", "dont", "Im", "somebody'd", "yall'll",
	"1,000", "1.5", "3.", "u.s.", ".5", "yes.", "no!", "what?", "t-shirt", "black & white", "(none)", "?!",
	"a/b", "x=y", "snow_board", "50%", "[1]", "{x}", "<b>", "@home", "`q`", "\"quoted\"", "semi;colon", "back\\slash",
	"café", "٣.٤", "١,٢", "ÉTÉ", "\x1cfs", "\u00a0nbsp", "\u2003em", ".........................................",
}

func randomAnswer(rng *rand.Rand) string {
	var b strings.Builder
	n := 1 + rng.IntN(3)
	for k := 0; k < n; k++ {
		if k > 0 {
			b.WriteString([]string{" ", "  ", "\t", "\n", ""}[rng.IntN(5)])
		}
		b.WriteString(vqaPieces[rng.IntN(len(vqaPieces))])
	}
	if rng.IntN(4) == 0 {
		return " " + b.String() + " "
	}
	return b.String()
}

func TestVQAAccuracyAgainstPython(t *testing.T) {
	type vqaCase struct {
		Pred   string   `json:"pred"`
		Humans []string `json:"humans"`
	}
	rng := rand.New(rand.NewPCG(17, 4))
	var cases []vqaCase
	for i := 0; i < 600; i++ {
		c := vqaCase{Pred: randomAnswer(rng)}
		// Humans drawn from a small pool (so that answers repeat), which
		// sometimes holds the prediction as written or normalised.
		pool := []string{randomAnswer(rng), randomAnswer(rng), c.Pred, downstream.NormalizeAnswer(c.Pred)}
		n := 10
		if i%10 == 0 {
			n = 1 + rng.IntN(12)
		}
		same := i%7 == 0
		for k := 0; k < n; k++ {
			if same {
				c.Humans = append(c.Humans, pool[3])
			} else {
				c.Humans = append(c.Humans, pool[rng.IntN(len(pool))])
			}
		}
		cases = append(cases, c)
	}
	var want []struct {
		Acc  float64 `json:"acc"`
		Norm string  `json:"norm"`
	}
	runOracle(t, vqaOracle, cases, &want)
	if len(want) != len(cases) {
		t.Fatalf("oracle gave %d results for %d cases", len(want), len(cases))
	}
	nonzero := 0
	for i, c := range cases {
		resAns := strings.NewReplacer("\n", " ", "\t", " ").Replace(c.Pred)
		if got := downstream.NormalizeAnswer(resAns); got != want[i].Norm {
			t.Errorf("case %d: NormalizeAnswer(%q) = %q, Python %q", i, c.Pred, got, want[i].Norm)
		}
		got := VQAAccuracy(c.Pred, c.Humans)
		if math.Abs(got-want[i].Acc) > 1e-12 {
			t.Errorf("case %d: VQAAccuracy(%q, %q) = %v, Python %v", i, c.Pred, c.Humans, got, want[i].Acc)
		}
		if want[i].Acc > 0 {
			nonzero++
		}
	}
	// The cases must exercise the counting, not only the zeros.
	if nonzero < len(cases)/4 {
		t.Errorf("only %d of %d cases score above 0: the generator does not test matching", nonzero, len(cases))
	}
}
