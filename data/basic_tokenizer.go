package data

import (
	"strings"
	"unicode"
)

// BasicTokenizer is the first stage of BERT's tokenizer: it cleans the text,
// puts spaces around CJK characters, lower-cases and strips accents (when
// Lower is set, the "uncased" models), splits on whitespace and splits every
// punctuation character into its own token. It is stateless and safe for
// concurrent use.
type BasicTokenizer struct {
	Lower bool // lower-case and strip accents (BERT uncased)
}

// Tokenize splits text into words and punctuation, in BERT's order:
// clean, CJK spacing, whitespace split, then per token lower-case, accent
// stripping and punctuation split.
func (b BasicTokenizer) Tokenize(text string) []string {
	var sb strings.Builder
	sb.Grow(len(text) + 8)
	for _, r := range text {
		switch {
		case r == 0 || r == 0xFFFD || isControl(r):
			// dropped, as BERT's _clean_text does
		case isWhitespace(r):
			sb.WriteByte(' ')
		case isCJK(r):
			sb.WriteByte(' ')
			sb.WriteRune(r)
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	var out []string
	for _, tok := range strings.Fields(sb.String()) {
		if b.Lower {
			tok = lowerStrip(tok)
		}
		out = splitPunct(out, tok)
	}
	return out
}

// lowerStrip lower-cases tok and removes its accents.
func lowerStrip(tok string) string {
	tok = strings.ToLower(tok)
	var sb strings.Builder
	sb.Grow(len(tok))
	for _, r := range tok {
		if s, keep := stripAccent(r); keep {
			sb.WriteRune(s)
		}
	}
	return sb.String()
}

// splitPunct appends the pieces of tok to out: every punctuation character
// alone, the runs between them together.
func splitPunct(out []string, tok string) []string {
	start := 0
	for i, r := range tok {
		if isPunct(r) {
			if i > start {
				out = append(out, tok[start:i])
			}
			n := len(string(r))
			out = append(out, tok[i:i+n])
			start = i + n
		}
	}
	if start < len(tok) {
		out = append(out, tok[start:])
	}
	return out
}

// isWhitespace is BERT's definition: space, tab, newline, carriage return and
// the Unicode space separators (Zs).
func isWhitespace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}

// isControl is BERT's definition: the Unicode "C" categories except tab,
// newline and carriage return (which count as whitespace). Go's tables have
// no entry for unassigned code points (Cn), so those are kept.
func isControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// isPunct is BERT's definition: every non-letter, non-digit ASCII printable
// character (33–47, 58–64, 91–96, 123–126, so "$", "+", "^" and "`" count)
// plus the Unicode punctuation categories (P*).
func isPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return unicode.IsPunct(r)
}

// isCJK reports whether r is in the CJK Unified Ideographs blocks BERT
// splits into single characters (Hiragana, Katakana and Hangul are not).
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
