package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDownstreamCommands(t *testing.T) {
	bin := testBinary(t)
	out := filepath.Join(t.TempDir(), "ft") // does not exist yet: the command makes it
	stdout, stderr, ok := runVLP(t, bin, "downstream", "synth", "--out", out, "--images", "40", "--width", "48", "--height", "48", "--workers", "2")
	if !ok {
		t.Fatalf("synth failed: %s", stderr)
	}
	for _, want := range []string{"vqa: train2014 32 images, 160 questions", "nlvr2/train.json: 4 sets, 32 examples", "test 4 images; 200 sentences"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("synth output lacks %q:\n%s", want, stdout)
		}
	}
	records := filepath.Join(t.TempDir(), "records.json")
	runs := map[string][]string{
		"vqa": {"--questions", filepath.Join(out, "vqa", "v2_OpenEnded_mscoco_val2014_questions.json"),
			"--annotations", filepath.Join(out, "vqa", "v2_mscoco_val2014_annotations.json"), "--images", filepath.Join(out, "vqa", "val2014")},
		"nlvr2":    {"--file", filepath.Join(out, "nlvr2", "dev.json"), "--images", filepath.Join(out, "nlvr2", "images", "dev")},
		"karpathy": {"--file", filepath.Join(out, "karpathy", "dataset_coco.json"), "--images", filepath.Join(out, "karpathy")},
	}
	wantUsable := map[string]string{"vqa": "usable: 40 questions of val2014", "nlvr2": "usable: 8 examples", "karpathy": "usable: 40 images of coco"}
	for task, args := range runs {
		stdout, stderr, ok := runVLP(t, bin, append([]string{"downstream", "import", "--task", task, "--records", records}, args...)...)
		if !ok {
			t.Fatalf("%s import failed: %s", task, stderr)
		}
		if !strings.Contains(stdout, "skipped: nothing") || !strings.Contains(stdout, wantUsable[task]) {
			t.Errorf("%s import output:\n%s", task, stdout)
		}
		data, err := os.ReadFile(records)
		if err != nil || !json.Valid(data) {
			t.Errorf("%s: records file: %v", task, err)
		}
	}
	// A missing image is reported, not fatal.
	if err := os.Remove(filepath.Join(out, "nlvr2", "images", "dev", "dev-4-0-img1.png")); err != nil {
		t.Fatal(err)
	}
	stdout, _, ok = runVLP(t, bin, "downstream", "import", "--task", "nlvr2", "--file", filepath.Join(out, "nlvr2", "dev.json"), "--images", filepath.Join(out, "nlvr2", "images", "dev"))
	if !ok || !strings.Contains(stdout, "image_unusable") || !strings.Contains(stdout, "image_missing") {
		t.Errorf("a missing image:\n%s", stdout)
	}
	if _, stderr, ok := runVLP(t, bin, "downstream", "import", "--task", "gqa", "--file", records); ok || !strings.Contains(stderr, `--task "gqa"`) {
		t.Errorf("an unknown task was not refused: %s", stderr)
	}
	if _, stderr, ok := runVLP(t, bin, "downstream", "import", "--task", "karpathy", "--file", filepath.Join(out, "vqa", "v2_mscoco_val2014_annotations.json")); ok || !strings.Contains(stderr, "malformed") && !strings.Contains(stderr, "nothing usable") {
		t.Errorf("a VQA file read as Karpathy's was not refused: %s", stderr)
	}
}
