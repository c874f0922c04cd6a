package main

import (
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/eval"
	"github.com/e2evlp/vlp/eval/plot"
)

// TestBenchImageSizeCommand trains two steps at 64 px, then evaluates and
// times the checkpoint at three sizes.
func TestBenchImageSizeCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a checkpoint first")
	}
	lib := shimPath(t)
	bin := testBinary(t)
	store := trainTinyCheckpoint(t, bin, lib)
	out := filepath.Join(t.TempDir(), "is.png")
	stdout, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "image-size", "--checkpoint", store, "--sizes", "32,64,96",
		"--images", "6", "--iters", "1", "--warmup", "0", "--out", out)
	if !ok {
		t.Fatalf("bench image-size failed: %s\n%s", stderr, stdout)
	}
	if !strings.Contains(stdout, "checkpoint 1 (step 2, tiny, trained at 64 px), 6 held-out synthetic images per size") {
		t.Errorf("output lacks the checkpoint line:\n%s", stdout)
	}
	// One row per size: the side, its image tokens (tiny's stride 16), two
	// latencies, AP50 and AP in [0, 1], colour MLM and ITM as rate (n/N)
	// over the 6 images' masked colour words and 6 rows; the trained size
	// says so.
	row := regexp.MustCompile(`(?m)^(\d+)x(\d+)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+) \((\d+)/(\d+)\)\s+([0-9.]+) \((\d+)/(\d+)\)(\s+trained size)?$`)
	rows := row.FindAllStringSubmatch(stdout, -1)
	if len(rows) != 3 {
		t.Fatalf("%d table rows, want 3 (one per size):\n%s", len(rows), stdout)
	}
	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for k, r := range rows {
		side := []string{"32", "64", "96"}[k]
		if r[1] != side || r[2] != side || r[3] != []string{"4", "16", "36"}[k] {
			t.Errorf("row %d is %sx%s with %s tokens, want %sx%s", k, r[1], r[2], r[3], side, side)
		}
		if f(r[4]) <= 0 || f(r[5]) <= 0 {
			t.Errorf("row %s: latencies %s, %s ms, want > 0", side, r[4], r[5])
		}
		for _, ap := range r[6:8] {
			if v := f(ap); v < 0 || v > 1 {
				t.Errorf("row %s: AP %s outside [0, 1]", side, ap)
			}
		}
		for _, acc := range [][]string{r[8:11], r[11:14]} {
			c, n := f(acc[1]), f(acc[2])
			if n < 1 || c > n || math.Abs(f(acc[0])-c/n) > 5e-4 {
				t.Errorf("row %s: accuracy %s (%s/%s) is not a rate of its counts", side, acc[0], acc[1], acc[2])
			}
		}
		if f(r[13]) != 6 {
			t.Errorf("row %s: ITM over %s rows, want the 6 images", side, r[13])
		}
		if trained := r[14] != ""; trained != (side == "64") {
			t.Errorf("row %s: marked trained %v", side, trained)
		}
	}
	checkPNGSize(t, out, inferChartWidth, 2*plot.DefaultHeight) // two panels
	// Without --sizes: ½, ¾, 1, 1½, 2 × the trained 64 px.
	stdout, stderr, ok = runVLP(t, bin, "--torch-lib", lib, "bench", "image-size", "--checkpoint", store+"#1", "--images", "2",
		"--iters", "1", "--warmup", "0", "--clock", "cpu", "--out", "")
	if !ok || len(row.FindAllString(stdout, -1)) != 5 || !strings.Contains(stdout, "\n128x128 ") || !strings.Contains(stdout, "process CPU time") {
		t.Errorf("default sizes, --clock cpu: ok %v, output:\n%s\n%s", ok, stdout, stderr)
	}
	if _, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "image-size", "--checkpoint", store+"#99", "--sizes", "32"); ok || !strings.Contains(stderr, "99") {
		t.Errorf("#99: ok %v, stderr %q", ok, stderr)
	}
}

func TestBenchImageSizeRefusesBadFlags(t *testing.T) {
	lib := shimPath(t)
	bin := testBinary(t)
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--sizes", "16"}, `"16" is not a side in 32..1024 pixels`},
		{[]string{"--sizes", "64,2048"}, `"2048" is not a side in 32..1024`},
		{[]string{"--sizes", "64,x"}, `"x" is not a side`},
		{[]string{"--images", "0"}, "--images 0, want ≥ 1"},
		{[]string{"--batch", "0"}, "--batch 0, want ≥ 1"},
		{[]string{"--iters", "0"}, "--iters 0, want ≥ 1"},
		{[]string{"--warmup", "-1"}, "--warmup -1, want ≥ 0"},
		{[]string{"--threads", "-2"}, "--threads -2, want ≥ 0"},
		{[]string{"--clock", "tsc"}, `--clock "tsc": want wall or cpu`},
		{[]string{"--clock", "cpu", "--device", "cuda:0"}, "on cuda:0 use --clock wall"},
		{[]string{"--device", "gpu"}, "--device"},
		{nil, "none.db"}, // flags fine, no store
	} {
		args := append([]string{"--torch-lib", lib, "bench", "image-size", "--checkpoint", missing, "--sizes", "64", "--out", ""}, tc.args...)
		_, stderr, ok := runVLP(t, bin, args...)
		if ok || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: ok %v, stderr %q, want %q", tc.args, ok, stderr, tc.want)
		}
	}
	if _, stderr, ok := runVLP(t, bin, "--torch-lib", lib, "bench", "image-size"); ok || !strings.Contains(stderr, "checkpoint") {
		t.Errorf("no --checkpoint: ok %v, stderr %q", ok, stderr)
	}
}

func TestDefaultImageSizes(t *testing.T) {
	for _, tc := range []struct {
		trained int
		want    []int
	}{
		{64, []int{32, 48, 64, 96, 128}},
		{40, []int{32, 40, 60, 80}},       // ½ and ¾ clamp to 32 once
		{800, []int{400, 600, 800, 1024}}, // 1½ and 2 clamp to 1024 once
	} {
		if got := defaultImageSizes(tc.trained); !slices.Equal(got, tc.want) {
			t.Errorf("trained %d: %v, want %v", tc.trained, got, tc.want)
		}
	}
}

func TestImageSizeCharts(t *testing.T) {
	rows := []imageSizeRow{
		{side: 32, e2e: 2 * time.Millisecond, detector: time.Millisecond, ap50: -1, ap: -1, mlm: eval.Accuracy{Correct: 1, Total: 4}, itm: eval.Accuracy{Correct: 3, Total: 4}},
		{side: 64, e2e: 4 * time.Millisecond, detector: 3 * time.Millisecond, ap50: 0.5, ap: 0.25, mlm: eval.Accuracy{Correct: 2, Total: 4}, itm: eval.Accuracy{Correct: 4, Total: 4}},
	}
	lat, acc := imageSizeCharts(rows, 64, "t")
	for _, c := range []struct {
		name string
		err  error
	}{{"latency", lat.Validate()}, {"accuracy", acc.Validate()}} {
		if c.err != nil {
			t.Fatalf("%s: %v", c.name, c.err)
		}
	}
	if !lat.LogY || acc.LogY || !slices.Equal(lat.XTicks, []float64{32, 64}) || !strings.Contains(acc.XLabel, "trained at 64") {
		t.Errorf("latency log %v, accuracy log %v, ticks %v, x label %q", lat.LogY, acc.LogY, lat.XTicks, acc.XLabel)
	}
	if y := lat.Series[1].Y; !slices.Equal(y, []float64{1, 3}) {
		t.Errorf("detector latency %v, want [1 3] ms", y)
	}
	// AP without ground truth (-1) is not drawn: NaN breaks the line.
	if y := acc.Series[0].Y; !math.IsNaN(y[0]) || y[1] != 0.5 {
		t.Errorf("AP50 series %v, want [NaN 0.5]", y)
	}
	if y := acc.Series[3].Y; !slices.Equal(y, []float64{0.75, 1}) {
		t.Errorf("ITM series %v, want [0.75 1]", y)
	}
}
