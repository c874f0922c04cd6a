package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/downstream"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
)

// TestRetrievalProgress: a line at most every interval of the clock, none for the last pass, and
// the estimate of the time left from the pace so far.
func TestRetrievalProgress(t *testing.T) {
	clock := time.Unix(0, 0)
	var w bytes.Buffer
	progress := retrievalProgress(&w, 5*time.Second, func() time.Time { return clock })
	for _, step := range []struct {
		after time.Duration
		done  int
		want  string // "" for no line
	}{
		{1 * time.Second, 100, ""},
		{3 * time.Second, 200, ""}, // 4 s since the start
		{2 * time.Second, 300, "retrieval: 300 of 1000 image–sentence pairs scored (30.0%) in 6s, about 14s left\n"},
		{4 * time.Second, 400, ""}, // 4 s since the last line
		{6 * time.Second, 500, "retrieval: 500 of 1000 image–sentence pairs scored (50.0%) in 16s, about 16s left\n"},
		{9 * time.Second, 1000, ""}, // done: the report follows
	} {
		clock = clock.Add(step.after)
		w.Reset()
		progress(step.done, 1000)
		if got := w.String(); got != step.want {
			t.Errorf("after %d pairs: %q, want %q", step.done, got, step.want)
		}
	}
}

// TestFinetuneEvalRetrievalFlag: the help states what --retrieval-images costs, and a negative
// bound is refused, naming the flag, before anything is loaded.
func TestFinetuneEvalRetrievalFlag(t *testing.T) {
	bin := testBinary(t)
	stdout, _, ok := runVLP(t, bin, "finetune", "eval", "--help")
	if !ok || !strings.Contains(stdout, "--retrieval-images N") || !strings.Contains(stdout, "forward passes of the fusion encoder") {
		t.Errorf("help (ok %v):\n%s", ok, stdout)
	}
	_, stderr, ok := runVLP(t, bin, "finetune", "eval", "--checkpoint", "none.db", "--data", "none.json", "--retrieval-images", "-1")
	if ok || !strings.Contains(stderr, "--retrieval-images -1") {
		t.Errorf("--retrieval-images -1: ok %v, stderr %q", ok, stderr)
	}
}

// TestFinetuneEvalRetrieval: `vlp finetune eval` on a retrieval job's checkpoint ranks every
// Karpathy test image against all their sentences (4 images of 5 here), or the first
// --retrieval-images of them with only their sentences.
func TestFinetuneEvalRetrieval(t *testing.T) {
	lib := shimPath(t)
	if err := torch.Load(lib); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kd := filepath.Join(dir, "karpathy")
	if _, err := synth.ExportKarpathy(synth.FinetuneConfig{World: synth.Config{Seed: 2, Images: 40, Width: 64, Height: 64, MaxObjects: 2}, Workers: 2}, kd); err != nil {
		t.Fatal(err)
	}
	set, _, err := downstream.ImportKarpathy(downstream.KarpathyConfig{File: filepath.Join(kd, synth.KarpathyFile), ImageDir: kd})
	if err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(dir, "karpathy.json")
	if err := writeJSONFile(records, set); err != nil {
		t.Fatal(err)
	}
	recs, err := train.LoadTaskRecords(train.TaskRetrieval, records, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint of a retrieval job from the seed, as its workers would save it.
	spec := coordinator.JobSpec{Name: "ft", Model: "tiny", Task: "retrieval", GlobalBatch: 8, Seed: 1, Epochs: 1,
		Hyper: coordinator.HyperParams{MaxSteps: 1}, Units: coordinator.UnitsSpec{Pairs: int64(recs.Len()), PerUnit: 4},
		Dataset: coordinator.DatasetSpec{Manifest: records}, Options: map[string]string{train.OptImageSize: "64"}}.WithDefaults()
	cfg, err := taskLearnerConfig(spec, "", torch.CPU, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Overlap = false
	l, err := train.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Init(spec.Seed); err != nil {
		t.Fatal(err)
	}
	snap, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snap.Meta.Step = 1
	if snap.Meta.JobSpec, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "ft", "checkpoints.db")
	if err := os.MkdirAll(filepath.Dir(store), 0o755); err != nil {
		t.Fatal(err)
	}
	cs, err := checkpoint.Open(store, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Save(snap); err != nil {
		t.Fatal(err)
	}
	cs.Close()

	bin := testBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "retrieval over 4 test images and their 20 sentences: image→text R@1/5/10 "},
		{[]string{"--retrieval-images", "2"}, "retrieval over 2 test images and their 10 sentences: image→text R@1/5/10 "},
	} {
		args := append([]string{"--torch-lib", lib, "finetune", "eval", "--checkpoint", store, "--data", records, "--threads", "1"}, c.args...)
		stdout, stderr, ok := runVLP(t, bin, args...)
		if !ok || !strings.Contains(stdout, c.want) {
			t.Errorf("vlp %s: ok %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), ok, stdout, stderr)
		}
		t.Log(strings.TrimSpace(stdout))
	}
}
