package eval

import (
	"testing"

	"github.com/e2evlp/vlp/data"
)

func TestDetokenize(t *testing.T) {
	v, err := data.NewVocab([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "sq", "##uare"})
	if err != nil {
		t.Fatal(err)
	}
	if got := Detokenize(v, []int64{5, 6, 7, 8}); got != "a red square" {
		t.Fatalf("Detokenize = %q", got)
	}
}
