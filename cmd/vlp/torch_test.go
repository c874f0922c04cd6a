package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// torchTestBinary is a vlp binary copied alone into a fresh folder: $VLP_BIN (what `make test`
// built), else one built now with the Go toolchain.
func torchTestBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, "vlp")
	if src := os.Getenv("VLP_BIN"); src != "" {
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no $VLP_BIN and no Go toolchain to build vlp")
	}
	if out, err := exec.Command("go", "build", "-o", dst, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dst
}

// runIn runs bin in dir with env added to a minimal environment (no VLP_* leaking in).
func runIn(t *testing.T, dir, bin string, env []string, args ...string) (stdout, stderr string, ok bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	return o.String(), e.String(), err == nil
}

func shimPath(t *testing.T) string {
	t.Helper()
	lib := os.Getenv("VLP_TORCH_LIB")
	if lib == "" {
		lib, _ = filepath.Abs("../../build/lib/libvlptorch.so")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("%s is missing: run `make lib`", lib)
	}
	return lib
}

func TestTorchCheckWithoutLibrary(t *testing.T) {
	bin := torchTestBinary(t)
	dir := filepath.Dir(bin) // the binary alone: no library beside it, no ./build/lib
	nowhere := []string{"VLP_TORCH_LIB=" + filepath.Join(dir, "nowhere", "libvlptorch.so")}
	if out, errOut, ok := runIn(t, dir, bin, nowhere, "version"); !ok || !strings.HasPrefix(out, "vlp ") {
		t.Fatalf("vlp version without the library: ok=%v %q %q", ok, out, errOut)
	}
	if out, errOut, ok := runIn(t, dir, bin, nowhere, "--help"); !ok || !strings.Contains(out, "torch") {
		t.Fatalf("vlp --help without the library: ok=%v %q %q", ok, out, errOut)
	}
	_, errOut, ok := runIn(t, dir, bin, nowhere, "torch", "check")
	if ok {
		t.Fatal("vlp torch check succeeded without the library")
	}
	for _, want := range []string{"libvlptorch.so", "make lib", filepath.Join(dir, "nowhere")} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error %q does not mention %q", errOut, want)
		}
	}
}

func TestTorchCheckWithLibrary(t *testing.T) {
	lib := shimPath(t)
	bin := torchTestBinary(t)
	dir := filepath.Dir(bin)
	// Found through the flag.
	out, errOut, ok := runIn(t, dir, bin, nil, "--torch-lib", lib, "torch", "check")
	if !ok {
		t.Fatalf("vlp torch check --torch-lib: %s%s", out, errOut)
	}
	for _, want := range []string{"LibTorch", "BLAS", "CUDA", "loss before", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Found next to the binary, with nothing set.
	if err := os.Symlink(lib, filepath.Join(dir, "libvlptorch.so")); err != nil {
		t.Fatal(err)
	}
	if out, errOut, ok := runIn(t, dir, bin, nil, "torch", "check"); !ok || !strings.Contains(out, filepath.Join(dir, "libvlptorch.so")) {
		t.Fatalf("library next to the binary not used: ok=%v\n%s%s", ok, out, errOut)
	}
	// A device that does not exist is a clear error.
	if _, errOut, ok := runIn(t, dir, bin, nil, "torch", "check", "--device", "cuda:7"); ok || !strings.Contains(errOut, "cuda:7") {
		t.Fatalf("--device cuda:7: ok=%v %q", ok, errOut)
	}
}
