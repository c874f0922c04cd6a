package main

import (
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/eval/plot"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

// checkPNG fails unless path is a PNG of width × the default height.
func checkPNG(t *testing.T, path string, width int) {
	t.Helper()
	checkPNGSize(t, path, width, plot.DefaultHeight)
}

// checkPNGSize fails unless path decodes as a PNG of width × height.
func checkPNGSize(t *testing.T, path string, width, height int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Errorf("%s is %d×%d, want %d×%d", path, b.Dx(), b.Dy(), width, height)
	}
}

func TestBenchInferCommand(t *testing.T) {
	lib := shimPath(t)
	bin := testBinary(t)
	out := filepath.Join(t.TempDir(), "infer.png")
	stdout, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "infer", "--presets", "tiny", "--sizes", "64,96",
		"--batch", "2", "--iters", "1", "--warmup", "0", "--out", out)
	if !ok {
		t.Fatalf("bench infer failed: %s\n%s", stderr, stdout)
	}
	// One table row per size: the 4:3 image, its image tokens (tiny's
	// stride 16), three batch-1 latencies, the ratio and two throughputs.
	for _, re := range []string{
		`(?m)^tiny\s+64x85\s+24\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+$`,
		`(?m)^tiny\s+96x128\s+48\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+$`,
		`e2e b2 \(pairs/s\)`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", re, stdout)
		}
	}
	checkPNG(t, out, inferChartWidth)
	// A batch cell above --batch-up-to, or predicted to run past
	// --max-cell, is skipped and says so; --clock cpu reads CPU time.
	stdout, stderr, ok = runVLP(t, bin, "--torch-lib", lib, "bench", "infer", "--presets", "tiny", "--sizes", "64",
		"--batch", "2", "--iters", "1", "--warmup", "0", "--max-cell", "1ns", "--clock", "cpu", "--out", "")
	if !ok || !strings.Contains(stdout, "skipped: predicted") || !strings.Contains(stdout, "process CPU time") {
		t.Errorf("--max-cell 1ns --clock cpu: ok %v, output:\n%s\n%s", ok, stdout, stderr)
	}
	stdout, stderr, ok = runVLP(t, bin, "--torch-lib", lib, "bench", "infer", "--presets", "tiny", "--sizes", "64",
		"--batch", "2", "--iters", "1", "--warmup", "0", "--batch-up-to", "48", "--out", "")
	if !ok || !strings.Contains(stdout, "skipped: 64 px > --batch-up-to 48") {
		t.Errorf("--batch-up-to 48: ok %v, output:\n%s\n%s", ok, stdout, stderr)
	}
}

func TestBenchInferRefusesBadFlags(t *testing.T) {
	lib := shimPath(t)
	bin := testBinary(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sizes", "10"}, "not a side in 32..2048"},
		{[]string{"--sizes", "224,x"}, `"x" is not a side`},
		{[]string{"--presets", "huge"}, "unknown preset"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--iters", "0"}, "--iters 0"},
		{[]string{"--warmup", "-1"}, "--warmup -1"},
		{[]string{"--text-len", "1"}, "--text-len 1"},
		{[]string{"--max-cell", "-1s"}, "--max-cell"},
		{[]string{"--presets", "tiny", "--text-len", "33"}, "exceeds preset tiny's 32 text positions"},
		{[]string{"--device", "gpu"}, "--device"},
		{[]string{"--clock", "tsc"}, `--clock "tsc": want wall or cpu`},
		{[]string{"--max-memory", "-1"}, "--max-memory -1 GiB"},
		{[]string{"--batch-up-to", "-1"}, "--batch-up-to -1"},
		// Past --max-memory of resident memory it stops itself, saying why.
		{[]string{"--max-memory", "0.01"}, "passed --max-memory 0.0 GiB; stopped"},
		{[]string{"--clock", "cpu", "--device", "cuda:0"}, "on cuda:0 use --clock wall"},
	} {
		args := append([]string{"--torch-lib", lib, "bench", "infer", "--sizes", "64", "--out", ""}, tc.args...)
		_, stderr, ok := runVLP(t, bin, args...)
		if ok || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: ok %v, stderr %q, want %q", tc.args, ok, stderr, tc.want)
		}
	}
}

func TestInferChart(t *testing.T) {
	o := inferOptions{presets: []string{"tiny", "base"}, sizes: []int{224, 320}, iters: 3}
	rows := []inferRow{
		{preset: "tiny", h: 224, one: inferTimes{e2e: 10 * time.Millisecond, detector: 9 * time.Millisecond, regions: 2 * time.Millisecond}},
		{preset: "tiny", h: 320, one: inferTimes{e2e: 20 * time.Millisecond, detector: 18 * time.Millisecond, regions: 2 * time.Millisecond}},
		{preset: "base", h: 224, one: inferTimes{e2e: 200 * time.Millisecond, detector: 190 * time.Millisecond, regions: 20 * time.Millisecond}},
		{preset: "base", h: 320, one: inferTimes{e2e: 400 * time.Millisecond, detector: 380 * time.Millisecond, regions: 20 * time.Millisecond}},
	}
	c := inferChart(rows, torch.CPU, 2, o)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.Series {
		names = append(names, s.Name)
	}
	want := "tiny E2E-VLP|tiny two-step (cost model)|base E2E-VLP|base two-step (cost model)"
	if got := strings.Join(names, "|"); got != want {
		t.Fatalf("series %q, want %q", got, want)
	}
	// base's two-step line: detector + region step at each size, in ms.
	if s := c.Series[3]; len(s.X) != 2 || s.X[1] != 320 || s.Y[0] != 210 || s.Y[1] != 400 {
		t.Errorf("base two-step series x %v y %v, want x [224 320] y [210 400]", s.X, s.Y)
	}
	if !c.LogY || len(c.XTicks) != 2 || !strings.Contains(c.Title, "cpu, 2 LibTorch thread(s)") {
		t.Errorf("chart log y %v, x ticks %v, title %q", c.LogY, c.XTicks, c.Title)
	}
}

// TestBenchDetectTextCommand trains two steps, then measures detection
// with and without the caption on the checkpoint.
func TestBenchDetectTextCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a checkpoint first")
	}
	lib := shimPath(t)
	bin := testBinary(t)
	store := trainTinyCheckpoint(t, bin, lib)
	out := filepath.Join(t.TempDir(), "dt.png")
	stdout, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "detect-text", "--checkpoint", store, "--images", "17", "--out", out)
	if !ok {
		t.Fatalf("detect-text failed: %s\n%s", stderr, stdout)
	}
	for _, re := range []string{
		`checkpoint \d+ \(step 2, tiny\), 17 held-out images`,
		`(?m)^no text\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+\+0\.000$`,
		`(?m)^paired text\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[-+][0-9.]+$`,
		`(?m)^other text\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[-+][0-9.]+$`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", re, stdout)
		}
	}
	checkPNG(t, out, plot.DefaultWidth)
	if _, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "detect-text", "--checkpoint", store, "--images", "1"); ok || !strings.Contains(stderr, "--images 1") {
		t.Errorf("--images 1: ok %v, stderr %q", ok, stderr)
	}
	if _, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "detect-text", "--checkpoint", store+"#99"); ok || !strings.Contains(stderr, "99") {
		t.Errorf("--id 99: ok %v, stderr %q", ok, stderr)
	}
}

// trainTinyCheckpoint trains the tiny preset for two steps on the
// synthetic world (one worker, batch 8) and returns its checkpoint store,
// which holds checkpoint 1 at step 2.
func trainTinyCheckpoint(t *testing.T, bin, lib string) string {
	t.Helper()
	run := filepath.Join(t.TempDir(), "run")
	if out, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "train", "--workers", "1", "--steps", "2", "--checkpoint-every", "2",
		"--eval", "0", "--images", "32", "--batch", "8", "--dir", run); !ok {
		t.Fatalf("train failed: %s\n%s", stderr, out)
	}
	return filepath.Join(run, "checkpoints", "checkpoints.db")
}

func TestWithNextCaption(t *testing.T) {
	b := inferBatch(model.Tiny(), 3, 32, 32, 4, 1)
	o := withNextCaption(b)
	for i := 0; i < 3; i++ {
		j := (i + 1) % 3
		if got, want := o.TokenIDs[i*4:(i+1)*4], b.TokenIDs[j*4:(j+1)*4]; !slices.Equal(got, want) {
			t.Errorf("row %d: %v, want row %d's %v", i, got, j, want)
		}
	}
	if &o.Images[0] != &b.Images[0] || &o.TokenIDs[0] == &b.TokenIDs[0] {
		t.Error("want the images shared and the text copied")
	}
}
