package downstream

import (
	"fmt"
	"strings"

	"github.com/e2evlp/vlp/sharding"
)

// text is a JSON string decoded strictly (sharding.DecodeJSONText): encoding/json replaces invalid
// UTF-8 and lone surrogate escapes with U+FFFD without a word, and a text that is kept must never
// be rewritten silently, so text remembers that the original was invalid. null decodes as "".
type text struct {
	S   string
	Bad bool // invalid UTF-8 or a lone surrogate escape in the original
}

// UnmarshalJSON decodes a JSON string or null; b has been checked by encoding/json.
func (t *text) UnmarshalJSON(b []byte) error {
	s, bad, err := sharding.DecodeJSONText(b)
	if err != nil {
		return err
	}
	*t = text{S: s, Bad: bad != 0}
	return nil
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
