package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the binary Binary built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}
