package model

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
)

// writeResNet makes Python save a torchvision ResNet state dict (random
// init, seeded) as an OrderedDict or a plain dict, and returns the path and
// every tensor's shape, sum and first value.
func writeResNet(t *testing.T, arch string, asDict bool) (string, map[string]struct {
	Shape []int64 `json:"shape"`
	Sum   float64 `json:"sum"`
	First float64 `json:"first"`
}) {
	t.Helper()
	path := filepath.Join(t.TempDir(), arch+".pth")
	script := `
import json, sys, torch, torchvision
torch.manual_seed(0)
arch, path, as_dict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
sd = getattr(torchvision.models, arch)().state_dict()
for k, v in sd.items():
    if v.is_floating_point():
        v.add_(torch.randn_like(v) * 0.01)  # BN stats and affines non-trivial
if as_dict:
    sd = dict(sd)
torch.save(sd, path)
out = {k: {"shape": list(v.shape), "sum": float(v.double().sum()), "first": float(v.reshape(-1)[0])}
       for k, v in sd.items() if v.is_floating_point()}
json.dump(out, sys.stdout)
`
	flag := "0"
	if asDict {
		flag = "1"
	}
	var want map[string]struct {
		Shape []int64 `json:"shape"`
		Sum   float64 `json:"sum"`
		First float64 `json:"first"`
	}
	if err := json.Unmarshal(runPython(t, nil, "-c", script, arch, path, flag), &want); err != nil {
		t.Fatal(err)
	}
	return path, want
}

func TestReadStateDict(t *testing.T) {
	for _, tc := range []struct {
		arch   string
		asDict bool
	}{{"resnet18", false}, {"resnet50", true}} {
		t.Run(tc.arch, func(t *testing.T) {
			path, want := writeResNet(t, tc.arch, tc.asDict)
			sd, err := ReadStateDict(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(sd) != len(want) {
				t.Fatalf("read %d float tensors, file has %d", len(sd), len(want))
			}
			for name, w := range want {
				h, ok := sd[name]
				if !ok {
					t.Fatalf("missing %s", name)
				}
				if !sameShape(h.Shape, w.Shape) {
					t.Fatalf("%s: shape %v, want %v", name, h.Shape, w.Shape)
				}
				sum := 0.0
				for _, v := range h.Data {
					sum += float64(v)
				}
				if math.Abs(sum-w.Sum) > 1e-4*math.Max(1, math.Abs(w.Sum)) || float64(h.Data[0]) != w.First {
					t.Fatalf("%s: sum %v first %v, want %v %v", name, sum, h.Data[0], w.Sum, w.First)
				}
			}
		})
	}
}

func TestReadStateDictErrors(t *testing.T) {
	if _, err := ReadStateDict(filepath.Join(t.TempDir(), "missing.pth")); err == nil {
		t.Fatal("missing file accepted")
	}
}
