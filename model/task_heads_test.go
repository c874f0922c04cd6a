package model

import (
	"math"
	"slices"
	"testing"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/torch"
)

// taskConfig is the tiny preset with BatchNorm training (its default):
// the setting in which every parameter should receive a gradient.
func taskConfig() Config {
	c := Tiny()
	c.VocabSize = data.SynthVocabSize
	return c
}

// pairBatch is the image–text part of a synthetic pretraining batch.
func pairBatch(b *data.Batch) *PairBatch {
	return &PairBatch{Size: b.Size, Height: b.Height, Width: b.Width, Images: b.Images, PixelMask: b.PixelMask,
		SeqLen: b.SeqLen, TokenIDs: b.TokenIDs, TokenMask: b.TokenMask}
}

// nlvr2Batch pairs the texts of the first rows of b with the images of
// rows r and r+n as left and right.
func nlvr2Batch(b *data.Batch, n int, labels []int64) *NLVR2Batch {
	img, px, L := 3*b.Height*b.Width, b.Height*b.Width, b.SeqLen
	return &NLVR2Batch{Size: n, Height: b.Height, Width: b.Width, SeqLen: L,
		Left: b.Images[:n*img], Right: b.Images[n*img : 2*n*img],
		LeftMask: b.PixelMask[:n*px], RightMask: b.PixelMask[n*px : 2*n*px],
		TokenIDs: b.TokenIDs[:n*L], TokenMask: b.TokenMask[:n*L], Labels: labels}
}

func newTaskModel(t *testing.T, c Config, seed uint64) *Model {
	t.Helper()
	needTorch(t)
	m, err := New(c, seed, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func float32s(t *testing.T, x *torch.Tensor) []float32 {
	t.Helper()
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func item(t *testing.T, x *torch.Tensor) float64 {
	t.Helper()
	v, err := x.Item()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkShape(t *testing.T, what string, x *torch.Tensor, want ...int64) {
	t.Helper()
	if got := x.Shape(); !slices.Equal(got, want) {
		t.Fatalf("%s: shape %v, want %v", what, got, want)
	}
}

func closeTo(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(math.Abs(b), 1e-3) }

func paramNames(ps []*Param) []string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Name)
	}
	return n
}

// TestTaskHeadParams: the heads' parameters, their names under the
// prefixes and their shapes.
func TestTaskHeadParams(t *testing.T) {
	needTorch(t)
	c := taskConfig()
	vqa, err := NewVQAHead(c, 7, 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer vqa.Close()
	nl, err := NewNLVR2Head(c, 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	d := int64(c.DModel)
	for _, tc := range []struct {
		head TaskHead
		want map[string][]int64
	}{
		{vqa, map[string][]int64{
			"vqa_head.dense.weight": {2 * d, d}, "vqa_head.dense.bias": {2 * d},
			"vqa_head.ln.weight": {2 * d}, "vqa_head.ln.bias": {2 * d},
			"vqa_head.out.weight": {7, 2 * d}, "vqa_head.out.bias": {7},
		}},
		{nl, map[string][]int64{
			"nlvr2_head.dense.weight": {2 * d, 2 * d}, "nlvr2_head.dense.bias": {2 * d},
			"nlvr2_head.ln.weight": {2 * d}, "nlvr2_head.ln.bias": {2 * d},
			"nlvr2_head.out.weight": {2, 2 * d}, "nlvr2_head.out.bias": {2},
		}},
	} {
		ps := tc.head.Params()
		if len(ps) != len(tc.want) {
			t.Errorf("%s: %d parameters %v, want %d", tc.head.Prefix(), len(ps), paramNames(ps), len(tc.want))
		}
		for _, p := range ps {
			if w, ok := tc.want[p.Name]; !ok || !slices.Equal(p.T.Shape(), w) || !p.Trainable() {
				t.Errorf("%s: %v (trainable %v), want %v", p.Name, p.T.Shape(), p.Trainable(), w)
			}
		}
	}
	if _, err := NewVQAHead(c, 0, 1, torch.CPU); err == nil {
		t.Error("a VQA head of 0 answers was built")
	}
}

// TestVQALossByHand: BCE(x, y) = log(1+eˣ) − y·x summed over answers and
// averaged over rows. Row 0, logits 0: 2·ln 2. Row 1, logits ±ln 3 with
// targets 0.3 and 1: (ln 4 − 0.3·ln 3) + (ln 4/3 + ln 3) = 2·ln 4 − 0.3·ln 3.
// Mean: 3·ln 2 − 0.15·ln 3.
func TestVQALossByHand(t *testing.T) {
	needTorch(t)
	s := torch.NewScope()
	defer s.Close()
	l3 := float32(math.Log(3))
	logits := torch.FromFloat32(s, []float32{0, 0, l3, -l3}, []int64{2, 2}, torch.CPU)
	targets, err := VQATargets(s, [][]AnswerTarget{{{Class: 0, Score: 1}}, {{Class: 0, Score: 0.3}, {Class: 1, Score: 1}}}, 2, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if got := float32s(t, targets); !slices.Equal(got, []float32{1, 0, 0.3, 1}) {
		t.Fatalf("targets %v", got)
	}
	got := item(t, vqaLoss(logits, targets, 2))
	want := 3*math.Ln2 - 0.15*math.Log(3)
	if !closeTo(got, want, 1e-6) {
		t.Errorf("VQA loss %.8f, by hand %.8f", got, want)
	}
	for _, bad := range [][]AnswerTarget{{{Class: 2, Score: 1}}, {{Class: -1, Score: 1}}, {{Class: 0, Score: 1.5}}, {{Class: 0, Score: math.NaN()}}} {
		if _, err := VQATargets(s, [][]AnswerTarget{bad}, 2, torch.CPU); err == nil {
			t.Errorf("VQATargets accepted %v", bad)
		}
	}
}

// TestVQAForward: logits [B,A], and the loss is the hand formula applied
// to those logits on the host.
func TestVQAForward(t *testing.T) {
	c := taskConfig()
	m := newTaskModel(t, c, 5)
	const answers = 7
	h, err := NewVQAHead(c, answers, 9, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b := synthBatch(t, 8, 3, 64, 2)
	s := torch.NewScope()
	defer s.Close()
	in, err := PairsToTensors(s, pairBatch(b), torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]AnswerTarget{{{Class: 1, Score: 1}}, {{Class: 0, Score: 0.3}, {Class: 6, Score: 0.9}}, nil}
	targets, err := VQATargets(s, rows, answers, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	logits, ls, err := h.Forward(s, m, in, targets, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, "VQA logits", logits, 3, answers)
	x, y := float32s(t, logits), float32s(t, targets)
	var want float64
	for k := range x {
		xv, yv := float64(x[k]), float64(y[k])
		want += math.Log1p(math.Exp(xv)) - yv*xv
	}
	want /= 3
	vals, err := ls.Values()
	if err != nil {
		t.Fatal(err)
	}
	if !closeTo(vals["vqa"], want, 1e-5) || vals["total"] != vals["vqa"] {
		t.Errorf("VQA loss %v, from the logits by hand %.7f", vals, want)
	}
	pred, err := VQAPredict(logits)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pred {
		row := x[i*answers : (i+1)*answers]
		if row[p] != slices.Max(row) {
			t.Errorf("row %d: predicted %d, not the largest logit of %v", i, p, row)
		}
	}
}

// TestNLVR2LossByHand: CE of logits [0, ln 3] with label 1 is ln 4/3, of
// [2, 0] with label 1 is ln(1 + e²); the mean of both.
func TestNLVR2LossByHand(t *testing.T) {
	c := taskConfig()
	m := newTaskModel(t, c, 5)
	h, err := NewNLVR2Head(c, 3, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b := synthBatch(t, 8, 4, 64, 2)
	s := torch.NewScope()
	defer s.Close()
	in, err := NLVR2ToTensors(s, nlvr2Batch(b, 2, []int64{1, 0}), torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	logits, ls, err := h.Forward(s, m, in, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, "NLVR2 logits", logits, 2, 2)
	x := float32s(t, logits)
	ce := func(l0, l1 float64, label int) float64 {
		lse := math.Log(math.Exp(l0) + math.Exp(l1))
		return lse - []float64{l0, l1}[label]
	}
	want := (ce(float64(x[0]), float64(x[1]), 1) + ce(float64(x[2]), float64(x[3]), 0)) / 2
	if got := item(t, ls.ByName["nlvr2"]); !closeTo(got, want, 1e-5) {
		t.Errorf("NLVR2 loss %.7f, from the logits by hand %.7f", got, want)
	}
	// The same function on hand-made logits.
	l3 := float32(math.Log(3))
	hl := torch.FromFloat32(s, []float32{0, l3, 2, 0}, []int64{2, 2}, torch.CPU)
	lab := torch.FromInt64(s, []int64{1, 1}, []int64{2}, torch.CPU)
	got := item(t, torch.CrossEntropy(hl, lab, nil, data.IgnoreIndex, torch.ReduceMean))
	if want := (math.Log(4.0/3) + math.Log1p(math.Exp(2))) / 2; !closeTo(got, want, 1e-6) {
		t.Errorf("CE %.8f, by hand %.8f", got, want)
	}
	bad := nlvr2Batch(b, 2, []int64{1, 2})
	if _, err := NLVR2ToTensors(s, bad, torch.CPU); err == nil {
		t.Error("an NLVR2 label 2 was accepted")
	}
}

// TestNLVR2IsTwoPasses: with frozen BatchNorm, the 2B-row pass gives the
// same logits as pooling the left pairs and the right pairs separately
// and classifying [left, right].
func TestNLVR2IsTwoPasses(t *testing.T) {
	c := parityConfig()
	m := newTaskModel(t, c, 5)
	h, err := NewNLVR2Head(c, 3, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b := synthBatch(t, 8, 6, 64, 2)
	nb := nlvr2Batch(b, 3, nil)
	s := torch.NewScope()
	defer s.Close()
	in, err := NLVR2ToTensors(s, nb, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	joint, ls, err := h.Forward(s, m, in, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ls.Total != nil {
		t.Error("a loss without labels")
	}
	pass := func(img []float32, mask []bool) *torch.Tensor {
		pb := &PairBatch{Size: 3, Height: nb.Height, Width: nb.Width, Images: img, PixelMask: mask,
			SeqLen: nb.SeqLen, TokenIDs: nb.TokenIDs, TokenMask: nb.TokenMask}
		pin, err := PairsToTensors(s, pb, torch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		return m.pooledPairs(&fwd{s: s}, pin) // [3,d]
	}
	sep := h.mlp.forward(torch.Cat([]*torch.Tensor{pass(nb.Left, nb.LeftMask), pass(nb.Right, nb.RightMask)}, 1)) // [3,2]
	a, w := float32s(t, joint), float32s(t, sep)
	for k := range a {
		if math.Abs(float64(a[k]-w[k])) > 1e-5 {
			t.Fatalf("joint pass %v, two passes %v", a, w)
		}
	}
}

// TestCaptionForwardAlone: the captioning task alone gives the caption
// loss of the full pretraining forward on the same batch.
func TestCaptionForwardAlone(t *testing.T) {
	c := parityConfig()
	m := newTaskModel(t, c, 5)
	b := synthBatch(t, 8, 4, 64, 2)
	s := torch.NewScope()
	defer s.Close()
	in, err := BatchToTensors(s, b, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	logits, ls, err := m.CaptionForward(s, in, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, "caption logits", logits, int64(b.Size), int64(b.CapLen-1), int64(c.VocabSize))
	out, err := m.Forward(s, in, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.Criterion(s, in, out)
	if err != nil {
		t.Fatal(err)
	}
	got, want := item(t, ls.Total), item(t, full.ByName["caption"])
	if !closeTo(got, want, 1e-6) {
		t.Errorf("caption loss alone %.7f, in the full forward %.7f", got, want)
	}
}

// TestTaskGradients: each task's loss, backward, reaches its head, the
// encoder, the text embedding and the backbone; the heads it does not use
// get none.
func TestTaskGradients(t *testing.T) {
	c := taskConfig()
	b := synthBatch(t, 8, 4, 64, 2)
	shared := []string{"backbone.conv1.weight", "backbone.layer4.1.conv2.weight", "input_proj.weight",
		"text.tok_emb.weight", "encoder.layers.0.attn.in_proj_weight", "encoder.ln_f.weight"}
	for _, tc := range []struct {
		name       string
		reach, not []string
		run        func(s *torch.Scope, m *Model) (Losses, []*Param)
	}{
		{"vqa", []string{"itm.pool.weight", "vqa_head.dense.weight", "vqa_head.ln.weight", "vqa_head.out.bias"}, []string{"itm.cls.weight", "mlm.dense.weight", "cap_head.bias"},
			func(s *torch.Scope, m *Model) (Losses, []*Param) {
				h, err := NewVQAHead(c, 5, 1, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(h.Close)
				in, err := PairsToTensors(s, pairBatch(b), torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				tg, err := VQATargets(s, [][]AnswerTarget{{{Class: 1, Score: 1}}, {{Class: 2, Score: 0.6}}, nil, {{Class: 4, Score: 0.3}}}, 5, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				_, ls, err := h.Forward(s, m, in, tg, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				return ls, h.Params()
			}},
		{"nlvr2", []string{"itm.pool.weight", "nlvr2_head.dense.weight", "nlvr2_head.out.weight"}, []string{"itm.cls.weight", "det_head.class_embed.weight"},
			func(s *torch.Scope, m *Model) (Losses, []*Param) {
				h, err := NewNLVR2Head(c, 1, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(h.Close)
				in, err := NLVR2ToTensors(s, nlvr2Batch(b, 2, []int64{0, 1}), torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				_, ls, err := h.Forward(s, m, in, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				return ls, h.Params()
			}},
		{"caption", []string{"cap_decoder.layers.0.cross_attn.in_proj_weight", "cap_head.bias"}, []string{"itm.pool.weight", "mlm.dense.weight", "det_head.class_embed.weight"},
			func(s *torch.Scope, m *Model) (Losses, []*Param) {
				in, err := BatchToTensors(s, b, torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				_, ls, err := m.CaptionForward(s, in, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				return ls, nil
			}},
		{"retrieval", []string{"itm.pool.weight", "itm.cls.weight"}, []string{"mlm.dense.weight", "cap_head.bias"},
			func(s *torch.Scope, m *Model) (Losses, []*Param) {
				in, err := PairsToTensors(s, pairBatch(b), torch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				out, err := m.RetrievalForward(s, in, nil, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				return out.Losses, nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTaskModel(t, c, 5)
			s := torch.NewScope()
			defer s.Close()
			ls, headPs := tc.run(s, m)
			all := append(append([]*Param(nil), m.Params()...), headPs...)
			if err := torch.ZeroGrad(TrainableOf(all)); err != nil {
				t.Fatal(err)
			}
			if err := ls.Total.Backward(); err != nil {
				t.Fatal(err)
			}
			byName := map[string]*Param{}
			for _, p := range all {
				byName[p.Name] = p
			}
			norm := func(name string) float64 {
				p := byName[name]
				if p == nil {
					t.Fatalf("no parameter %s", name)
				}
				g := p.T.Grad()
				if g == nil {
					return 0
				}
				defer g.Close()
				var n float64
				for _, v := range float32s(t, g) {
					n += float64(v) * float64(v)
				}
				return math.Sqrt(n)
			}
			for _, name := range append(append([]string(nil), shared...), tc.reach...) {
				if n := norm(name); !(n > 0) || math.IsInf(n, 0) {
					t.Errorf("%s: gradient norm %v", name, n)
				}
			}
			for _, name := range tc.not {
				if n := norm(name); n != 0 {
					t.Errorf("%s: gradient norm %v from a task that does not use it", name, n)
				}
			}
		})
	}
}
