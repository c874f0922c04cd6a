package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
)

// parityConfig is a small model with every component, deterministic:
// frozen BatchNorm and no dropout.
func parityConfig() Config {
	c := Tiny()
	c.FrozenBN, c.Dropout = true, 0
	c.VocabSize = data.SynthVocabSize
	return c
}

// exportWeights writes every parameter and buffer as raw little-endian
// float32 (weights.bin) with a JSON index of name, shape and offset.
func exportWeights(t *testing.T, m *Model, dir string) {
	t.Helper()
	type entry struct {
		Name   string  `json:"name"`
		Shape  []int64 `json:"shape"`
		Offset int     `json:"offset"`
	}
	var index []entry
	var raw []byte
	off := 0
	for _, p := range m.Params() {
		v, err := p.T.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		index = append(index, entry{p.Name, p.T.Shape(), off})
		for _, f := range v {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
		off += len(v)
	}
	writeJSON(t, filepath.Join(dir, "weights.json"), index)
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// synthBatch is the first batch of a small shapes world.
func synthBatch(t *testing.T, images, rows, side int, seed uint64) *data.Batch {
	t.Helper()
	dc := data.DefaultConfig()
	dc.BatchSize, dc.Seed, dc.Image = rows, seed, data.SquareImageConfig(side)
	dc.MaxTextLen, dc.MaxCaptionLen = 32, 32
	bs, _, err := data.SynthBatches(synth.Config{Seed: seed, Images: images, Width: side, Height: side}, dc)
	if err != nil {
		t.Fatal(err)
	}
	return bs[0]
}

// TestParityWithPyTorch: the same weights and batch through the Go model
// and reference/e2evlp.py give the same losses (1e-4 relative) and the same
// gradients on a sample of parameters.
func TestParityWithPyTorch(t *testing.T) {
	needTorch(t)
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"separate decoders, tied MLM", func(c *Config) {}},
		{"shared decoder, untied MLM", func(c *Config) { c.SharedDecoder, c.TieMLM = true, false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parityConfig()
			tc.mutate(&c)
			checkParity(t, c)
		})
	}
}

func checkParity(t *testing.T, c Config) {
	dir := t.TempDir()
	m, err := New(c, 7, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := synthBatch(t, 16, 6, 64, 3)
	// Pad one image so the padding masks are exercised: shrink row 0's
	// valid area by masking its right quarter.
	for y := 0; y < b.Height; y++ {
		for x := b.Width * 3 / 4; x < b.Width; x++ {
			b.PixelMask[y*b.Width+x] = true
			for ch := 0; ch < 3; ch++ {
				b.Images[(ch*b.Height+y)*b.Width+x] = 0
			}
		}
	}
	exportWeights(t, m, dir)
	writeJSON(t, filepath.Join(dir, "batch.json"), b)
	writeJSON(t, filepath.Join(dir, "config.json"), c.ReferenceConfig())
	sample := []string{
		"backbone.conv1.weight", "backbone.layer1.0.conv1.weight", "backbone.layer4.1.conv2.weight", "input_proj.weight",
		"text.tok_emb.weight", "text.seg_emb.weight", "text.ln.weight", "encoder.layers.0.attn.in_proj_weight",
		"encoder.layers.1.ffn.lin2.bias", "mlm.dense.weight", "itm.cls.weight", "det_decoder.query_embed.weight",
		"det_decoder.layers.0.cross_attn.in_proj_weight", "det_head.class_embed.weight", "det_head.attr_embed.bias",
		"det_head.bbox_embed.layers.2.weight", "cap_decoder.pos_emb.weight", "cap_head.bias",
	}
	if !c.SharedDecoder {
		sample = append(sample, "cap_decoder.layers.1.self_attn.out_proj.weight")
	}
	if !c.TieMLM {
		sample = append(sample, "mlm.out.weight")
	}
	writeJSON(t, filepath.Join(dir, "grads.json"), sample)

	s := torch.NewScope()
	defer s.Close()
	if err := torch.ZeroGrad(m.Trainable()); err != nil {
		t.Fatal(err)
	}
	in, err := BatchToTensors(s, b, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Forward(s, in, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := m.Criterion(s, in, out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ls.Values()
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Total.Backward(); err != nil {
		t.Fatal(err)
	}

	runPython(t, nil, "../reference/e2evlp.py", "parity", dir)
	var want struct {
		Losses map[string]float64   `json:"losses"`
		Grads  map[string][]float64 `json:"grads"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Losses) != len(got) {
		t.Errorf("Go has %d losses, PyTorch %d: %v vs %v", len(got), len(want.Losses), got, want.Losses)
	}
	for name, w := range want.Losses {
		g, ok := got[name]
		if !ok {
			t.Errorf("loss %s missing in Go", name)
			continue
		}
		if math.Abs(g-w) > 1e-4*math.Max(math.Abs(w), 1e-3) {
			t.Errorf("loss %s: Go %.7g, PyTorch %.7g", name, g, w)
		}
		t.Logf("loss %-12s Go %.7g PyTorch %.7g", name, g, w)
	}
	for _, name := range sample {
		p := m.Param(name)
		if p == nil {
			t.Fatalf("no parameter %s", name)
		}
		var gv []float32
		if g := p.T.Grad(); g != nil {
			if gv, err = g.Float32s(); err != nil {
				t.Fatal(err)
			}
			g.Close()
		}
		w := want.Grads[name]
		if len(gv) != len(w) {
			t.Errorf("grad %s: Go %d values, PyTorch %d", name, len(gv), len(w))
			continue
		}
		var maxRef, maxDiff float64
		for i := range w {
			maxRef = math.Max(maxRef, math.Abs(w[i]))
			maxDiff = math.Max(maxDiff, math.Abs(float64(gv[i])-w[i]))
		}
		if maxRef == 0 {
			t.Errorf("grad %s is zero in PyTorch: the sample does not test it", name)
		}
		if maxDiff > 1e-4*maxRef+1e-8 {
			t.Errorf("grad %s: max |Go − PyTorch| = %.3g, max |PyTorch| = %.3g", name, maxDiff, maxRef)
		}
		t.Logf("grad %-48s max |Go − PyTorch| %.2g of max |g| %.2g", name, maxDiff, maxRef)
	}
}
