package torch

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no ./build/lib here
	env := filepath.Join(dir, "env", LibraryName)
	explicit := filepath.Join(dir, "flag", LibraryName)
	t.Setenv(EnvLibrary, env)
	for _, p := range []string{explicit, env} {
		_, err := Locate(p)
		if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), p) {
			t.Fatalf("Locate(%q) = %v; want ErrLibraryNotFound naming it", p, err)
		}
	}
	if _, err := Locate(""); err == nil || !strings.Contains(err.Error(), "$"+EnvLibrary) {
		t.Fatalf("Locate(\"\") with a missing $%s = %v; want an error naming the variable", EnvLibrary, err)
	}

	// An explicit path that does not exist is never replaced by one that does: not by
	// $VLP_TORCH_LIB, not by ./build/lib.
	for _, p := range []string{env, filepath.Join(dir, "build", "lib", LibraryName)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Locate(explicit); err == nil {
		t.Fatalf("Locate(missing explicit) = %q; want an error, not a fallback", got)
	}
	if got, err := Locate(""); err != nil || got != env {
		t.Fatalf("Locate(\"\") = %q, %v; want $%s", got, err, EnvLibrary)
	}
	if c := Candidates(explicit); len(c) != 1 || c[0] != explicit {
		t.Fatalf("Candidates(explicit) = %v; want the explicit path alone", c)
	}
	// Without either, the search places, ./build/lib last.
	t.Setenv(EnvLibrary, "")
	if got, err := Locate(""); err != nil || got != filepath.Join(dir, "build", "lib", LibraryName) {
		t.Fatalf("Locate(\"\") = %q, %v; want ./build/lib", got, err)
	}
	if err := os.MkdirAll(explicit, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Locate(explicit); !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("Locate(a directory) = %v; want ErrLibraryNotFound saying it is a directory", err)
	}

	if Loaded() == "" {
		t.Fatal("Loaded() empty after TestMain's Load")
	}
	if err := Load(Loaded()); err != nil { // already loaded: no-op
		t.Fatal(err)
	}
	if err := Load(""); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.so")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Load(other); err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("Load(another library) after Load = %v; want an error naming it", err)
	}
}

func TestCheckABI(t *testing.T) {
	want := WantABI()
	if want.Version != ABIVersion || len(want.Tables) != len(abiTables) {
		t.Fatalf("WantABI() = %+v", want)
	}
	if got := LoadedABI(); got.String() != want.String() {
		t.Fatalf("the loaded library reports %s, want %s", got, want)
	}
	if err := checkABI("lib.so", want, want); err != nil {
		t.Fatal(err)
	}
	bigger := func(i int) ABI {
		a := ABI{Version: want.Version, Tables: append([]int64(nil), want.Tables...)}
		a.Tables[i]++
		return a
	}
	for _, tc := range []struct {
		name string
		got  ABI
		says []string
	}{
		{"newer", ABI{Version: ABIVersion + 1, Tables: want.Tables}, []string{"lib.so", "ABI version " + strconv.Itoa(ABIVersion+1), "speaks version " + strconv.Itoa(ABIVersion)}},
		{"older", ABI{Version: ABIVersion - 1, Tables: want.Tables}, []string{"ABI version " + strconv.Itoa(ABIVersion-1), "speaks version " + strconv.Itoa(ABIVersion)}},
		{"unary", bigger(2), []string{"lib.so", "unary: the library has " + strconv.FormatInt(want.Tables[2]+1, 10) + " codes, vlp " + strconv.FormatInt(want.Tables[2], 10) + " codes"}},
		{"reduce", bigger(4), []string{"reduce: the library has"}},
		{"fewer tables", ABI{Version: want.Version, Tables: want.Tables[:3]}, []string{"binary: the library has no table", "reduce: the library has no table"}},
		{"more tables", ABI{Version: want.Version, Tables: append(append([]int64(nil), want.Tables...), 4)}, []string{"table 5: the library has 4 codes, vlp no table"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkABI("lib.so", tc.got, want)
			if !errors.Is(err, ErrABIMismatch) {
				t.Fatalf("checkABI = %v; want ErrABIMismatch", err)
			}
			t.Log(err)
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// buildABIStub compiles csrc/abi.cpp alone into a shared library that reports ABI version v:
// a stand-in for a libvlptorch.so built from other sources (it has vlp_abi and nothing else).
func buildABIStub(t *testing.T, v int) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("csrc", "abi.cpp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("no shim source beside the test (%v)", err)
	}
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "g++"
	}
	if _, err := exec.LookPath(cxx); err != nil {
		t.Skipf("no C++ compiler (%s) to build a stand-in library", cxx)
	}
	out := filepath.Join(t.TempDir(), LibraryName)
	cmd := exec.Command(cxx, "-std=c++17", "-shared", "-fPIC", "-DVLP_ABI_VERSION="+strconv.Itoa(v), "-o", out, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	return out
}

// open refuses every library that is not this package's shim, each with an error naming the
// file and saying what is wrong; it changes nothing of the loaded library.
func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.so")
	if err := os.WriteFile(text, []byte("not a shared library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	libc := ""
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			libc = p
			break
		}
	}
	cases := []struct {
		name string
		path string
		is   error
		says []string
	}{
		{"not ELF", text, ErrLibraryOpen, []string{text}},
		{"other version", buildABIStub(t, ABIVersion+41), ErrABIMismatch, []string{"ABI version " + strconv.Itoa(ABIVersion+41), "speaks version " + strconv.Itoa(ABIVersion)}},
		{"same version, no ops", buildABIStub(t, ABIVersion), ErrABIMismatch, []string{"missing symbols: vlp_free_string", "more"}},
	}
	if libc != "" {
		cases = append(cases, struct {
			name string
			path string
			is   error
			says []string
		}{"libc", libc, ErrNotShim, []string{libc, "no vlp_abi"}})
	}
	before := Loaded()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := open(tc.path)
			if !errors.Is(err, tc.is) {
				t.Fatalf("open(%s) = %v; want %v", tc.path, err, tc.is)
			}
			t.Log(err)
			for _, s := range append(tc.says, tc.path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	if Loaded() != before || !fn.ready {
		t.Fatalf("a refused library changed the loaded one: %q -> %q", before, Loaded())
	}
}

// CheckDevice agrees with LibTorch's own build settings about CUDA, and refuses a device index
// past the last device with one line naming it.
func TestCheckDevice(t *testing.T) {
	noErr(t, CheckDevice(CPU))
	cfg, err := BuildConfig()
	noErr(t, err)
	m := regexp.MustCompile(`USE_CUDA=(\w+)`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatalf("LibTorch's build settings name no USE_CUDA:\n%s", cfg)
	}
	built := map[string]bool{"ON": true, "1": true, "True": true, "TRUE": true}[m[1]]
	if CUDABuilt() != built {
		t.Fatalf("CUDABuilt() = %v, LibTorch's build settings say USE_CUDA=%s", CUDABuilt(), m[1])
	}
	n := CUDADeviceCount()
	past := CUDA(n)
	err = CheckDevice(past)
	if !errors.Is(err, ErrDevice) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), past.String()) ||
		!strings.Contains(err.Error(), Loaded()) {
		t.Fatalf("CheckDevice(%s) = %v; want one line of ErrDevice naming the device and the library", past, err)
	}
	switch {
	case !built:
		if !strings.Contains(err.Error(), "built without CUDA") {
			t.Errorf("a CPU-only LibTorch: %v", err)
		}
	case n == 0:
		if !strings.Contains(err.Error(), "sees no device") {
			t.Errorf("CUDA and no device: %v", err)
		}
	default:
		noErr(t, CheckDevice(CUDA(0)))
		if !strings.Contains(err.Error(), "sees "+strconv.Itoa(n)) {
			t.Errorf("a device past the last: %v", err)
		}
	}
	t.Logf("CUDA built %v, %d devices: %v", built, n, err)
}

func TestVersionAndConfig(t *testing.T) {
	v, err := Version()
	if err != nil || v == "" {
		t.Fatalf("version %q %v", v, err)
	}
	cfg, err := BuildConfig()
	if err != nil || !strings.Contains(cfg, "PyTorch built with") {
		t.Fatalf("config %q %v", cfg, err)
	}
	if NumThreads(0) < 1 {
		t.Fatal("no threads")
	}
	t.Logf("LibTorch %s, %d threads, %d CUDA devices", v, NumThreads(0), CUDADeviceCount())
}

// TestNumThreadsBoundsBLAS: setting LibTorch's thread count sets OpenBLAS's pool to the same
// count, so a worker's --threads bounds every thread doing its math (and its bits do not depend on
// the machine's core count). The test runs wherever LibTorch's BLAS is OpenBLAS (Debian's is).
func TestNumThreadsBoundsBLAS(t *testing.T) {
	if BLASThreads() < 0 {
		t.Skip("LibTorch's BLAS here is not OpenBLAS: no pool to bound")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer NumThreads(NumThreads(0))
	for _, n := range []int{1, 3, 2} {
		if got := NumThreads(n); got != n {
			t.Fatalf("NumThreads(%d) = %d", n, got)
		}
		if got := BLASThreads(); got != n {
			t.Errorf("after NumThreads(%d), OpenBLAS runs %d threads", n, got)
		}
	}
}
