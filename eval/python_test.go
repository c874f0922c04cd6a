package eval

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pythonPath is the oracles' interpreter: $VLP_PYTHON, else Debian's
// /usr/bin/python3 (with python3-nltk).
func pythonPath() string {
	if p := os.Getenv("VLP_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// runOracle runs a Python script on in (as JSON on stdin) and decodes its
// JSON stdout into out; any failure fails the test with stderr.
func runOracle(t *testing.T, script string, in, out any) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oracle.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonPath(), path)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("python oracle: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("python oracle output: %v\n%s", err, stdout.String())
	}
}
