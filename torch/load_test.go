package torch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no ./build/lib here
	t.Setenv(EnvLibrary, filepath.Join(dir, "env", LibraryName))
	explicit := filepath.Join(dir, "flag", LibraryName)
	_, err := Locate(explicit)
	if !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("want ErrLibraryNotFound, got %v", err)
	}
	for _, want := range []string{explicit, filepath.Join(dir, "env", LibraryName), filepath.Join(dir, "build", "lib", LibraryName), "make lib"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// order: the flag wins over the environment
	for _, p := range []string{explicit, filepath.Join(dir, "env", LibraryName)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Locate(explicit); err != nil || got != explicit {
		t.Fatalf("Locate = %q, %v; want the flag's path", got, err)
	}
	if got, err := Locate(""); err != nil || got != filepath.Join(dir, "env", LibraryName) {
		t.Fatalf("Locate(\"\") = %q, %v; want $%s", got, err, EnvLibrary)
	}
	if Loaded() == "" {
		t.Fatal("Loaded() empty after TestMain's Load")
	}
	if err := Load(explicit); err != nil { // already loaded: no-op
		t.Fatal(err)
	}
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
