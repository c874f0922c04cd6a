package checkpoint

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"testing"
	"time"
)

// benchBytes is the size of the benchmarked checkpoints: 256 MiB of float32
// tensors, 32 of 8 MiB, about the parameters and AdamW moments of a 20M
// parameter model.
const benchBytes = 256 << 20

func benchSnapshot() *Snapshot {
	r := rand.New(rand.NewSource(1))
	s := &Snapshot{Meta: Meta{Step: 1}}
	per := benchBytes / 32
	for i := 0; i < 32; i++ {
		data := make([]byte, per)
		r.Read(data)
		s.Params = append(s.Params, Tensor{Name: fmt.Sprintf("layer%02d.weight", i), DType: Float32, Shape: []int64{int64(per / 4096), 1024}, Data: data})
	}
	return s
}

// BenchmarkSave measures a synchronous checkpoint write, commit and fsync
// included, with retention deleting the oldest checkpoint in the same
// transaction once the store is full.
func BenchmarkSave(b *testing.B) {
	path := b.TempDir() + "/bench.db"
	s, err := Open(path, Options{Keep: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	snap := benchSnapshot()
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap.Meta.Step = int64(i)
		if _, err := s.Save(snap); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// How large the file grows with Keep 2: freed pages are reused, so it
	// settles near (Keep+1) checkpoints.
	if st, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(st.Size())/benchBytes, "file/ckpt")
	}
}

// BenchmarkWriterSave measures the background writer: how long Save blocks
// the caller (the training stall the store adds beyond the host copy) and
// how long until the checkpoint is durable.
func BenchmarkWriterSave(b *testing.B) {
	s, err := Open(b.TempDir()+"/bench.db", Options{Keep: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	w := NewWriter(s)
	snap := benchSnapshot()
	ctx := context.Background()
	b.SetBytes(benchBytes)
	var handover time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap.Meta.Step = int64(i)
		began := time.Now()
		done, err := w.Save(ctx, snap)
		handover += time.Since(began)
		if err != nil {
			b.Fatal(err)
		}
		if r := <-done; r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.ReportMetric(float64(handover.Microseconds())/float64(b.N), "µs-blocked/op")
}

func benchStore(b *testing.B) (*Store, uint64) {
	b.Helper()
	path := b.TempDir() + "/bench.db"
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	in, err := s.Save(benchSnapshot())
	if err != nil {
		b.Fatal(err)
	}
	return s, in.ID
}

// BenchmarkLoad measures reading a checkpoint back with every tensor copied
// out and checked against its sha256 (the file is in the page cache).
func BenchmarkLoad(b *testing.B) {
	s, id := benchStore(b)
	defer s.Close()
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Load(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures verification in place, without copying.
func BenchmarkVerify(b *testing.B) {
	s, id := benchStore(b)
	defer s.Close()
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Verify(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExportPyTorch measures writing the PyTorch file to memory.
func BenchmarkExportPyTorch(b *testing.B) {
	s, id := benchStore(b)
	defer s.Close()
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.ExportPyTorch(discard{}, id, ExportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkOpen measures opening a store that holds two 256 MiB checkpoints
// after a third was retired: bbolt rebuilds its freelist from the page tree
// (NoFreelistSync) and the store checks its format.
func BenchmarkOpen(b *testing.B) {
	path := b.TempDir() + "/bench.db"
	s, err := Open(path, Options{Keep: 2})
	if err != nil {
		b.Fatal(err)
	}
	snap := benchSnapshot()
	for i := 0; i < 3; i++ {
		if _, err := s.Save(snap); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
