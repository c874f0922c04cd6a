package eval

import (
	"strings"

	"github.com/e2evlp/vlp/data"
)

// Detokenize joins WordPiece tokens back into words ("##" pieces glue to
// the word before).
func Detokenize(v *data.Vocab, ids []int64) string {
	var sb strings.Builder
	for _, id := range ids {
		t := v.Token(id)
		if rest, ok := strings.CutPrefix(t, "##"); ok {
			sb.WriteString(rest)
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(t)
	}
	return sb.String()
}
