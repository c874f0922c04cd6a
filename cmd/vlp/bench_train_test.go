package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/e2evlp/vlp/worker"
)

// A small run of vlp bench train: one round of vlp (overlapped and after backward) and the
// PyTorch DDP peer on the same shapes, the rows, the visible all-reduce and the ratio; the run
// directory's steps.jsonl holds one step summary per committed step.
func TestBenchTrain(t *testing.T) {
	bin := testBinary(t)
	keep := t.TempDir()
	cmd := exec.Command(bin, "--torch-lib", shimPath(t), "bench", "train", "--threads", "1", "--rounds", "1", "--steps", "8",
		"--warmup", "2", "--images", "64", "--keep", keep, "--reference", filepath.Join("..", "..", "reference", "e2evlp.py"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vlp bench train: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, row := range []string{"vlp", "vlp-a", "ddp"} {
		m := regexp.MustCompile(`(?m)^1\s+` + row + `\s+([0-9.]+)\s.*\s([0-9.]+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s row:\n%s", row, out)
		}
		for _, f := range m[1:] {
			if v, _ := strconv.ParseFloat(f, 64); !(v > 0) {
				t.Errorf("%s row: %s is not a positive time or rate:\n%s", row, f, out)
			}
		}
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`all-reduce left visible in the step: [0-9.]+ ms overlapped, [0-9.]+ ms after backward`),
		regexp.MustCompile(`vlp [0-9.]+ samples/s, DDP [0-9.]+ samples/s: vlp / DDP = [0-9.]+`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %v:\n%s", want, out)
		}
	}
	f, err := os.Open(filepath.Join(keep, "vlp-0", "steps.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []worker.StepSummary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s worker.StepSummary
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, s)
	}
	if len(steps) != 8 || steps[7].Step != 8 || steps[0].Timings.Total <= 0 || steps[0].Losses["total"] <= 0 {
		t.Fatalf("steps.jsonl: %d steps, the last %+v", len(steps), steps[len(steps)-1])
	}
	// A step's interval runs from the previous step's end: none for the generation's first, and
	// never shorter than the step itself after it.
	if steps[0].Timings.Interval != 0 {
		t.Errorf("the first step has an interval: %+v", steps[0].Timings)
	}
	for _, s := range steps[1:] {
		if s.Timings.Interval < s.Timings.Total {
			t.Errorf("step %d: interval %v shorter than the step %v", s.Step, s.Timings.Interval, s.Timings.Total)
		}
	}
}
