package torch

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// dev is where the tests put their tensors: $VLP_TEST_DEVICE (cpu, cuda, cuda:N), default cpu.
var dev = CPU

// TestMain loads the real shim: $VLP_TORCH_LIB, else ../build/lib/libvlptorch.so. Without it
// the tests fail (they do not skip): the binding is the thing under test.
func TestMain(m *testing.M) {
	path := os.Getenv(EnvLibrary)
	if path == "" {
		path, _ = filepath.Abs(filepath.Join("..", "build", "lib", LibraryName))
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the torch tests need %s: run `make lib` (or set %s)\n", path, EnvLibrary)
		os.Exit(1)
	}
	if err := Load(path); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: loading %s: %v (run `make lib`)\n", path, err)
		os.Exit(1)
	}
	if d := os.Getenv("VLP_TEST_DEVICE"); d != "" {
		var err error
		if dev, err = ParseDevice(d); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			os.Exit(1)
		}
		if dev.IsCUDA() && dev.Index() >= CUDADeviceCount() {
			fmt.Fprintf(os.Stderr, "FAIL: VLP_TEST_DEVICE=%s but LibTorch sees %d CUDA devices\n", d, CUDADeviceCount())
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// scope opens a scope closed at the end of the test, checking no error was left unreported.
func scope(t testing.TB) *Scope {
	t.Helper()
	s := NewScope()
	t.Cleanup(s.Close)
	return s
}

// f32 builds a float32 tensor on the test device.
func f32(s *Scope, data []float32, shape ...int64) *Tensor { return FromFloat32(s, data, shape, dev) }

// f64s builds a float64 tensor on the test device.
func f64t(s *Scope, data []float64, shape ...int64) *Tensor { return FromFloat64(s, data, shape, dev) }

func i64t(s *Scope, data []int64, shape ...int64) *Tensor { return FromInt64(s, data, shape, dev) }

// must unwraps (v, err), panicking on err: a failed test that names the error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

// vals reads a float tensor as float64s (any float dtype, any device).
func vals(t testing.TB, x *Tensor) []float64 {
	t.Helper()
	if err := x.Err(); err != nil {
		t.Fatal(err)
	}
	s := NewScope()
	defer s.Close()
	v, err := s.Use(x).ToDtype(Float64).Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ints(t testing.TB, x *Tensor) []int64 {
	t.Helper()
	if err := x.Err(); err != nil {
		t.Fatal(err)
	}
	v, err := x.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func bools(t testing.TB, x *Tensor) []bool {
	t.Helper()
	if err := x.Err(); err != nil {
		t.Fatal(err)
	}
	v, err := x.Bools()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// near checks got against want elementwise within tol (absolute plus relative).
func near(t testing.TB, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v (all: %v vs %v)", what, i, got[i], want[i], got, want)
		}
	}
}

func shapeIs(t testing.TB, x *Tensor, want ...int64) {
	t.Helper()
	if err := x.Err(); err != nil {
		t.Fatal(err)
	}
	got := x.Shape()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("shape %v, want %v", got, want)
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
