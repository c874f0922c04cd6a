package downstream

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// text is a JSON string decoded strictly: encoding/json replaces invalid
// UTF-8 and lone surrogate escapes with U+FFFD without a word, and a text
// that is kept must never be rewritten silently, so text remembers that
// the original was invalid. null decodes as "".
type text struct {
	S   string
	Bad bool // invalid UTF-8 or a lone surrogate escape in the original
}

var stringType = reflect.TypeOf("")

// UnmarshalJSON decodes a JSON string or null; b has been checked by
// encoding/json.
func (t *text) UnmarshalJSON(b []byte) error {
	*t = text{}
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' {
		return &json.UnmarshalTypeError{Value: "non-string", Type: stringType}
	}
	inner := b[1 : len(b)-1]
	t.Bad = !utf8.Valid(inner) || loneSurrogate(inner)
	return json.Unmarshal(b, &t.S)
}

// loneSurrogate reports whether the string body b has a \u escape of a
// surrogate that is not half of a pair.
func loneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if i+4 >= len(b) || b[i] != 'u' {
			continue
		}
		r := hex4(b[i+1 : i+5])
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
			if utf16.DecodeRune(r, hex4(b[i+3:i+7])) != utf8.RuneError {
				i += 6
				continue
			}
		}
		return true
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

// checkText returns the skip reason of a text that cannot be kept as it
// is, and what is wrong; "" when it can. Empty texts pass: the caller
// decides whether empty is allowed.
func checkText(t text, maxBytes int) (reason, detail string) {
	switch {
	case t.Bad:
		return SkipTextInvalidUTF8, "invalid UTF-8"
	case len(t.S) > maxBytes:
		return SkipTextTooLong, fmt.Sprintf("text of %d bytes exceeds the %d-byte limit", len(t.S), maxBytes)
	}
	return "", ""
}

// cleanText is what happens to a question, statement or caption: white
// space runs collapse to one space and the ends are trimmed, as the shard
// importer does; invalid, over-long and empty texts are refused.
func cleanText(t text, maxBytes int) (s, reason, detail string) {
	if reason, detail := checkText(t, maxBytes); reason != "" {
		return "", reason, detail
	}
	s = strings.Join(strings.Fields(t.S), " ")
	if s == "" {
		return "", SkipTextEmpty, "empty after trimming white space"
	}
	return s, "", ""
}
