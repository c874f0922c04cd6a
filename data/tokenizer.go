package data

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxWordChars is BERT's limit on a word's length in characters: a longer
// word becomes a single [UNK].
const MaxWordChars = 100

// ErrMaxLen: Encode was asked for fewer than 2 positions ([CLS] and [SEP]).
var ErrMaxLen = errors.New("data: maxLen must be at least 2")

// Tokenizer is BERT's uncased WordPiece tokenizer: BasicTokenizer, then a
// greedy longest-match-first split of every word into vocabulary pieces,
// continuations prefixed with "##". A word with a part that matches nothing,
// or longer than MaxWordChars characters, becomes a single [UNK]. A
// Tokenizer is immutable and safe for concurrent use.
type Tokenizer struct {
	vocab *Vocab
	basic BasicTokenizer
}

// NewTokenizer returns an uncased tokenizer over vocab.
func NewTokenizer(vocab *Vocab) *Tokenizer {
	return &Tokenizer{vocab: vocab, basic: BasicTokenizer{Lower: true}}
}

// Vocab returns the tokenizer's vocabulary.
func (t *Tokenizer) Vocab() *Vocab { return t.vocab }

// Tokenize returns the WordPiece tokens of text (no [CLS]/[SEP]).
func (t *Tokenizer) Tokenize(text string) []string {
	var out []string
	for _, w := range t.basic.Tokenize(text) {
		out = t.appendWordPieces(out, w)
	}
	return out
}

// IDs returns the ids of Tokenize(text).
func (t *Tokenizer) IDs(text string) []int64 {
	toks := t.Tokenize(text)
	ids := make([]int64, len(toks))
	for i, tok := range toks {
		ids[i] = t.vocab.ids[tok] // every piece came from the vocabulary
	}
	return ids
}

// Encode returns `[CLS] ids… [SEP]`, with the word pieces truncated so that
// the whole sequence is at most maxLen ids.
func (t *Tokenizer) Encode(text string, maxLen int) ([]int64, error) {
	if maxLen < 2 {
		return nil, fmt.Errorf("%w, got %d", ErrMaxLen, maxLen)
	}
	ids := t.IDs(text)
	if len(ids) > maxLen-2 {
		ids = ids[:maxLen-2]
	}
	out := make([]int64, 0, len(ids)+2)
	out = append(out, t.vocab.CLSID)
	out = append(out, ids...)
	return append(out, t.vocab.SEPID), nil
}

// appendWordPieces appends the WordPiece split of one basic token.
func (t *Tokenizer) appendWordPieces(out []string, word string) []string {
	if utf8.RuneCountInString(word) > MaxWordChars {
		return append(out, UNKToken)
	}
	mark := len(out)
	for start := 0; start < len(word); {
		end := len(word)
		found := ""
		for end > start {
			piece := word[start:end]
			if start > 0 {
				piece = "##" + piece
			}
			if _, ok := t.vocab.ids[piece]; ok {
				found = piece
				break
			}
			// step back one whole character
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if found == "" {
			return append(out[:mark], UNKToken)
		}
		out = append(out, found)
		start = end
	}
	return out
}
