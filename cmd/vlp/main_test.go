package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The CLI is tested by running the binary: $VLP_BIN (what `make test` built), else one vlp
// built once for this test process and removed when it ends.
var (
	buildOnce sync.Once
	builtDir  string
	builtBin  string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// testBinary returns the vlp binary the CLI tests run.
func testBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("VLP_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "vlp-cli-test")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(builtDir, "vlp")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}

// runVLP runs the binary and returns stdout, stderr and whether it exited 0.
func runVLP(t *testing.T, bin string, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), err == nil
}
