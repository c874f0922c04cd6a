package sharding

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonText is a JSON string decoded strictly. encoding/json replaces
// invalid UTF-8 and lone surrogate escapes with U+FFFD without a word; a
// text that is written into a shard must never be rewritten silently, so
// jsonText keeps the bytes as they are and says where the first bad one is.
type jsonText struct {
	S   string // the decoded bytes (invalid sequences kept as they are)
	Bad int    // byte offset in S of the first invalid UTF-8 sequence + 1; 0 when valid
}

var textType = reflect.TypeOf("")

// UnmarshalJSON decodes a JSON string (or null, as ""). b is a whole value
// that encoding/json has already checked.
func (t *jsonText) UnmarshalJSON(b []byte) error {
	*t = jsonText{}
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: textType}
	}
	b = b[1 : len(b)-1]
	var out []byte
	if !hasEscape(b) {
		out = b
	} else {
		out = make([]byte, 0, len(b))
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c != '\\' {
				out = append(out, c)
				continue
			}
			i++
			switch b[i] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(b[i+1 : i+5])
				i += 4
				if utf16.IsSurrogate(r) {
					if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
						if r2 := hex4(b[i+3 : i+7]); utf16.DecodeRune(r, r2) != utf8.RuneError {
							out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
							i += 6
							continue
						}
					}
					// A lone surrogate encodes no character: keep its escape as
					// text and mark it invalid.
					if t.Bad == 0 {
						t.Bad = len(out) + 1
					}
					out = append(out, b[i-5:i+1]...)
					continue
				}
				out = utf8.AppendRune(out, r)
			default: // '"', '\\', '/'
				out = append(out, b[i])
			}
		}
	}
	t.S = string(out)
	if t.Bad == 0 && !utf8.Valid(out) {
		t.Bad = firstInvalid(out) + 1
	} else if t.Bad != 0 {
		if k := firstInvalid(out); k < t.Bad-1 {
			t.Bad = k + 1
		}
	}
	return nil
}

// DecodeJSONText decodes one JSON string value b (null decodes as "") strictly, as the importer
// reads texts: invalid UTF-8 and lone surrogate escapes are kept as they are, not replaced, and bad
// is the byte offset in s of the first invalid sequence + 1 (0 when s is valid). The other
// importers (package downstream) read their texts through it.
func DecodeJSONText(b []byte) (s string, bad int, err error) {
	var t jsonText
	err = t.UnmarshalJSON(b)
	return t.S, t.Bad, err
}

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// firstInvalid returns the offset of the first invalid UTF-8 sequence in b,
// or len(b).
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func jsonKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "nothing"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	default:
		return "number"
	}
}

// cleanText is what happens to every caption and region phrase: white
// space runs collapse to one space and the ends are trimmed. It returns the
// text, or the skip reason and what is wrong with it. Invalid UTF-8 is
// never repaired; a text longer than maxBytes (after cleaning) is skipped,
// never cut.
func cleanText(t jsonText, maxBytes int) (text, reason, detail string) {
	if t.Bad != 0 {
		return "", SkipTextInvalidUTF8, fmt.Sprintf("invalid UTF-8 at byte %d of the text", t.Bad-1)
	}
	// Count first: a huge text is rejected without building its cleaned copy.
	if n := cleanLen(t.S); n > maxBytes {
		return "", SkipTextTooLong, fmt.Sprintf("text of %d bytes exceeds the %d-byte limit", n, maxBytes)
	}
	text = strings.Join(strings.Fields(t.S), " ")
	if text == "" {
		return "", SkipTextEmpty, "empty after trimming white space"
	}
	return text, "", ""
}

// cleanLen is len(strings.Join(strings.Fields(s), " ")) without building it.
func cleanLen(s string) int {
	n, words := 0, 0
	for w := range strings.FieldsSeq(s) {
		n += len(w)
		words++
	}
	if words > 1 {
		n += words - 1
	}
	return n
}
