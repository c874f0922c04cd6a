package data

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// resizeOracle is PyTorch's antialiased bilinear resize (the filter
// torchvision's Resize applies to tensors with antialias=True, and PIL to
// images), then ImageNet normalisation.
const resizeOracle = `
import sys, numpy as np, torch, torch.nn.functional as F
mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
for arg in sys.argv[1:]:  # src,w,h,tw,th,dst per case
    src, w, h, tw, th, dst = arg.split(",")
    w, h, tw, th = int(w), int(h), int(tw), int(th)
    x = torch.from_numpy(np.fromfile(src, dtype=np.uint8).reshape(h, w, 3).astype(np.float32)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)[0] / 255.0
    ((y - mean) / std).contiguous().numpy().astype("<f4").tofile(dst)
`

func TestResizeMatchesPyTorch(t *testing.T) {
	py := os.Getenv("VLP_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "oracle.py")
	if err := os.WriteFile(script, []byte(resizeOracle), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := [][4]int{
		{97, 61, 40, 30},     // shrink ~2.4×
		{64, 48, 64, 48},     // identity
		{50, 40, 123, 77},    // enlarge
		{640, 480, 384, 384}, // the 384 px setting
		{90, 70, 61, 20},     // different factors per axis
	}
	// One interpreter for every case: starting torch takes seconds.
	srcs := make([]*RGB, len(cases))
	args := []string{script}
	for k, c := range cases {
		w, h, tw, th := c[0], c[1], c[2], c[3]
		srcs[k] = &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)}
		for i := range srcs[k].Pix {
			srcs[k].Pix[i] = uint8(mix64(uint64(i)*7919+uint64(k)) >> 56)
		}
		in := filepath.Join(dir, "in"+strconv.Itoa(k)+".raw")
		if err := os.WriteFile(in, srcs[k].Pix, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, strings.Join([]string{in, strconv.Itoa(w), strconv.Itoa(h), strconv.Itoa(tw), strconv.Itoa(th),
			filepath.Join(dir, "out"+strconv.Itoa(k)+".raw")}, ","))
	}
	if msg, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("oracle (%s; set VLP_PYTHON to an interpreter with torch): %v\n%s", py, err, msg)
	}
	for k, c := range cases {
		w, h, tw, th := c[0], c[1], c[2], c[3]
		src := srcs[k]
		raw, err := os.ReadFile(filepath.Join(dir, "out"+strconv.Itoa(k)+".raw"))
		if err != nil {
			t.Fatal(err)
		}
		got := ResizeNormalize(src, tw, th)
		if len(raw) != 4*len(got.Pix) {
			t.Fatalf("%v: oracle wrote %d bytes, want %d", c, len(raw), 4*len(got.Pix))
		}
		var worst float64
		for i, v := range got.Pix {
			want := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			worst = math.Max(worst, math.Abs(float64(v-want)))
		}
		// float32 accumulation in a different order: far below one grey level (0.017).
		if worst > 2e-3 {
			t.Fatalf("%dx%d→%dx%d: max |go - torch| = %g", w, h, tw, th, worst)
		}
		t.Logf("%dx%d→%dx%d: max |go - torch| = %.2g", w, h, tw, th, worst)
	}
}
