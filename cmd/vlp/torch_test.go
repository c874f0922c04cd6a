package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/torch"
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

// An explicit library (--torch-lib or $VLP_TORCH_LIB) is the only one tried: missing, not a
// library, not the shim, or a shim of another ABI, `vlp torch check` fails with one line that
// names it — even with a good library next to the binary.
func TestTorchCheckExplicitLibrary(t *testing.T) {
	lib := shimPath(t)
	bin := torchTestBinary(t)
	dir := filepath.Dir(bin)
	if err := os.Symlink(lib, filepath.Join(dir, "libvlptorch.so")); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text", "libvlptorch.so")
	if err := os.MkdirAll(filepath.Dir(text), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(text, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type check struct {
		name, path string
		says       []string
	}
	checks := []check{
		{"missing", "/nonexistent/libvlptorch.so", []string{"/nonexistent/libvlptorch.so", "does not exist", "--torch-lib"}},
		{"not a library", text, []string{text, "cannot open"}},
	}
	if _, err := os.Stat("/lib/x86_64-linux-gnu/libc.so.6"); err == nil {
		checks = append(checks, check{"not the shim", "/lib/x86_64-linux-gnu/libc.so.6", []string{"libc.so.6", "not a libvlptorch.so", "vlp_abi"}})
	}
	if stub, err := buildABIStub(t, 1000); err == nil {
		checks = append(checks, check{"another ABI", stub, []string{stub, "ABI version 1000", "speaks version " + strconv.Itoa(torch.ABIVersion)}})
	} else {
		t.Logf("no ABI stand-in: %v", err)
	}
	for _, c := range checks {
		for _, how := range []string{"flag", "env"} {
			var env []string
			args := []string{"torch", "check"}
			if how == "flag" {
				args = append([]string{"--torch-lib", c.path}, args...)
			} else {
				env = []string{"VLP_TORCH_LIB=" + c.path}
			}
			out, errOut, ok := runIn(t, dir, bin, env, args...)
			if ok || strings.Contains(out, "ok") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("%s by %s: ok=%v\n%s%s", c.name, how, ok, out, errOut)
			}
			for _, want := range c.says {
				if !strings.Contains(errOut, want) {
					t.Errorf("%s by %s: %q does not say %q", c.name, how, errOut, want)
				}
			}
		}
	}
	// Nothing named: the copy next to the binary.
	if out, errOut, ok := runIn(t, dir, bin, nil, "torch", "check"); !ok || !strings.Contains(out, "ABI version "+strconv.Itoa(torch.ABIVersion)) {
		t.Errorf("the library next to the binary: ok=%v\n%s%s", ok, out, errOut)
	}
}

// buildABIStub compiles torch/csrc/abi.cpp alone with VLP_ABI_VERSION=v: a library that speaks
// another ABI version (and has nothing else).
func buildABIStub(t *testing.T, v int) (string, error) {
	t.Helper()
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "g++"
	}
	if _, err := exec.LookPath(cxx); err != nil {
		return "", err
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "torch", "csrc", "abi.cpp"))
	if err != nil {
		return "", err
	}
	out := filepath.Join(t.TempDir(), "libvlptorch.so")
	b, err := exec.Command(cxx, "-std=c++17", "-shared", "-fPIC", "-DVLP_ABI_VERSION="+strconv.Itoa(v), "-o", out, src).CombinedOutput()
	if err != nil {
		t.Fatalf("building the stand-in: %v\n%s", err, b)
	}
	return out, nil
}
