package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/data"
)

func runVocabCLI(t *testing.T, bin string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	return out.String(), err == nil
}

func TestVocabBuild(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	lines := "A man riding a horse on the beach.\nTwo dogs playing with a red frisbee\n\nA plate of food, with broccoli!\n"
	coco := `{"info": {"year": 2017}, "images": [{"id": 1}], "annotations": [
		{"image_id": 1, "id": 10, "caption": "A giraffe standing next to a tall tree."},
		{"image_id": 1, "id": 11, "caption": "Élan of zebras near the water"}]}`
	txt, js := filepath.Join(dir, "caps.txt"), filepath.Join(dir, "captions_train2017.json")
	if err := os.WriteFile(txt, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(js, []byte(coco), 0o644); err != nil {
		t.Fatal(err)
	}
	var first []byte
	for run := 0; run < 2; run++ {
		out := filepath.Join(dir, "vocab"+string(rune('a'+run))+".txt")
		msg, ok := runVocabCLI(t, bin, "vocab", "build", "--captions", txt, "--captions", js, "--size", "120", "--out", out)
		if !ok {
			t.Fatalf("vocab build failed:\n%s", msg)
		}
		if !strings.Contains(msg, "5 texts") {
			t.Fatalf("summary %q does not count 5 texts", msg)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			first = raw
		} else if !bytes.Equal(first, raw) {
			t.Fatal("two runs wrote different vocabularies")
		}
	}
	v, err := data.LoadVocab(filepath.Join(dir, "vocaba.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Size() > 120 || v.PadID != 0 || v.UNKID != 1 || v.CLSID != 2 || v.SEPID != 3 || v.MaskID != 4 {
		t.Fatalf("size %d, specials %d %d %d %d %d", v.Size(), v.PadID, v.UNKID, v.CLSID, v.SEPID, v.MaskID)
	}
	tok := data.NewTokenizer(v)
	for _, s := range append(strings.Split(lines, "\n"), "A giraffe standing next to a tall tree.", "Élan of zebras near the water") {
		for _, p := range tok.Tokenize(s) {
			if p == data.UNKToken {
				t.Fatalf("%q → %q has [UNK]", s, tok.Tokenize(s))
			}
		}
	}

	// Bad input: clear messages, non-zero exit.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"annotations": [{"caption": "ok"}, {"caption": 7}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vocab", "build", "--out", filepath.Join(dir, "x.txt")}, "--captions"},
		{[]string{"vocab", "build", "--captions", bad, "--out", filepath.Join(dir, "x.txt")}, "bad.json: byte"},
		{[]string{"vocab", "build", "--captions", filepath.Join(dir, "missing.txt"), "--out", filepath.Join(dir, "x.txt")}, "missing.txt"},
		{[]string{"vocab", "build", "--captions", txt, "--size", "10", "--out", filepath.Join(dir, "x.txt")}, "too small"},
	} {
		msg, ok := runVocabCLI(t, bin, tc.args...)
		if ok || !strings.Contains(msg, tc.want) {
			t.Errorf("%v: ok=%v, output %q, want failure mentioning %q", tc.args, ok, msg, tc.want)
		}
	}
}

func TestVocabBuildFromShards(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	src, shards := filepath.Join(dir, "src"), filepath.Join(dir, "shards")
	if msg, ok := runVocabCLI(t, bin, "data", "synth", "--out", src, "--images", "40", "--seed", "5", "--width", "48", "--height", "48"); !ok {
		t.Fatalf("data synth: %s", msg)
	}
	if msg, ok := runVocabCLI(t, bin, "shard", "build", "--coco", filepath.Join(src, "coco"), "--vg", filepath.Join(src, "vg"), "--out", shards, "--workers", "2"); !ok {
		t.Fatalf("shard build: %s", msg)
	}
	out := filepath.Join(dir, "vocab.txt")
	if msg, ok := runVocabCLI(t, bin, "vocab", "build", "--shards", shards, "--size", "200", "--out", out); !ok {
		t.Fatalf("vocab build: %s", msg)
	}
	v, err := data.LoadVocab(out)
	if err != nil {
		t.Fatal(err)
	}
	// The shapes world's words are all frequent: each is one token.
	tok := data.NewTokenizer(v)
	if got := tok.Tokenize("a small red circle left of a large blue square"); len(got) != 10 {
		t.Fatalf("tokenised into %q, want the 10 words whole", got)
	}
}
