package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// torchLoadScript loads a file with torch.load and prints, as JSON, the
// container type, the key order and every tensor's dtype, shape, stride and
// values (floats widened to double, which is exact for every float dtype).
const torchLoadScript = `
import json, sys, torch
sd = torch.load(sys.argv[1])
out = {"type": type(sd).__module__ + "." + type(sd).__name__, "keys": list(sd.keys()), "tensors": {}}
for k, t in sd.items():
    e = {"dtype": str(t.dtype), "shape": list(t.shape), "stride": list(t.stride()),
         "contiguous": t.is_contiguous()}
    if t.is_floating_point():
        e["values"] = t.flatten().double().tolist()
    else:
        e["values"] = t.flatten().tolist()
    out["tensors"][k] = e
print(json.dumps(out))
`

// python returns the interpreter that has torch: $VLP_PYTHON, else
// /usr/bin/python3.
func python() string {
	if p := os.Getenv("VLP_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

type torchTensor struct {
	DType      string            `json:"dtype"`
	Shape      []int64           `json:"shape"`
	Stride     []int64           `json:"stride"`
	Contiguous bool              `json:"contiguous"`
	Values     []json.RawMessage `json:"values"`
}

type torchFile struct {
	Type    string                 `json:"type"`
	Keys    []string               `json:"keys"`
	Tensors map[string]torchTensor `json:"tensors"`
}

// torchLoad runs torch.load on path in Python and returns what it found.
func torchLoad(t *testing.T, path string) torchFile {
	t.Helper()
	script := filepath.Join(t.TempDir(), "load.py")
	writeFile(t, script, []byte(torchLoadScript))
	cmd := exec.Command(python(), script, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", python(), script, err, stderr.String())
	}
	var f torchFile
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("python output: %v\n%.500s", err, out)
	}
	return f
}

// expectedValues decodes tensor bytes into what Python's tolist prints.
func expectedValues(tn Tensor) []any {
	n := int(tn.NumElements())
	le := binary.LittleEndian
	out := make([]any, n)
	for i := 0; i < n; i++ {
		switch tn.DType {
		case Float32:
			out[i] = float64(math.Float32frombits(le.Uint32(tn.Data[4*i:])))
		case Float64:
			out[i] = math.Float64frombits(le.Uint64(tn.Data[8*i:]))
		case Float16:
			out[i] = halfToFloat(le.Uint16(tn.Data[2*i:]))
		case BFloat16:
			out[i] = float64(math.Float32frombits(uint32(le.Uint16(tn.Data[2*i:])) << 16))
		case Int64:
			out[i] = int64(le.Uint64(tn.Data[8*i:]))
		case Int32:
			out[i] = int64(int32(le.Uint32(tn.Data[4*i:])))
		case Int16:
			out[i] = int64(int16(le.Uint16(tn.Data[2*i:])))
		case Int8:
			out[i] = int64(int8(tn.Data[i]))
		case Uint8:
			out[i] = int64(tn.Data[i])
		case Bool:
			out[i] = tn.Data[i] != 0
		}
	}
	return out
}

// halfToFloat widens an IEEE half (finite values only) to float64.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h>>15 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	if exp == 0 {
		return sign * math.Ldexp(frac, -24)
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// checkTorchTensor compares what torch loaded with the tensor exported.
func checkTorchTensor(t *testing.T, name string, got torchTensor, want Tensor) {
	t.Helper()
	if got.DType != "torch."+string(want.DType) {
		t.Errorf("%s: dtype %s, want torch.%s", name, got.DType, want.DType)
	}
	if fmt.Sprint(got.Shape) != fmt.Sprint(append([]int64{}, want.Shape...)) {
		t.Errorf("%s: shape %v, want %v", name, got.Shape, want.Shape)
	}
	if !got.Contiguous {
		t.Errorf("%s: not contiguous, stride %v", name, got.Stride)
	}
	exp := expectedValues(want)
	if len(got.Values) != len(exp) {
		t.Fatalf("%s: %d values, want %d", name, len(got.Values), len(exp))
	}
	for i, raw := range got.Values {
		var ok bool
		switch e := exp[i].(type) {
		case float64:
			var v float64
			ok = json.Unmarshal(raw, &v) == nil && v == e
		case int64:
			var v int64
			ok = json.Unmarshal(raw, &v) == nil && v == e
		case bool:
			var v bool
			ok = json.Unmarshal(raw, &v) == nil && v == e
		}
		if !ok {
			t.Fatalf("%s[%d] = %s, want %v", name, i, raw, exp[i])
		}
	}
}

func TestExportPyTorchLoadsInTorch(t *testing.T) {
	s, _ := openTest(t, Options{ChunkSize: 4096})
	snap := testSnapshot(7, 70, 40_000) // embed.weight spans several chunks
	id := mustSave(t, s, snap).ID

	for _, tc := range []struct {
		name   string
		groups []Group
	}{
		{"state dict", nil},
		{"every group", []Group{GroupParams, GroupOptimizer, GroupRNG}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "model.pt")
			f, err := os.Create(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ExportPyTorch(f, id, ExportOptions{Groups: tc.groups}); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			checkAligned(t, out)

			var want []Tensor
			var names []string
			groups := tc.groups
			if groups == nil {
				groups = []Group{GroupParams}
			}
			for _, g := range groups {
				for _, tn := range snap.group(g) {
					name := tn.Name
					if len(groups) > 1 {
						name = string(g) + "/" + name
					}
					want = append(want, tn)
					names = append(names, name)
				}
			}
			got := torchLoad(t, out)
			if got.Type != "collections.OrderedDict" {
				t.Errorf("torch.load returned %s, want collections.OrderedDict", got.Type)
			}
			if fmt.Sprint(got.Keys) != fmt.Sprint(names) {
				t.Fatalf("keys %v, want %v", got.Keys, names)
			}
			for i, tn := range want {
				checkTorchTensor(t, names[i], got.Tensors[names[i]], tn)
			}
		})
	}
}

// checkAligned checks that every tensor entry's bytes start on a 64-byte
// boundary of the file and are stored uncompressed.
func checkAligned(t *testing.T, path string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want store", f.Name, f.Method)
		}
		if !strings.Contains(f.Name, "/data/") {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%exportAlign != 0 {
			t.Errorf("%s: data at offset %d, not %d-aligned", f.Name, off, exportAlign)
		}
	}
}

func TestExportRefusesACorruptCheckpoint(t *testing.T) {
	s, path := openTest(t, Options{})
	snap := testSnapshot(1, 10, 64<<10)
	id := mustSave(t, s, snap).ID
	s.Close()
	flipInFile(t, path, id, snap)
	s2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var buf bytes.Buffer
	err = s2.ExportPyTorch(&buf, id, ExportOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"embed.weight"`) {
		t.Fatalf("export of a corrupt checkpoint = %v, want ErrCorrupt naming the tensor", err)
	}
}

func TestPicklerInts(t *testing.T) {
	// Each integer in the encoding pickle protocol 2 uses for it.
	for _, tc := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{'K', 0}},
		{255, []byte{'K', 255}},
		{256, []byte{'M', 0, 1}},
		{65535, []byte{'M', 255, 255}},
		{65536, []byte{'J', 0, 0, 1, 0}},
		{-1, []byte{'J', 255, 255, 255, 255}},
		{1 << 40, []byte{0x8a, 8, 0, 0, 0, 0, 0, 1, 0, 0}},
		{-1 << 40, []byte{0x8a, 8, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff}},
	} {
		var p pickler
		p.int(tc.v)
		if !bytes.Equal(p.b.Bytes(), tc.want) {
			t.Errorf("int(%d) = % x, want % x", tc.v, p.b.Bytes(), tc.want)
		}
	}
}

func TestContiguousStrides(t *testing.T) {
	for _, tc := range []struct{ shape, want []int64 }{
		{[]int64{}, []int64{}},
		{[]int64{5}, []int64{1}},
		{[]int64{2, 3, 4}, []int64{12, 4, 1}},
		{[]int64{2, 0, 3}, []int64{3, 3, 1}},
		{[]int64{2, 1, 3}, []int64{3, 3, 1}},
	} {
		if got := contiguousStrides(tc.shape); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("strides(%v) = %v, want %v", tc.shape, got, tc.want)
		}
	}
}
