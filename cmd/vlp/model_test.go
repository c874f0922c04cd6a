package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/model"
)

func TestModelDescribeCommand(t *testing.T) {
	bin := testBinary(t)
	for _, preset := range []string{"tiny", "base", "large"} {
		out, errOut, ok := runVLP(t, bin, "model", "describe", "--preset", preset)
		if !ok {
			t.Fatalf("describe %s failed: %s", preset, errOut)
		}
		cfg, err := model.Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		s, err := model.Describe(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _, total, trainable := s.Counts()
		for _, want := range []string{
			fmt.Sprintf("ResNet-%d", cfg.ResNetDepth),
			fmt.Sprintf("%d heads", cfg.Heads),
			fmt.Sprintf("(%d)", total),
			fmt.Sprintf("(%d)", trainable),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("describe %s: output lacks %q:\n%s", preset, want, out)
			}
		}
	}
	// The paper's model: ResNet-50 without its classifier (23.5M) plus the
	// transformer side; base must land in the 50–60M range.
	base, _ := model.Describe(model.Base())
	if _, _, total, _ := base.Counts(); total < 50e6 || total > 60e6 {
		t.Errorf("base has %d parameters, want 50–60M", total)
	}
	if _, errOut, ok := runVLP(t, bin, "model", "describe", "--preset", "huge"); ok || !strings.Contains(errOut, "unknown preset") {
		t.Errorf("unknown preset: ok=%v stderr=%q", ok, errOut)
	}
}

func TestTrainLocalCommand(t *testing.T) {
	lib := shimPath(t)
	bin := testBinary(t)
	out, errOut, ok := runVLP(t, bin, "--torch-lib", lib, "train", "--local", "--steps", "3", "--batch", "4", "--images", "8", "--seed", "3")
	if !ok {
		t.Fatalf("train --local failed: %s\n%s", errOut, out)
	}
	steps := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "step ") {
			steps++
			for _, k := range []string{"loss", "mlm", "itm", "caption", "det_ce", "det_l1", "det_giou", "det_attr", "gnorm", "samples/s"} {
				if !strings.Contains(line, " "+k+" ") {
					t.Errorf("metrics line lacks %q: %s", k, line)
				}
			}
		}
	}
	if steps != 3 || !strings.Contains(out, "done: 3 steps") {
		t.Errorf("want 3 step lines and a summary, got:\n%s", out)
	}
	// A bad flag value is refused before anything starts.
	if _, errOut, ok := runVLP(t, bin, "--torch-lib", lib, "train", "--local", "--preset", "huge", "--steps", "1"); ok || !strings.Contains(errOut, "unknown preset") {
		t.Errorf("train --local --preset huge: ok=%v stderr=%q", ok, errOut)
	}
}
