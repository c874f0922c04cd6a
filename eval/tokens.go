package eval

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/e2evlp/vlp/data"
)

// CaptionTokens is the tokenisation of every caption metric (BLEU,
// CIDEr-D), for generated captions and references alike: BERT's basic
// tokenizer (lower case, accents stripped, every punctuation character a
// token of its own; data.BasicTokenizer) with the punctuation tokens then
// dropped. coco-caption runs Stanford's PTB tokenizer and drops
// punctuation the same way; the two differ on clitics ("don't" is "don",
// "t" here, "do", "n't" there), which the shapes world's captions never
// have.
func CaptionTokens(s string) []string {
	var out []string
	for _, t := range (data.BasicTokenizer{Lower: true}).Tokenize(s) {
		if r, n := utf8.DecodeRuneInString(t); n == len(t) && !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			continue // a punctuation character or symbol
		}
		out = append(out, t)
	}
	return out
}

// ngramCounts counts the 1- to n-grams of tokens, each gram its tokens
// joined by a space (tokens hold no space, so grams of different lengths
// never collide).
func ngramCounts(tokens []string, n int) map[string]int {
	c := map[string]int{}
	for k := 1; k <= n; k++ {
		for i := 0; i+k <= len(tokens); i++ {
			c[strings.Join(tokens[i:i+k], " ")]++
		}
	}
	return c
}

// gramLen is the number of tokens of a gram made by ngramCounts.
func gramLen(g string) int { return strings.Count(g, " ") + 1 }
