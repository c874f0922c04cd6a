package data

import (
	"errors"
	"reflect"
	"testing"

	"github.com/e2evlp/vlp/synth"
)

func TestBuildVocabMerges(t *testing.T) {
	// Hand-derived: words ab×3, ac×1. Units a(4) ##b(3) ##c(1).
	// Scores: (a,##b) 3/(4·3)=0.25, (a,##c) 1/(4·1)=0.25: a tie, the more
	// frequent pair wins → "ab". Then units ab(3) a(1) ##c(1):
	// (a,##c) 1/(1·1)=1 → "ac".
	texts := []string{"ab ab", "AB", "ac"}
	want := append(append([]string(nil), SpecialTokens...), "##b", "##c", "a", "ab", "ac")
	v, err := BuildVocab(texts, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Tokens(), want) {
		t.Fatalf("vocab %q, want %q", v.Tokens(), want)
	}
	v, err = BuildVocab(texts, 9)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Tokens(), want[:9]) {
		t.Fatalf("size 9: vocab %q, want %q", v.Tokens(), want[:9])
	}
	if _, err := BuildVocab(texts, 7); !errors.Is(err, ErrVocabSize) {
		t.Fatalf("size 7: err = %v, want ErrVocabSize", err)
	}
}

func TestBuildVocabCoversAndIsDeterministic(t *testing.T) {
	var texts []string
	cfg := synth.Config{Seed: 2, Images: 60}
	for i := 0; i < cfg.Images; i++ {
		p := synth.Scene(cfg, i)
		texts = append(texts, p.Captions...)
		for _, r := range p.Regions {
			texts = append(texts, r.Text)
		}
	}
	texts = append(texts, "Naïve café-goers, ÉLAN: 42 zebras!")
	for _, size := range []int{60, 120, 400} {
		v, err := BuildVocab(texts, size)
		if err != nil {
			t.Fatal(err)
		}
		if v.Size() > size {
			t.Fatalf("size %d > %d", v.Size(), size)
		}
		tok := NewTokenizer(v)
		for _, s := range texts {
			for _, p := range tok.Tokenize(s) {
				if p == UNKToken {
					t.Fatalf("size %d: %q has an [UNK]: %q", size, s, tok.Tokenize(s))
				}
			}
		}
		// Reversed input order: the same vocabulary.
		rev := make([]string, len(texts))
		for i, s := range texts {
			rev[len(texts)-1-i] = s
		}
		v2, err := BuildVocab(rev, size)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.Tokens(), v2.Tokens()) {
			t.Fatalf("size %d: vocabulary depends on input order", size)
		}
	}
	// A large enough vocabulary holds every training word whole.
	v, _ := BuildVocab(texts, 400)
	if got := NewTokenizer(v).Tokenize("a small red circle left of a large blue square"); len(got) != 10 {
		t.Fatalf("whole words expected, got %q", got)
	}
}
