package main

import (
	"bufio"
	"context"
	"errors"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/sharding"
)

// runStep runs one vlp command to completion and fails the test on error.
func runStep(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vlp %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 3000))
	}
	return string(out)
}

// buildTestShards writes a synthetic world of images 48 px images and
// shards it; it returns the shard directory.
func buildTestShards(t *testing.T, bin, root string, images int) string {
	t.Helper()
	world, shards := filepath.Join(root, "world"), filepath.Join(root, "shards")
	runStep(t, bin, "data", "synth", "--out", world, "--images", strconv.Itoa(images), "--width", "48", "--height", "48", "--workers", "1")
	runStep(t, bin, "shard", "build", "--coco", filepath.Join(world, "coco"), "--vg", filepath.Join(world, "vg"),
		"--out", shards, "--shard-size", "8", "--workers", "1", "--quiet")
	return shards
}

// manifestPairIDs reads every pair id of the shards in dir, front to back
// (checksums verified).
func manifestPairIDs(t *testing.T, dir string) map[uint64]bool {
	t.Helper()
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := data.NewShardSource(dir, m)
	defer src.Close()
	ids := map[uint64]bool{}
	for {
		e, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[e.PairID()] = true
	}
	if int64(len(ids)) != m.Pairs {
		t.Fatalf("the shards hold %d distinct pair ids, the manifest counts %d pairs", len(ids), m.Pairs)
	}
	return ids
}

// shardTrainSetup builds 24 synthetic images into shards for a `vlp train
// --data` test and returns them, the run directory and the shards' pair
// ids. The worker processes find the shim through VLP_TORCH_LIB.
func shardTrainSetup(t *testing.T, bin string) (shards, run string, want map[uint64]bool) {
	t.Helper()
	t.Setenv("VLP_TORCH_LIB", shimPath(t))
	root := t.TempDir()
	shards = buildTestShards(t, bin, root, 24)
	return shards, filepath.Join(root, "run"), manifestPairIDs(t, shards)
}

// The importer's output trains: synthetic COCO/VG → shards → `vlp train
// --data` with two worker processes for a whole epoch. Every pair the
// workers trained on is a pair of the shards, none twice, all of them
// once; the job ends completed, its checkpoints record the tokenizer's and
// the manifest's checksums, and the run ends with its evaluation.
func TestTrainOnShards(t *testing.T) {
	bin := testBinary(t)
	shards, run, want := shardTrainSetup(t, bin)

	r := startTrain(t, bin, "--workers", "2", "--preset", "tiny", "--data", shards, "--image-size", "48",
		"--epochs", "1", "--steps", "1000", "--batch", "16", "--per-unit", "5", "--threads", "1",
		"--checkpoint-every", "4", "--dir", run, "--log-pairs", "--eval", "16")
	if err := r.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("vlp train --data: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	out := r.stdout.String()
	if !strings.Contains(out, "job completed") {
		t.Errorf("the epoch did not complete the job:\n%s", out)
	}
	checkPairLogs(t, run, 2, want)
	// The end-of-run evaluation (package eval): every metric over the 16
	// held-out images, the two pictures, and the report in run/eval.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`evaluation on 16 held-out images \(checkpoint \d+, step \d+\)`),
		regexp.MustCompile(`MLM accuracy, one colour word masked\s+[0-9.]+%\s+\(\d+/[1-9]\d*\)`),
		regexp.MustCompile(`MLM accuracy, every colour word masked\s+[0-9.]+%\s+\(\d+/[1-9]\d*\)`),
		regexp.MustCompile(`ITM accuracy \(half mismatched\)\s+[0-9.]+%\s+\(\d+/16\)`),
		regexp.MustCompile(`detection AP50\s+[0-9.]+`),
		regexp.MustCompile(`captions greedy CIDEr-D\s+[0-9.]+\s+\(16 images\)`),
		regexp.MustCompile(`retrieval image→text R@1\s+[0-9.]+%\s+\(N = 16\)`),
		regexp.MustCompile(`caption: truth  "[a-z :,]+"\s+greedy "`),
	} {
		if !re.MatchString(out) {
			t.Errorf("output lacks %s:\n%s", re, out)
		}
	}
	if _, err := os.Stat(filepath.Join(run, "eval", "report.json")); err != nil {
		t.Errorf("the end-of-run evaluation wrote no report: %v", err)
	}
	for _, name := range []string{"loss-curve.png", "boxes.png"} {
		f, err := os.Open(filepath.Join(run, name))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 100 || cfg.Height < 100 {
			t.Errorf("%s: %v, %dx%d", name, err, cfg.Width, cfg.Height)
		}
	}
	insp := runStep(t, bin, "checkpoint", "inspect", "--store", filepath.Join(run, "checkpoints", "checkpoints.db"))
	for _, k := range []string{"checksum:  vocab.txt sha256:", "checksum:  manifest.json sha256:"} {
		if !strings.Contains(insp, k) {
			t.Errorf("the checkpoint does not record %q:\n%s", k, tail(insp, 1500))
		}
	}
	// No --clip-norm was given: the job carries the tiny preset's bound.
	if !regexp.MustCompile(`"clip_norm":1[,}]`).MatchString(insp) {
		t.Errorf("the job spec lacks the tiny preset's clip_norm 1:\n%s", tail(insp, 1500))
	}
}

// checkPairLogs reads the workers' pair logs: every pair consumed is a pair
// of the shards (want), none twice, all of them.
func checkPairLogs(t *testing.T, run string, workers int, want map[uint64]bool) {
	t.Helper()
	seen := map[uint64]int{}
	for i := range workers {
		f, err := os.Open(filepath.Join(run, "pairs-"+strconv.Itoa(i)+".log"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) != 2 || fs[0] != "0" {
				t.Fatalf("pair log line %q: want epoch 0 and a pair id", sc.Text())
			}
			id, err := strconv.ParseUint(fs[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if !want[id] {
				t.Errorf("worker %d trained on pair %d, which the shards do not hold", i, id)
			}
			seen[id]++
			n++
		}
		f.Close()
		if n == 0 {
			t.Errorf("worker %d trained on no pairs", i)
		}
	}
	var twice []uint64
	for id, n := range seen {
		if n != 1 {
			twice = append(twice, id)
		}
	}
	if len(twice) > 0 {
		t.Errorf("%d pairs consumed more than once, e.g. %v", len(twice), twice[:min(5, len(twice))])
	}
	if len(seen) != len(want) {
		t.Errorf("%d of the %d pairs were trained on", len(seen), len(want))
	}
}

// A run stopped by --steps on a checkpoint step, then resumed to the end of
// the epoch: over both runs every pair of the shards is trained on exactly
// once, so the resumed run starts exactly where the first one stopped. The
// job (and so every checkpoint) carries the run's --clip-norm.
func TestTrainOnShardsStopAndResume(t *testing.T) {
	bin := testBinary(t)
	shards, run, want := shardTrainSetup(t, bin)
	args := []string{"--workers", "2", "--preset", "tiny", "--data", shards, "--image-size", "48",
		"--epochs", "1", "--batch", "16", "--per-unit", "5", "--threads", "1",
		"--checkpoint-every", "4", "--clip-norm", "0.5", "--dir", run, "--log-pairs", "--eval", "0"}

	r := startTrain(t, bin, append([]string{"--steps", "8"}, args...)...)
	if err := r.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("first run: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	if out := r.stdout.String(); !strings.Contains(out, "checkpoint step 8: verified") {
		t.Fatalf("the first run did not end with the checkpoint of step 8:\n%s", out)
	}
	r = startTrain(t, bin, append([]string{"--steps", "1000"}, args...)...)
	if err := r.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("resumed run: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	out := r.stdout.String()
	for _, w := range []string{"at step 8", "job completed"} {
		if !strings.Contains(out, w) {
			t.Errorf("resumed output lacks %q:\n%s", w, out)
		}
	}
	checkPairLogs(t, run, 2, want)
	insp := runStep(t, bin, "checkpoint", "inspect", "--store", filepath.Join(run, "checkpoints", "checkpoints.db"))
	if !strings.Contains(insp, `"clip_norm":0.5`) {
		t.Errorf("the checkpoint's job spec lacks clip_norm 0.5:\n%s", tail(insp, 1500))
	}
}
