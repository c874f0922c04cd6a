package integration

import (
	"os"
	"os/exec"
	"testing"
)

// SmallDisk mounts a tmpfs of size (mount syntax: "2m") at dir, created if missing: a
// filesystem that fills up. It is unmounted in t.Cleanup (lazily, should a process still hold
// a file there).
func SmallDisk(t testing.TB, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("integration: small disk: %v", err)
	}
	if err := run("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir); err != nil {
		t.Fatalf("integration: small disk: %v", err)
	}
	t.Cleanup(func() {
		if err := exec.Command("umount", dir).Run(); err != nil {
			_ = exec.Command("umount", "-l", dir).Run()
		}
	})
}
