package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestParseCheckpointRef(t *testing.T) {
	tests := []struct {
		in    string
		store string
		id    uint64
		hasID bool
		bad   bool
	}{
		{"run/ckpt.db", "run/ckpt.db", 0, false, false},
		{"run/ckpt.db#12", "run/ckpt.db", 12, true, false},
		{"a#b/ckpt.db#3", "a#b/ckpt.db", 3, true, false},
		{"ckpt.db#", "", 0, false, true},
		{"ckpt.db#0", "", 0, false, true},
		{"ckpt.db#x", "", 0, false, true},
	}
	for _, tc := range tests {
		store, id, hasID, err := parseCheckpointRef(tc.in)
		if (err != nil) != tc.bad || store != tc.store || id != tc.id || hasID != tc.hasID {
			t.Errorf("parseCheckpointRef(%q) = %q, %d, %v, %v", tc.in, store, id, hasID, err)
		}
	}
}

// TestEvalCommand trains two steps, evaluates the checkpoint with every
// metric, and checks the table, the report, the COCO files, the captions,
// the TensorBoard events, and the flags it refuses.
func TestEvalCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a checkpoint first")
	}
	lib := shimPath(t)
	bin := testBinary(t)
	store := trainTinyCheckpoint(t, bin, lib)
	out := filepath.Join(t.TempDir(), "eval")
	stdout, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "eval", "--checkpoint", store+"#1", "--images", "6",
		"--retrieval", "3", "--beams", "2", "--samples", "1", "--batch", "4", "--out", out)
	if !ok {
		t.Fatalf("eval failed: %s\n%s", stderr, stdout)
	}
	for _, re := range []string{
		`evaluation on 6 held-out images \(checkpoint 1, step 2\)`,
		`MLM accuracy, one colour word masked\s+[0-9.]+%\s+\(\d+/[1-9]\d*\)`,
		`MLM accuracy, every colour word masked\s+[0-9.]+%\s+\(\d+/[1-9]\d*\)`,
		`ITM accuracy \(half mismatched\)\s+[0-9.]+%\s+\(\d+/6\)`,
		`detection AP @\[\.50:\.95\]\s+[0-9.]+`,
		`detection AR@100\s+[0-9.]+`,
		`detection AP large \(> 96²\)\s+n/a`,
		`attributes, top-1 on matched boxes\s+[0-9.]+%`,
		`captions greedy BLEU-4\s+[0-9.]+\s+\(6 images\)`,
		`captions beam CIDEr-D\s+[0-9.]+\s+\(6 images\)`,
		`retrieval text→image R@10\s+[0-9.]+%\s+\(N = 3\)`,
		`caption: truth  "[a-z :,]+"\s+greedy "[^"]*"  [✓✗] [^\n]+\s+beam   "[^"]*"  [✓✗] `,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", re, stdout)
		}
	}
	read := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var rep struct {
		Images     int
		Checkpoint struct{ ID, Step int }
		Detection  map[string]float64
		Retrieval  struct{ N int }
	}
	read("report.json", &rep)
	if rep.Images != 6 || rep.Checkpoint.ID != 1 || rep.Checkpoint.Step != 2 || len(rep.Detection) != 12 || rep.Retrieval.N != 3 {
		t.Errorf("report.json: %+v", rep)
	}
	var gt struct {
		Images      []struct{ ID int }
		Annotations []struct {
			ID, ImageID, CategoryID int `json:"-"`
			BBox                    []float64
		}
		Categories []struct{ Name string }
	}
	read("instances_gt.json", &gt)
	if len(gt.Images) != 6 || len(gt.Annotations) < 6 || len(gt.Categories) != 6 || len(gt.Annotations[0].BBox) != 4 {
		t.Errorf("instances_gt.json: %d images, %d annotations, %d categories", len(gt.Images), len(gt.Annotations), len(gt.Categories))
	}
	var dets []map[string]any
	read("detections.json", &dets)
	if len(dets) != 6*10 { // the tiny preset's 10 queries per image
		t.Errorf("detections.json: %d detections, want 60", len(dets))
	}
	for _, k := range []string{"image_id", "category_id", "bbox", "score"} {
		if _, ok := dets[0][k]; !ok {
			t.Errorf("detections.json lacks %q: %v", k, dets[0])
		}
	}
	for _, name := range []string{"captions_greedy.json", "captions_beam.json"} {
		var caps []struct {
			ImageID int `json:"image_id"`
			Caption string
		}
		read(name, &caps)
		if len(caps) != 6 || caps[0].ImageID != gt.Images[0].ID {
			t.Errorf("%s: %+v", name, caps)
		}
	}
	if ev, _ := filepath.Glob(filepath.Join(out, "events", "events.out.tfevents.*")); len(ev) != 1 {
		t.Errorf("events: %v", ev)
	}
	if f, err := os.Open(filepath.Join(out, "boxes.png")); err != nil {
		t.Error(err)
	} else {
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 100 || cfg.Height < 100 {
			t.Errorf("boxes.png: %v, %dx%d", err, cfg.Width, cfg.Height)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--beams", "0"}, "--beams 0"},
		{[]string{"--images", "4", "--retrieval", "5"}, "--retrieval 5"},
		{[]string{"--vocab", "vocab.txt"}, "--vocab"},
		{[]string{"--images", "0"}, "--images 0"},
		{[]string{"--checkpoint", store + "#99"}, "99"},
		{[]string{"--checkpoint", store + "#x"}, "checkpoint id"},
	} {
		args := append([]string{"--torch-lib", lib, "eval", "--checkpoint", store, "--out", t.TempDir()}, tc.args...)
		if _, stderr, ok := runVLP(t, bin, args...); ok || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: ok %v, stderr %q", tc.args, ok, stderr)
		}
	}
}
