package model

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

func readFloats(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// TestLoadResNetMatchesTorchvision loads torchvision ResNet state dicts
// (saved by Python as an OrderedDict and as a plain dict) into the
// backbone and checks that C5 equals torchvision's own forward in eval mode
// (frozen BatchNorm uses the running statistics, as eval does).
func TestLoadResNetMatchesTorchvision(t *testing.T) {
	needTorch(t)
	for _, tc := range []struct {
		arch   string
		depth  int
		asDict string
	}{{"resnet18", 18, "0"}, {"resnet50", 50, "1"}} {
		t.Run(tc.arch, func(t *testing.T) {
			dir := t.TempDir()
			script := `
import sys, torch, torchvision
arch, d, as_dict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
torch.manual_seed(0)
m = getattr(torchvision.models, arch)()
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):  # non-trivial statistics and affines
        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
        mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.1, 0.1)
m.eval()
sd = m.state_dict()
torch.save(dict(sd) if as_dict else sd, d + "/w.pth")
x = torch.randn(2, 3, 64, 96)
with torch.no_grad():
    y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    y = m.layer4(m.layer3(m.layer2(m.layer1(y))))
x.numpy().astype("<f4").tofile(d + "/x.bin")
y.numpy().astype("<f4").tofile(d + "/y.bin")
print(list(y.shape))
`
			runPython(t, nil, "-c", script, tc.arch, dir, tc.asDict)
			c := smallHead(Base())
			c.ResNetDepth = tc.depth
			m, err := New(c, 1, torch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			n, err := m.LoadResNet(filepath.Join(dir, "w.pth"))
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, p := range m.Params() {
				if Component(p.Name) == "backbone" {
					want++
				}
			}
			if n != want {
				t.Fatalf("loaded %d tensors, the backbone has %d", n, want)
			}
			s := torch.NewScope()
			defer s.Close()
			x := torch.FromFloat32(s, readFloats(t, filepath.Join(dir, "x.bin")), []int64{2, 3, 64, 96}, torch.CPU)
			var got []float32
			torch.NoGrad(func() {
				got, err = m.Backbone.forward(&fwd{s: s}, x).Float32s() // [2,C5,2,3]
			})
			if err != nil {
				t.Fatal(err)
			}
			ref := readFloats(t, filepath.Join(dir, "y.bin"))
			if len(got) != len(ref) {
				t.Fatalf("C5 has %d values, torchvision %d", len(got), len(ref))
			}
			var maxRef, maxDiff float64
			for i := range ref {
				maxRef = math.Max(maxRef, math.Abs(float64(ref[i])))
				maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-ref[i])))
			}
			if maxDiff > 1e-4*maxRef {
				t.Fatalf("C5 differs from torchvision: max |Δ| %.3g, max |ref| %.3g", maxDiff, maxRef)
			}
		})
	}
}

func TestLoadResNetRejectsMismatch(t *testing.T) {
	needTorch(t)
	path, _ := writeResNet(t, "resnet18", false)
	c := smallHead(Base()) // ResNet-50: every shape differs from ResNet-18's
	m, err := New(c, 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.LoadResNet(path); err == nil {
		t.Fatal("a ResNet-18 file loaded into ResNet-50")
	}
}

// smallHead keeps c's backbone and shrinks everything else, for tests
// about the backbone alone.
func smallHead(c Config) Config {
	c.DModel, c.Heads, c.FFN, c.EncoderLayers, c.DecoderLayers = 32, 2, 32, 1, 1
	c.VocabSize, c.NumClasses, c.NumAttributes, c.NumQueries = 16, 2, 2, 2
	return c
}
