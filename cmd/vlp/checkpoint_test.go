package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/checkpoint"
)

// cliSnapshot is a small state whose parameter "w" holds 0, 1, 2, … scaled
// by scale, so a loaded value identifies its checkpoint.
func cliSnapshot(step int64, scale float32) *checkpoint.Snapshot {
	w, m := make([]byte, 4*6*8), make([]byte, 4*6*8)
	for i := 0; i < 48; i++ {
		binary.LittleEndian.PutUint32(w[4*i:], math.Float32bits(float32(i)*scale))
		binary.LittleEndian.PutUint32(m[4*i:], math.Float32bits(-float32(i)*scale))
	}
	b := make([]byte, 8*3)
	for i := 0; i < 3; i++ {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(step*10+int64(i)))
	}
	return &checkpoint.Snapshot{
		Meta: checkpoint.Meta{
			Step: step, Epoch: 1,
			Cursors: []json.RawMessage{json.RawMessage(`{"unit":4}`)},
			JobSpec: json.RawMessage(`{"name":"cli"}`),
		},
		Params: []checkpoint.Tensor{
			{Name: "w", DType: checkpoint.Float32, Shape: []int64{6, 8}, Data: w},
			{Name: "b", DType: checkpoint.Int64, Shape: []int64{3}, Data: b},
		},
		Optimizer: []checkpoint.Tensor{{Name: "w.exp_avg", DType: checkpoint.Float32, Shape: []int64{6, 8}, Data: m}},
		RNG:       []checkpoint.Tensor{checkpoint.Blob("cpu", []byte("rng state"))},
	}
}

func TestCheckpointCommand(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "ckpt.db")
	s, err := checkpoint.Open(store, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, second := cliSnapshot(100, 1), cliSnapshot(200, 3)
	for _, snap := range []*checkpoint.Snapshot{first, second} {
		if _, err := s.Save(snap); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	out, errOut, ok := runVLP(t, bin, "checkpoint", "ls", "--store", store)
	if !ok || !strings.Contains(out, "100") || !strings.Contains(out, "200") {
		t.Fatalf("ls: ok=%v\n%s%s", ok, out, errOut)
	}
	t.Logf("ls:\n%s", out)

	out, errOut, ok = runVLP(t, bin, "checkpoint", "inspect", "--store", store, "--json")
	var in checkpoint.Info
	if !ok || json.Unmarshal([]byte(out), &in) != nil {
		t.Fatalf("inspect --json: ok=%v\n%s%s", ok, out, errOut)
	}
	var cursor bytes.Buffer
	if len(in.Meta.Cursors) == 1 {
		json.Compact(&cursor, in.Meta.Cursors[0])
	}
	if in.Step() != 200 || len(in.Tensors) != 4 || cursor.String() != `{"unit":4}` {
		t.Fatalf("inspect: %+v", in)
	}
	out, _, ok = runVLP(t, bin, "checkpoint", "inspect", "--store", store, "--id", "1")
	if !ok || !strings.Contains(out, "step:      100") || !strings.Contains(out, "w.exp_avg") {
		t.Fatalf("inspect --id 1:\n%s", out)
	}

	out, errOut, ok = runVLP(t, bin, "checkpoint", "verify", "--store", store)
	if !ok || strings.Count(out, ": ok") != 2 || !strings.Contains(out, "latest verified: checkpoint 2") {
		t.Fatalf("verify: ok=%v\n%s%s", ok, out, errOut)
	}

	model := filepath.Join(dir, "model.pt")
	out, errOut, ok = runVLP(t, bin, "checkpoint", "export", "--store", store, "--format", "pytorch", "--out", model)
	if !ok || !strings.Contains(out, "checkpoint 2 (step 200)") {
		t.Fatalf("export: ok=%v\n%s%s", ok, out, errOut)
	}
	if got := torchValue(t, model); got != "w 3.0 141.0 b 2000" {
		t.Fatalf("torch.load of the export: %q", got)
	}

	// Flip a byte of the latest checkpoint's "w" where it lies in the file.
	file, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	needle := second.Params[0].Data[4:64]
	at := bytes.Index(file, needle)
	if at < 0 || bytes.Count(file, needle) != 1 {
		t.Fatal("the latest tensor is not in the file exactly once")
	}
	file[at+8] ^= 0x40
	if err := os.WriteFile(store, file, 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, ok = runVLP(t, bin, "checkpoint", "verify", "--store", store)
	if ok || !strings.Contains(out, "checkpoint 2: FAILED") || !strings.Contains(out, `"w"`) ||
		!strings.Contains(out, "latest verified: checkpoint 1") || !strings.Contains(errOut, "failed verification") {
		t.Fatalf("verify of a corrupt store: ok=%v\n%s%s", ok, out, errOut)
	}
	t.Logf("verify:\n%s%s", out, errOut)

	out, errOut, ok = runVLP(t, bin, "checkpoint", "export", "--store", store, "--out", model)
	if !ok || !strings.Contains(out, "checkpoint 1 (step 100)") || !strings.Contains(errOut, "skipped") {
		t.Fatalf("export with a corrupt latest: ok=%v\n%s%s", ok, out, errOut)
	}
	if got := torchValue(t, model); got != "w 1.0 47.0 b 1000" {
		t.Fatalf("torch.load of the fallback export: %q", got)
	}
	_, errOut, ok = runVLP(t, bin, "checkpoint", "export", "--store", store, "--id", "2", "--out", filepath.Join(dir, "bad.pt"))
	if ok || !strings.Contains(errOut, "corrupt") {
		t.Fatalf("export --id of a corrupt checkpoint: ok=%v %s", ok, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.pt")); !os.IsNotExist(err) {
		t.Fatalf("a failed export left a file: %v", err)
	}

	// Bad input: a missing store, a truncated one.
	_, errOut, ok = runVLP(t, bin, "checkpoint", "ls", "--store", filepath.Join(dir, "nope.db"))
	if ok || !strings.Contains(errOut, "nope.db") || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("ls of a missing store: ok=%v %s", ok, errOut)
	}
	if err := os.WriteFile(store, file[:3*4096], 0o600); err != nil { // fewer pages than any store uses
		t.Fatal(err)
	}
	_, errOut, ok = runVLP(t, bin, "checkpoint", "verify", "--store", store)
	if ok || !strings.Contains(errOut, "truncated") || !strings.Contains(errOut, store) {
		t.Fatalf("verify of a truncated store: ok=%v %s", ok, errOut)
	}
}

// torchValue loads a state dict in Python and prints w[0][1], w[-1][-1] and
// b[0] sum-style, e.g. "w 3.0 141.0 b 2000".
func torchValue(t *testing.T, path string) string {
	t.Helper()
	py := os.Getenv("VLP_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	script := `import sys, torch
sd = torch.load(sys.argv[1])
assert list(sd.keys()) == ["w", "b"], list(sd.keys())
w, b = sd["w"], sd["b"]
assert w.shape == (6, 8) and w.dtype == torch.float32 and b.dtype == torch.int64
print("w", w[0][1].item(), w[-1][-1].item(), "b", b[0].item())`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", py, err, out)
	}
	return strings.TrimSpace(string(out))
}
