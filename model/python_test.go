package model

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// pythonPath is the interpreter with torch, torchvision and scipy: the test
// oracle ($VLP_PYTHON, else Debian's /usr/bin/python3).
func pythonPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VLP_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// runPython runs a script with stdin and returns its stdout; a failure
// fails the test with stderr.
func runPython(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(pythonPath(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("python %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}
