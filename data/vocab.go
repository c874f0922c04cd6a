package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// The special tokens every vocabulary must hold, spelled as in BERT's
// vocab.txt. A vocabulary built by BuildVocab lists them first, in this
// order, so [PAD] is id 0 as in BERT; BERT's own file has [PAD]=0, [UNK]=100,
// [CLS]=101, [SEP]=102, [MASK]=103. Ids are always looked up by name.
const (
	PadToken  = "[PAD]"
	UNKToken  = "[UNK]"
	CLSToken  = "[CLS]"
	SEPToken  = "[SEP]"
	MaskToken = "[MASK]"
)

// SpecialTokens lists the special tokens in the order BuildVocab writes them.
var SpecialTokens = []string{PadToken, UNKToken, CLSToken, SEPToken, MaskToken}

// Vocabulary errors.
var (
	// ErrMissingSpecial: a vocabulary lacks one of SpecialTokens.
	ErrMissingSpecial = errors.New("data: vocabulary lacks a special token")
	// ErrDuplicateToken: a token appears twice in a vocabulary file.
	ErrDuplicateToken = errors.New("data: duplicate token in vocabulary")
	// ErrEmptyToken: a vocabulary file has an empty line.
	ErrEmptyToken = errors.New("data: empty token in vocabulary")
)

// Vocab maps WordPiece tokens to ids and back, in the format of BERT's
// vocab.txt: one token per line, the id is the line number (from 0), word
// continuations are prefixed with "##". A Vocab is immutable and safe for
// concurrent use.
type Vocab struct {
	tokens []string
	ids    map[string]int64

	PadID, UNKID, CLSID, SEPID, MaskID int64

	// normal lists the ids that are not special or bracketed ([unused7]…):
	// the pool MLM draws its random replacement tokens from.
	normal []int64
}

// NewVocab builds a Vocab from tokens in id order. It fails if a token is
// empty or repeated, or a special token is missing.
func NewVocab(tokens []string) (*Vocab, error) {
	v := &Vocab{tokens: append([]string(nil), tokens...), ids: make(map[string]int64, len(tokens))}
	for i, t := range v.tokens {
		if t == "" {
			return nil, fmt.Errorf("%w: line %d", ErrEmptyToken, i+1)
		}
		if _, dup := v.ids[t]; dup {
			return nil, fmt.Errorf("%w: %q on line %d", ErrDuplicateToken, t, i+1)
		}
		v.ids[t] = int64(i)
	}
	for _, sp := range []struct {
		name string
		dst  *int64
	}{{PadToken, &v.PadID}, {UNKToken, &v.UNKID}, {CLSToken, &v.CLSID}, {SEPToken, &v.SEPID}, {MaskToken, &v.MaskID}} {
		id, ok := v.ids[sp.name]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrMissingSpecial, sp.name)
		}
		*sp.dst = id
	}
	for i, t := range v.tokens {
		if len(t) > 2 && t[0] == '[' && t[len(t)-1] == ']' {
			continue
		}
		v.normal = append(v.normal, int64(i))
	}
	return v, nil
}

// ReadVocab reads a vocab.txt: one token per line, trailing whitespace
// (including "\r") trimmed, as BERT's loader does.
func ReadVocab(r io.Reader) (*Vocab, error) {
	var tokens []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		tokens = append(tokens, strings.TrimRight(sc.Text(), " \t\r\n"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("data: read vocabulary: %w", err)
	}
	// A final empty line is a trailing newline, not a token.
	for len(tokens) > 0 && tokens[len(tokens)-1] == "" {
		tokens = tokens[:len(tokens)-1]
	}
	return NewVocab(tokens)
}

// LoadVocab reads a vocab.txt file.
func LoadVocab(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	v, err := ReadVocab(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// WriteTo writes the vocabulary in vocab.txt format.
func (v *Vocab) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	for _, t := range v.tokens {
		k, err := bw.WriteString(t + "\n")
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// Save writes the vocabulary to path (via a temporary file and a rename, so a
// reader never sees half a file).
func (v *Vocab) Save(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := v.WriteTo(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("data: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data: write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// Size is the number of tokens.
func (v *Vocab) Size() int { return len(v.tokens) }

// ID returns the id of token and whether it is in the vocabulary.
func (v *Vocab) ID(token string) (int64, bool) {
	id, ok := v.ids[token]
	return id, ok
}

// Token returns the token with the given id, or [UNK] if id is out of range.
func (v *Vocab) Token(id int64) string {
	if id < 0 || id >= int64(len(v.tokens)) {
		return UNKToken
	}
	return v.tokens[id]
}

// Tokens returns a copy of the tokens in id order.
func (v *Vocab) Tokens() []string { return append([]string(nil), v.tokens...) }

// IsSpecial reports whether id is [PAD], [UNK], [CLS], [SEP] or [MASK].
func (v *Vocab) IsSpecial(id int64) bool {
	return id == v.PadID || id == v.UNKID || id == v.CLSID || id == v.SEPID || id == v.MaskID
}

// NormalIDs returns the ids of ordinary (non-bracketed) tokens, the pool that
// MLM's random replacement draws from. The slice must not be modified.
func (v *Vocab) NormalIDs() []int64 { return v.normal }
