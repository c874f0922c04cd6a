package worker

import (
	"os/exec"
	"strings"
	"testing"
)

// The control plane runs with no LibTorch (docs: the dependency rules): the worker, the
// coordinator, the collectives and the importer import neither package torch nor package model,
// directly or through another package.
func TestControlPlaneNeedsNoLibTorch(t *testing.T) {
	const mod = "github.com/e2evlp/vlp/"
	for _, pkg := range []string{"worker", "coordinator", "allreduce", "sharding"} {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 5 {
			t.Fatalf("go list -deps %s listed %d packages", pkg, len(deps))
		}
		for _, d := range deps {
			if d == mod+"torch" || d == mod+"model" {
				t.Errorf("package %s depends on %s", pkg, d)
			}
		}
	}
}
