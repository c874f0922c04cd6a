package downstream

import (
	"strings"
	"unicode"
)

// The VQA answer normalisation, step for step as the official evaluation
// script (vqaEval.py, VQA v2) does it, quirks included:
//
//   - ProcessPunctuation: each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !
//     is deleted when the answer has it next to a space, or when the answer
//     has a comma between two digits anywhere ("1,000"), and replaced by a
//     space otherwise; both tests look at the answer as given, not as
//     rewritten so far. Then a period not followed by a digit is deleted —
//     at most 32 of them, because the script passes re.UNICODE (32) where
//     re.sub takes its count.
//   - ProcessDigitArticle: lower case, split on white space, number words
//     none, zero … ten to digits, the articles a, an, the dropped, and the
//     script's table of contractions written without an apostrophe
//     restored ("dont" → "don't"), joined by single spaces.
//
// Digits are Unicode decimal digits (Python's \d on str); white space is
// Python's (str.split and str.strip).

// punct is the script's list, in its order (the order matters: a
// replacement by a space can put a later mark next to a space, but the
// tests read the original answer, so it does not change the outcome).
var punct = []string{";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"}

// maxPeriodStrips is re.UNICODE, which the script passes as re.sub's count.
const maxPeriodStrips = 32

var numberWords = map[string]string{
	"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
	"five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

var articles = map[string]bool{"a": true, "an": true, "the": true}

// contractions is the script's table. Its capitalised keys ("Im", "Ive",
// …) never match, since words are lower-cased first; "somebody'd" maps to
// "somebodyd", backwards. Both are kept: the point is to agree with the
// script.
var contractions = map[string]string{
	"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
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
	"youll": "you'll", "youre": "you're", "youve": "you've",
}

// NormalizeAnswer is what the official script does to a predicted answer
// before comparing it: tabs and newlines to spaces, white space trimmed,
// then ProcessPunctuation and ProcessDigitArticle. The answer vocabulary
// and the soft training targets use it on the human answers too.
func NormalizeAnswer(s string) string {
	s = strings.NewReplacer("\n", " ", "\t", " ").Replace(s)
	s = strings.TrimFunc(s, pyIsSpace)
	return ProcessDigitArticle(ProcessPunctuation(s))
}

// ProcessPunctuation is the script's processPunctuation.
func ProcessPunctuation(in string) string {
	cut := hasDigitCommaDigit(in)
	out := in
	for _, p := range punct {
		if cut || strings.Contains(in, p+" ") || strings.Contains(in, " "+p) {
			out = strings.ReplaceAll(out, p, "")
		} else {
			out = strings.ReplaceAll(out, p, " ")
		}
	}
	return stripPeriods(out, maxPeriodStrips)
}

// ProcessDigitArticle is the script's processDigitArticle.
func ProcessDigitArticle(in string) string {
	words := strings.FieldsFunc(pyLower(in), pyIsSpace)
	out := words[:0]
	for _, w := range words {
		if d, ok := numberWords[w]; ok {
			w = d
		}
		if !articles[w] {
			out = append(out, w)
		}
	}
	for i, w := range out {
		if c, ok := contractions[w]; ok {
			out[i] = c
		}
	}
	return strings.Join(out, " ")
}

// hasDigitCommaDigit reports whether s matches (\d)(,)(\d).
func hasDigitCommaDigit(s string) bool {
	rs := []rune(s)
	for i := 1; i+1 < len(rs); i++ {
		if rs[i] == ',' && unicode.IsDigit(rs[i-1]) && unicode.IsDigit(rs[i+1]) {
			return true
		}
	}
	return false
}

// stripPeriods deletes the first max periods not followed by a digit: the
// script's (?!<=\d)(\.)(?!\d), whose first group is a look-ahead for the
// text "<=" and a digit (a look-behind was meant), which never matches
// where a period stands.
func stripPeriods(s string, max int) string {
	if !strings.Contains(s, ".") {
		return s
	}
	rs := []rune(s)
	var b strings.Builder
	n := 0
	for i, r := range rs {
		if r == '.' && n < max && (i+1 == len(rs) || !unicode.IsDigit(rs[i+1])) {
			n++
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pyIsSpace is Python's str.isspace for one character: Go's unicode.IsSpace
// plus the four information separators U+001C–U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyLower is str.lower where it differs from strings.ToLower on the
// characters that matter here: U+0130 (İ) becomes "i̇", two characters.
func pyLower(s string) string {
	if strings.ContainsRune(s, 'İ') {
		s = strings.ReplaceAll(s, "İ", "i\u0307")
	}
	return strings.ToLower(s)
}
