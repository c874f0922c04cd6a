package model

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/torch"
)

// hostParams copies every parameter and buffer to the host: what a
// pretraining checkpoint holds.
func hostParams(t *testing.T, ps []*Param) map[string]HostTensor {
	t.Helper()
	out := map[string]HostTensor{}
	for _, p := range ps {
		out[p.Name] = HostTensor{Shape: slices.Clone(p.T.Shape()), Data: float32s(t, p.T)}
	}
	return out
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestInitFromPretrained: a fine-tuning model (another seed) with a VQA
// and an NLVR2 head, initialised from a pretrained model's parameters,
// holds every shared parameter and buffer bit for bit, keeps the heads as
// initialised, and reports exactly the heads' parameters as new.
func TestInitFromPretrained(t *testing.T) {
	c := taskConfig()
	pre := newTaskModel(t, c, 1)
	ckpt := hostParams(t, pre.Params())
	ckpt["pretrain_only.weight"] = HostTensor{Shape: []int64{2}, Data: []float32{1, 2}}

	m := newTaskModel(t, c, 2)
	vqa, err := NewVQAHead(c, 11, 3, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer vqa.Close()
	nl, err := NewNLVR2Head(c, 4, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	heads := append(append([]*Param(nil), vqa.Params()...), nl.Params()...)
	before := hostParams(t, heads)

	rep, err := InitFromPretrained(TaskParams(m, vqa, nl), ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Loaded, paramNames(m.Params())) {
		t.Errorf("loaded %d names, the model has %d", len(rep.Loaded), len(m.Params()))
	}
	if !slices.Equal(rep.New, paramNames(heads)) {
		t.Errorf("new %v, want the heads' %v", rep.New, paramNames(heads))
	}
	if !slices.Equal(rep.Unused, []string{"pretrain_only.weight"}) {
		t.Errorf("unused %v", rep.Unused)
	}
	for _, p := range m.Params() {
		if !sameBits(float32s(t, p.T), ckpt[p.Name].Data) {
			t.Errorf("%s differs from the checkpoint", p.Name)
		}
		if p.Trainable() != pre.Param(p.Name).Trainable() {
			t.Errorf("%s: trainable changed", p.Name)
		}
	}
	for _, p := range heads {
		if !sameBits(float32s(t, p.T), before[p.Name].Data) {
			t.Errorf("head parameter %s changed", p.Name)
		}
		if !p.Trainable() || !p.T.RequiresGradFlag() {
			t.Errorf("head parameter %s does not train", p.Name)
		}
	}
	for _, p := range m.Params() {
		if p.Trainable() && !p.T.RequiresGradFlag() {
			t.Errorf("%s no longer requires grad after loading", p.Name)
		}
	}
	if s := rep.String(); !strings.Contains(s, "12 new") || !strings.Contains(s, "vqa_head.out.weight") {
		t.Errorf("report %q", s)
	}
}

// TestInitFromPretrainedRefusesShapes: a checkpoint of another vocabulary
// and a head of another answer count are refused, every mismatch named,
// and nothing is copied.
func TestInitFromPretrainedRefusesShapes(t *testing.T) {
	c := taskConfig()
	pre := newTaskModel(t, c, 1)
	ckpt := hostParams(t, pre.Params())
	ckpt["vqa_head.out.weight"] = HostTensor{Shape: []int64{3, int64(2 * c.DModel)}, Data: make([]float32, 3*2*c.DModel)}
	other := c
	other.VocabSize = c.VocabSize + 8
	m := newTaskModel(t, other, 2)
	vqa, err := NewVQAHead(other, 11, 3, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer vqa.Close()
	ps := TaskParams(m, vqa)
	before := hostParams(t, ps)
	_, err = InitFromPretrained(ps, ckpt)
	if !errors.Is(err, ErrInitShape) {
		t.Fatalf("error %v, want ErrInitShape", err)
	}
	for _, name := range []string{"text.tok_emb.weight", "mlm.bias", "cap_head.bias", "vqa_head.out.weight: [3 128] in the checkpoint, [11 128] in the model"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %q: %v", name, err)
		}
	}
	for _, p := range ps {
		if !sameBits(float32s(t, p.T), before[p.Name].Data) {
			t.Errorf("%s changed by a refused load", p.Name)
		}
	}
	// Data that does not fill the shape is refused too.
	ckpt = hostParams(t, pre.Params())
	h := ckpt["itm.cls.bias"]
	h.Data = h.Data[:1]
	ckpt["itm.cls.bias"] = h
	if _, err := InitFromPretrained(pre.Params(), ckpt); !errors.Is(err, ErrInitShape) || !strings.Contains(err.Error(), "itm.cls.bias") {
		t.Errorf("short data: %v", err)
	}
}
