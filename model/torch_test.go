package model

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

var loadOnce sync.Once
var loadErr error

// needTorch loads the shim: $VLP_TORCH_LIB, else the repository's
// build/lib/libvlptorch.so (make lib builds it).
func needTorch(t testing.TB) {
	t.Helper()
	loadOnce.Do(func() {
		path := os.Getenv("VLP_TORCH_LIB")
		if path == "" {
			path, _ = filepath.Abs("../build/lib/libvlptorch.so")
		}
		loadErr = torch.Load(path)
	})
	if loadErr != nil {
		t.Fatalf("LibTorch shim: %v (run make lib)", loadErr)
	}
}

// int64s reads a tensor to the host or fails the test.
func int64s(t *testing.T, x *torch.Tensor) []int64 {
	t.Helper()
	v, err := x.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
