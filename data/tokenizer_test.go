package data

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// testVocab builds a small vocabulary for hand-derived tokenisations.
func testVocab(t *testing.T, extra ...string) *Vocab {
	t.Helper()
	toks := append(append([]string(nil), SpecialTokens...),
		"want", "##want", "##ed", "wa", "un", "runn", "##ing", ",", "a", "##a", "red", "circle", "##s")
	toks = append(toks, extra...)
	v, err := NewVocab(toks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestBasicTokenizer(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"whitespace and case", " \tHeLLo!how  \n Are yoU?  ", []string{"hello", "!", "how", "are", "you", "?"}},
		{"latin-1 accents", "Héllo Ñandú", []string{"hello", "nandu"}},
		{"latin extended-a accents", "Łódź Škoda", []string{"łodz", "skoda"}},
		{"decomposed accent", "cafe\u0301", []string{"cafe"}},
		{"no canonical decomposition", "Øre straße", []string{"øre", "straße"}},
		{"cjk split", "ah博推zz", []string{"ah", "博", "推", "zz"}},
		{"controls dropped", "a\u0000b\u200bc\x07d\ufffde", []string{"abcde"}},
		{"control-like whitespace", "a\u00a0b\u3000c", []string{"a", "b", "c"}},
		{"ascii symbols are punctuation", "a$b^c`d+e", []string{"a", "$", "b", "^", "c", "`", "d", "+", "e"}},
		{"unicode punctuation", "hi¿there—ok", []string{"hi", "¿", "there", "—", "ok"}},
		{"apostrophe and period", "the dog's ball.", []string{"the", "dog", "'", "s", "ball", "."}},
		{"empty", "  \n ", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := BasicTokenizer{Lower: true}.Tokenize(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestWordPiece(t *testing.T) {
	tok := NewTokenizer(testVocab(t))
	cases := []struct {
		name, in string
		want     []string
	}{
		{"longest match first", "UNwant\u00E9d,running", []string{"un", "##want", "##ed", ",", "runn", "##ing"}},
		{"unmatched tail is unk for the whole word", "unwantedX runn", []string{"[UNK]", "runn"}},
		{"unmatched head", "xyz red", []string{"[UNK]", "red"}},
		{"continuation", "circles", []string{"circle", "##s"}},
		{"prefers longer piece", "wanted", []string{"want", "##ed"}},
		{"100 chars is a word", strings.Repeat("a", 100), append([]string{"a"}, repeat("##a", 99)...)},
		{"101 chars is unk", strings.Repeat("a", 101) + " red", []string{"[UNK]", "red"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Tokenize(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestEncode(t *testing.T) {
	v := testVocab(t)
	tok := NewTokenizer(v)
	id := func(s string) int64 {
		i, ok := v.ID(s)
		if !ok {
			t.Fatalf("%q not in vocab", s)
		}
		return i
	}
	cases := []struct {
		in     string
		maxLen int
		want   []int64
	}{
		{"unwanted running", 16, []int64{v.CLSID, id("un"), id("##want"), id("##ed"), id("runn"), id("##ing"), v.SEPID}},
		{"unwanted running", 4, []int64{v.CLSID, id("un"), id("##want"), v.SEPID}},
		{"unwanted running", 2, []int64{v.CLSID, v.SEPID}},
		{"", 8, []int64{v.CLSID, v.SEPID}},
		{"red zzz", 8, []int64{v.CLSID, id("red"), v.UNKID, v.SEPID}},
	}
	for _, tc := range cases {
		got, err := tok.Encode(tc.in, tc.maxLen)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Encode(%q, %d) = %v, want %v", tc.in, tc.maxLen, got, tc.want)
		}
	}
	if _, err := tok.Encode("x", 1); !errors.Is(err, ErrMaxLen) {
		t.Fatalf("Encode maxLen 1: err = %v, want ErrMaxLen", err)
	}
}

func TestVocabFile(t *testing.T) {
	// BERT's layout: [PAD] first, [unusedN], then [UNK] [CLS] [SEP] [MASK] at 100–103.
	var sb strings.Builder
	sb.WriteString("[PAD]\n")
	for i := 0; i < 99; i++ {
		sb.WriteString("[unused" + itoa(i) + "]\n")
	}
	sb.WriteString("[UNK]\r\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\n")
	v, err := ReadVocab(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if v.PadID != 0 || v.UNKID != 100 || v.CLSID != 101 || v.SEPID != 102 || v.MaskID != 103 {
		t.Fatalf("special ids %d %d %d %d %d, want 0 100 101 102 103", v.PadID, v.UNKID, v.CLSID, v.SEPID, v.MaskID)
	}
	if got := v.NormalIDs(); !reflect.DeepEqual(got, []int64{104, 105}) {
		t.Fatalf("NormalIDs = %v, want [104 105]", got)
	}
	var buf bytes.Buffer
	if _, err := v.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	v2, err := ReadVocab(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v.Tokens(), v2.Tokens()) {
		t.Fatal("vocabulary changed after a write/read round trip")
	}

	bad := []struct {
		name, text string
		want       error
	}{
		{"missing mask", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n", ErrMissingSpecial},
		{"duplicate", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nthe\n", ErrDuplicateToken},
		{"empty line", "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n", ErrEmptyToken},
	}
	for _, tc := range bad {
		if _, err := ReadVocab(strings.NewReader(tc.text)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
