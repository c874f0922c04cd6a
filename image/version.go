package image

import (
	"fmt"
	"os/exec"
	"strings"
)

// BinaryVersion runs `binary version` and returns the version it prints ("vlp 0.1.0-dev (go…,
// linux/amd64)" → "0.1.0-dev"), so that the image's label says what the binary is.
func BinaryVersion(binary string) (string, error) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("image: %s version: %w: %s", binary, err, strings.TrimSpace(string(out)))
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "vlp" {
		return "", fmt.Errorf("image: %s version printed %q, not \"vlp VERSION …\"", binary, strings.TrimSpace(string(out)))
	}
	return f[1], nil
}
