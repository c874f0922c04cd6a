package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestBenchData runs a short `vlp bench data` through the binary: every
// size × decoder × goroutine row is printed with a positive rate, and the
// cores line is there.
func TestBenchData(t *testing.T) {
	bin := testBinary(t)
	out, ok := runVocabCLI(t, bin, "bench", "data", "--seconds", "0.1", "--images", "2", "--src-width", "160",
		"--src-height", "120", "--goroutines", "1,2", "--sizes", "64,48", "--batch", "4")
	if !ok {
		t.Fatalf("bench data failed:\n%s", out)
	}
	for _, size := range []string{"64", "48"} {
		for _, dec := range []string{"image/jpeg", "libjpeg-turbo"} {
			for _, g := range []string{"1", "2"} {
				re := regexp.MustCompile(`(?m)^` + size + `\s+` + regexp.QuoteMeta(dec) + `\s+` + g + `\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+$`)
				if !re.MatchString(out) {
					t.Errorf("no image-stage row for %s %s %s goroutines in:\n%s", size, dec, g, out)
				}
			}
		}
		if !strings.Contains(out, size+": ") || !strings.Contains(out, "cores for 680 samples/s") {
			t.Errorf("no cores line for %s in:\n%s", size, out)
		}
	}
	if !strings.Contains(out, "whole pipeline") {
		t.Errorf("no pipeline section in:\n%s", out)
	}
	// The base preset's size (shorter side 512, longer ≤ 853), image stage only.
	out, ok = runVocabCLI(t, bin, "bench", "data", "--seconds", "0.1", "--images", "1", "--src-width", "160",
		"--src-height", "120", "--goroutines", "1", "--sizes", "base", "--decoder", "go", "--pipeline=false")
	if !ok || !regexp.MustCompile(`(?m)^base\s+image/jpeg\s+1\s+[0-9.]+`).MatchString(out) || strings.Contains(out, "whole pipeline") {
		t.Errorf("bench data --sizes base --pipeline=false:\n%s", out)
	}
	if out, ok := runVocabCLI(t, bin, "bench", "data", "--decoder", "nope"); ok || !strings.Contains(out, "--decoder") {
		t.Errorf("bad --decoder: ok=%v, output %q", ok, out)
	}
}
