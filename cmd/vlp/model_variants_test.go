package main

import (
	"strings"
	"testing"

	"github.com/e2evlp/vlp/model"
)

func TestModelDescribeVariants(t *testing.T) {
	bin := testBinary(t)
	out, errOut, ok := runVLP(t, bin, "model", "describe", "--variants")
	if !ok {
		t.Fatalf("describe --variants failed: %s", errOut)
	}
	for _, name := range model.VariantNames() {
		if !strings.Contains(out, name) {
			t.Errorf("describe --variants lacks %s:\n%s", name, out)
		}
	}
	// A variant is a preset like any other.
	out, errOut, ok = runVLP(t, bin, "model", "describe", "--preset", "r101-enc6")
	if !ok || !strings.Contains(out, "ResNet-101") || !strings.Contains(out, "encoder      6 pre-norm layers") {
		t.Errorf("describe --preset r101-enc6: ok %v, stderr %q:\n%s", ok, errOut, out)
	}
	if _, errOut, ok := runVLP(t, bin, "model", "describe", "--variants", "--preset", "base"); ok || !strings.Contains(errOut, "takes no --preset") {
		t.Errorf("--variants --preset: ok %v, stderr %q", ok, errOut)
	}
}
