package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// Binary is the vlp binary the processes run: $VLP_BIN when it names a file (make test sets it
// to build/bin/vlp), else one built once per test process into a temporary directory. It skips
// t first where the scenarios cannot run (RequireNet), so that nothing is built for nothing.
func Binary(t testing.TB) string {
	t.Helper()
	RequireNet(t)
	if b := os.Getenv("VLP_BIN"); b != "" {
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vlp-integration-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "vlp")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, "github.com/e2evlp/vlp/cmd/vlp").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("integration: go build: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}
