package data

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// bertOracle is BERT's uncased tokenizer written out from its published
// description (Devlin et al. 2019, and the tokenization notes of the BERT
// release) on top of Python's unicodedata: clean text, CJK spacing,
// whitespace split, lower case + NFD + drop Mn, punctuation split, greedy
// longest-match-first WordPiece with "##" and a 100-character limit.
const bertOracle = `
import json, sys, unicodedata
vocab = set(l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8") if l.strip())
def is_ws(c): return c in " \t\n\r" or unicodedata.category(c) == "Zs"
def is_ctrl(c): return c not in "\t\n\r" and unicodedata.category(c).startswith("C")
def is_punct(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or unicodedata.category(c).startswith("P")
def is_cjk(o):
    return any(a <= o <= b for a, b in [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)])
def basic(text):
    out = []
    for c in text:
        o = ord(c)
        if o == 0 or o == 0xFFFD or is_ctrl(c): continue
        if is_ws(c): out.append(" ")
        elif is_cjk(o): out += [" ", c, " "]
        else: out.append(c)
    toks = []
    for t in "".join(out).split():
        t = "".join(c for c in unicodedata.normalize("NFD", t.lower()) if unicodedata.category(c) != "Mn")
        cur = ""
        for c in t:
            if is_punct(c):
                if cur: toks.append(cur)
                toks.append(c); cur = ""
            else: cur += c
        if cur: toks.append(cur)
    return toks
def wordpiece(w):
    if len(w) > 100: return ["[UNK]"]
    out, start = [], 0
    while start < len(w):
        end, found = len(w), None
        while end > start:
            p = w[start:end] if start == 0 else "##" + w[start:end]
            if p in vocab: found = p; break
            end -= 1
        if found is None: return ["[UNK]"]
        out.append(found); start = end
    return out
for line in open(sys.argv[2], encoding="utf-8"):
    print(json.dumps([p for w in basic(json.loads(line)) for p in wordpiece(w)]))
`

func TestTokenizerMatchesBERTOracle(t *testing.T) {
	py := os.Getenv("VLP_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	// Characters whose Unicode properties have been stable for decades, so
	// Go's and Python's tables agree. Precomposed letters come only from
	// Latin-1 and Latin Extended-A (see accents.go).
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
		" \t\n\r\u00a0\u3000\u2003" + // whitespace
		"\x00\x07\x1b\u200b\ufeff\u00ad\ufffd" + // dropped
		"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…·" + // punctuation
		"€£©®°±×÷" + // symbols: not punctuation, kept inside words
		"àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÉÎÕÜÇÑßæøðþĀāĆčĎđĘěĞğİıĳĽłŃňŐœŘśŞšŢťŮűŸŹżž" +
		"\u0300\u0301\u0308\u0327" + // combining marks
		"中文字博推日本")
	words := []string{"the", "red", "circle", "##s", "un", "##want", "##ed", "cafe", "##e", "a", "##a", "b", "##b",
		"straße", "øre", "中", "文", "naive", "##ly", "l", "##o", "##d", "##z", "lodz"}
	toks := append(append([]string(nil), SpecialTokens...), words...)
	for _, r := range "abcdefghijklmnopqrstuvwxyz0123456789" {
		toks = append(toks, string(r))
		if r%3 == 0 {
			toks = append(toks, "##"+string(r))
		}
	}
	v, err := NewVocab(dedupe(toks))
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for i := 0; i < 400; i++ {
		var sb strings.Builder
		n := 1 + int(mix64(uint64(i))%40)
		for k := 0; k < n; k++ {
			h := mix64(uint64(i)*1000 + uint64(k))
			if h%5 == 0 { // whole words, so WordPiece finds matches too
				sb.WriteString(words[h/5%uint64(len(words))])
				continue
			}
			sb.WriteRune(alphabet[h/5%uint64(len(alphabet))])
		}
		inputs = append(inputs, sb.String())
	}
	inputs = append(inputs, strings.Repeat("a", 100), strings.Repeat("b", 101), "UNwant\u00e9d,running", "Łódź", "")

	dir := t.TempDir()
	var vb strings.Builder
	for _, tk := range v.Tokens() {
		vb.WriteString(tk + "\n")
	}
	var ib strings.Builder
	for _, s := range inputs {
		js, _ := json.Marshal(s)
		ib.Write(append(js, '\n'))
	}
	files := map[string]string{"oracle.py": bertOracle, "vocab.txt": vb.String(), "in.jsonl": ib.String()}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, filepath.Join(dir, "oracle.py"), filepath.Join(dir, "vocab.txt"), filepath.Join(dir, "in.jsonl")).Output()
	if err != nil {
		t.Fatalf("oracle (%s; set VLP_PYTHON): %v", py, err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("oracle answered %d lines for %d inputs", len(lines), len(inputs))
	}
	tok := NewTokenizer(v)
	unk := 0
	for i, s := range inputs {
		var want []string
		if err := json.Unmarshal([]byte(lines[i]), &want); err != nil {
			t.Fatal(err)
		}
		got := tok.Tokenize(s)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q:\n go     %q\n oracle %q", s, got, want)
		}
		for _, p := range got {
			if p == UNKToken {
				unk++
			}
		}
	}
	t.Logf("%d inputs agree with the oracle (%d [UNK] pieces among them)", len(inputs), unk)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
