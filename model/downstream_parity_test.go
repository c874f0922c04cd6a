package model

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

// exportHeadWeights writes the heads' parameters as exportWeights writes
// the model's: head.bin (raw little-endian float32) and head.json.
func exportHeadWeights(t *testing.T, ps []*Param, dir string) {
	t.Helper()
	type entry struct {
		Name   string  `json:"name"`
		Shape  []int64 `json:"shape"`
		Offset int     `json:"offset"`
	}
	var index []entry
	var raw []byte
	for _, p := range ps {
		index = append(index, entry{p.Name, p.T.Shape(), len(raw) / 4})
		for _, f := range float32s(t, p.T) {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
	}
	writeJSON(t, filepath.Join(dir, "head.json"), index)
	if err := os.WriteFile(filepath.Join(dir, "head.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDownstreamParityWithPyTorch: the VQA and NLVR2 heads on the same
// weights and batch as reference/downstream.py (on e2evlp.py's model) give
// the same logits and losses (1e-4 relative) and the same gradients on a
// sample of head, pooler, encoder, embedding and backbone parameters.
// PyTorch runs NLVR2 as two separate passes.
func TestDownstreamParityWithPyTorch(t *testing.T) {
	c := parityConfig()
	m := newTaskModel(t, c, 7)
	const answers = 9
	vqa, err := NewVQAHead(c, answers, 11, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer vqa.Close()
	nl, err := NewNLVR2Head(c, 13, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	// Zero-initialised biases and unit LayerNorms would hide a swapped
	// bias or LayerNorm: perturb every head parameter.
	for i, p := range append(vqa.Params(), nl.Params()...) {
		v := float32s(t, p.T)
		for k := range v {
			v[k] += 0.05 * float32(math.Sin(float64(7*i+k)))
		}
		if err := copyHost(p.T, HostTensor{Shape: p.T.Shape(), Data: v}, torch.CPU); err != nil {
			t.Fatal(err)
		}
	}

	b := synthBatch(t, 16, 6, 64, 3)
	for y := 0; y < b.Height; y++ { // pad row 0's right quarter, as the pretraining parity test does
		for x := b.Width * 3 / 4; x < b.Width; x++ {
			b.PixelMask[y*b.Width+x] = true
			for ch := 0; ch < 3; ch++ {
				b.Images[(ch*b.Height+y)*b.Width+x] = 0
			}
		}
	}
	pb := pairBatch(b)
	rows := [][]AnswerTarget{{{Class: 0, Score: 1}}, {{Class: 3, Score: 0.3}, {Class: 8, Score: 0.9}}, nil,
		{{Class: 5, Score: 0.6}}, {{Class: 1, Score: 1}, {Class: 2, Score: 0.3}}, {{Class: 7, Score: 0.9}}}
	dense := make([][]float32, len(rows))
	for i, r := range rows {
		dense[i] = make([]float32, answers)
		for _, a := range r {
			dense[i][a.Class] = float32(a.Score)
		}
	}
	nb := nlvr2Batch(b, 3, []int64{1, 0, 1})

	dir := t.TempDir()
	exportWeights(t, m, dir)
	exportHeadWeights(t, append(vqa.Params(), nl.Params()...), dir)
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"ResNetDepth": c.ResNetDepth, "ResNetWidth": c.ResNetWidth, "FrozenBN": c.FrozenBN, "DilateC5": c.DilateC5, "StemPool": !c.NoStemPool,
		"DModel": c.DModel, "Heads": c.Heads, "FFN": c.FFN, "EncoderLayers": c.EncoderLayers, "DecoderLayers": c.DecoderLayers,
		"VocabSize": c.VocabSize, "MaxTextLen": c.MaxTextLen, "MaxCaptionLen": c.MaxCaptionLen, "TieMLM": c.TieMLM,
		"NumQueries": c.NumQueries, "NumClasses": c.NumClasses, "NumAttributes": c.NumAttributes, "SharedDecoder": c.SharedDecoder,
		"Loss": c.Loss,
	})
	writeJSON(t, filepath.Join(dir, "vqa.json"), map[string]any{"batch": pb, "targets": dense})
	writeJSON(t, filepath.Join(dir, "nlvr2.json"), nb)
	common := []string{"itm.pool.weight", "encoder.layers.0.attn.in_proj_weight", "encoder.layers.2.ffn.lin1.weight",
		"encoder.ln_f.bias", "text.tok_emb.weight", "text.ln.weight", "input_proj.weight", "backbone.conv1.weight", "backbone.layer4.1.conv2.weight"}
	sample := append([]string{"vqa_head.dense.weight", "vqa_head.ln.bias", "vqa_head.out.weight", "vqa_head.out.bias",
		"nlvr2_head.dense.weight", "nlvr2_head.ln.weight", "nlvr2_head.out.bias"}, common...)
	writeJSON(t, filepath.Join(dir, "grads.json"), sample)
	runPython(t, nil, "../reference/downstream.py", "parity", dir)
	type result struct {
		Loss   float64              `json:"loss"`
		Logits []float64            `json:"logits"`
		Grads  map[string][]float64 `json:"grads"`
	}
	var want map[string]result
	raw, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}

	all := TaskParams(m, vqa, nl)
	byName := map[string]*Param{}
	for _, p := range all {
		byName[p.Name] = p
	}
	for _, task := range []string{"vqa", "nlvr2"} {
		t.Run(task, func(t *testing.T) {
			if err := torch.ZeroGrad(TrainableOf(all)); err != nil {
				t.Fatal(err)
			}
			s := torch.NewScope()
			defer s.Close()
			var logits *torch.Tensor
			var ls Losses
			switch task {
			case "vqa":
				in, err := PairsToTensors(s, pb, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				tg, err := VQATargets(s, rows, answers, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				if logits, ls, err = vqa.Forward(s, m, in, tg, false, nil); err != nil {
					t.Fatal(err)
				}
			case "nlvr2":
				in, err := NLVR2ToTensors(s, nb, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				if logits, ls, err = nl.Forward(s, m, in, false, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := ls.Total.Backward(); err != nil {
				t.Fatal(err)
			}
			w := want[task]
			loss := item(t, ls.Total)
			if !closeTo(loss, w.Loss, 1e-4) {
				t.Errorf("loss: Go %.7g, PyTorch %.7g", loss, w.Loss)
			}
			t.Logf("loss Go %.7g PyTorch %.7g", loss, w.Loss)
			compare(t, "logits", float32s(t, logits), w.Logits)
			for _, name := range sample {
				var gv []float32
				if g := byName[name].T.Grad(); g != nil {
					gv = float32s(t, g)
					g.Close()
				}
				compare(t, "grad "+name, gv, w.Grads[name])
			}
		})
	}
}

// compare checks got against want to 1e-4 of want's largest magnitude. A
// gradient PyTorch leaves empty (another task's head) must be absent or
// zero in Go.
func compare(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(want) == 0 {
		for _, v := range got {
			if v != 0 {
				t.Errorf("%s: PyTorch has none, Go %d values not all zero", what, len(got))
				return
			}
		}
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: Go %d values, PyTorch %d", what, len(got), len(want))
		return
	}
	var maxRef, maxDiff float64
	for i := range want {
		maxRef = math.Max(maxRef, math.Abs(want[i]))
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-want[i]))
	}
	if maxRef == 0 {
		t.Errorf("%s is zero in PyTorch: the sample does not test it", what)
	}
	if maxDiff > 1e-4*maxRef+1e-8 {
		t.Errorf("%s: max |Go − PyTorch| = %.3g, max |PyTorch| = %.3g", what, maxDiff, maxRef)
	}
	t.Logf("%-48s max |Go − PyTorch| %.2g of max %.2g", what, maxDiff, maxRef)
}
