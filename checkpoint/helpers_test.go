package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// testSnapshot builds a deterministic snapshot from seed covering every dtype,
// a scalar, an empty tensor and a float32 tensor of about paramBytes bytes.
func testSnapshot(seed, step int64, paramBytes int) *Snapshot {
	r := rand.New(rand.NewSource(seed))
	rows := int64(max(paramBytes/(64*4), 1))
	s := &Snapshot{
		Meta: Meta{
			Step:  step,
			Epoch: step / 100,
			Cursors: []json.RawMessage{
				json.RawMessage(fmt.Sprintf(`{"unit":%d,"offset":3}`, seed)),
				json.RawMessage(fmt.Sprintf(`{"unit":%d,"offset":7}`, seed+1)),
			},
			JobSpec:   json.RawMessage(`{"name":"test","preset":"tiny","seed":42}`),
			Checksums: map[string]string{"vocab.txt": "sha256:abc", "classes.json": "sha256:def"},
		},
		Params: []Tensor{
			randTensor(r, "embed.weight", Float32, rows, 64),
			randTensor(r, "ln.weight", Float16, 7),
			randTensor(r, "ln.bias", BFloat16, 3, 5),
			randTensor(r, "steps", Int64, 4),
			randTensor(r, "mask", Bool, 2, 3),
			randTensor(r, "scalar", Float32),
			randTensor(r, "empty", Float32, 0, 4),
			randTensor(r, "wide", Float64, 2, 2),
			randTensor(r, "ids", Int32, 3),
			randTensor(r, "pixels", Uint8, 5),
		},
		Optimizer: []Tensor{
			randTensor(r, "embed.weight.exp_avg", Float32, rows, 64),
			randTensor(r, "step", Int64),
		},
	}
	rng := make([]byte, 5056)
	r.Read(rng)
	s.RNG = []Tensor{Blob("cpu", rng)}
	return s
}

// randTensor fills a tensor with random finite values of its dtype.
func randTensor(r *rand.Rand, name string, dt DType, shape ...int64) Tensor {
	t := Tensor{Name: name, DType: dt, Shape: shape}
	n := int(t.NumElements())
	t.Data = make([]byte, n*dt.Size())
	le := binary.LittleEndian
	for i := 0; i < n; i++ {
		switch dt {
		case Float32:
			le.PutUint32(t.Data[4*i:], math.Float32bits(float32(r.NormFloat64())))
		case Float64:
			le.PutUint64(t.Data[8*i:], math.Float64bits(r.NormFloat64()*1e10))
		case Float16:
			sign, exp, frac := uint16(r.Intn(2)), uint16(r.Intn(31)), uint16(r.Intn(1024))
			le.PutUint16(t.Data[2*i:], sign<<15|exp<<10|frac)
		case BFloat16:
			le.PutUint16(t.Data[2*i:], uint16(math.Float32bits(float32(r.NormFloat64()*1000))>>16))
		case Int64:
			le.PutUint64(t.Data[8*i:], uint64(r.Int63()-r.Int63()))
		case Int32:
			le.PutUint32(t.Data[4*i:], uint32(r.Int31()-r.Int31()))
		case Int16:
			le.PutUint16(t.Data[2*i:], uint16(r.Intn(1<<16)))
		case Int8, Uint8:
			t.Data[i] = byte(r.Intn(256))
		case Bool:
			t.Data[i] = byte(r.Intn(2))
		}
	}
	return t
}

// requireSameSnapshot fails unless got holds exactly want's meta and tensors.
func requireSameSnapshot(t *testing.T, want, got *Snapshot) {
	t.Helper()
	if got.Meta.Step != want.Meta.Step || got.Meta.Epoch != want.Meta.Epoch {
		t.Fatalf("step/epoch = %d/%d, want %d/%d", got.Meta.Step, got.Meta.Epoch, want.Meta.Step, want.Meta.Epoch)
	}
	if len(got.Meta.Cursors) != len(want.Meta.Cursors) {
		t.Fatalf("%d cursors, want %d", len(got.Meta.Cursors), len(want.Meta.Cursors))
	}
	for i := range want.Meta.Cursors {
		if !jsonEqual(t, got.Meta.Cursors[i], want.Meta.Cursors[i]) {
			t.Fatalf("cursor %d = %s, want %s", i, got.Meta.Cursors[i], want.Meta.Cursors[i])
		}
	}
	if !jsonEqual(t, got.Meta.JobSpec, want.Meta.JobSpec) {
		t.Fatalf("job spec = %s, want %s", got.Meta.JobSpec, want.Meta.JobSpec)
	}
	if fmt.Sprint(got.Meta.Checksums) != fmt.Sprint(want.Meta.Checksums) {
		t.Fatalf("checksums = %v, want %v", got.Meta.Checksums, want.Meta.Checksums)
	}
	for _, g := range Groups {
		w, h := want.group(g), got.group(g)
		if len(w) != len(h) {
			t.Fatalf("%s: %d tensors, want %d", g, len(h), len(w))
		}
		for i := range w {
			if h[i].Name != w[i].Name || h[i].DType != w[i].DType || fmt.Sprint(h[i].Shape) != fmt.Sprint(w[i].Shape) {
				t.Fatalf("%s[%d] = %s %s %v, want %s %s %v", g, i, h[i].Name, h[i].DType, h[i].Shape, w[i].Name, w[i].DType, w[i].Shape)
			}
			if !bytes.Equal(h[i].Data, w[i].Data) {
				t.Fatalf("%s tensor %q: data differs", g, w[i].Name)
			}
		}
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// openTest opens a store in a fresh directory and closes it at cleanup.
func openTest(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := t.TempDir() + "/ckpt.db"
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustSave(t *testing.T, s *Store, snap *Snapshot) Info {
	t.Helper()
	in, err := s.Save(snap)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
