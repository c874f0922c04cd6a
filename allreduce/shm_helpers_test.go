package allreduce

import (
	"os"
	"runtime"
	"testing"
)

// shmTestDir is a directory of its own under /dev/shm, removed at cleanup:
// the tests use real shared memory without meeting other jobs' files.
func shmTestDir(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the shm transport needs Linux")
	}
	dir, err := os.MkdirTemp("/dev/shm", "vlp-allreduce-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// shmTransports makes every rank's shared-memory transport of gen, in a test
// directory unless cfg names one.
func shmTransports(t testing.TB, gen Generation, cfg ShmConfig) []Transport {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = shmTestDir(t)
	}
	ts := make([]Transport, gen.Size())
	for i := range ts {
		tr, err := NewShmTransport(gen, i, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
	}
	return ts
}
