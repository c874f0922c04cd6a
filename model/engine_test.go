package model_test

import (
	"errors"
	"testing"

	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
)

// TestTrainStepFreesEverything: a training step leaves no native tensor
// behind once its scope is closed, and the model frees its own on Close.
func TestTrainStepFreesEverything(t *testing.T) {
	model.NeedTorch(t)
	before := torch.LiveTensors()
	m, err := model.New(model.ParityConfig(), 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.NewEngine(m, model.DefaultTrainConfig(10))
	if err != nil {
		t.Fatal(err)
	}
	b := model.SynthBatch(t, 8, 4, 64, 2)
	if _, err := tr.Step(b); err != nil {
		t.Fatal(err)
	}
	after1 := torch.LiveTensors()
	if _, err := tr.Step(b); err != nil {
		t.Fatal(err)
	}
	if after2 := torch.LiveTensors(); after2 != after1 {
		t.Errorf("live tensors grew from %d to %d over one step", after1, after2)
	}
	tr.Close()
	m.Close()
	if got := torch.LiveTensors(); got != before {
		t.Errorf("%d live tensors after Close, %d before New", got, before)
	}
}

// TestTrainStepFailsFastOnNonFinite: a NaN in the input makes the loss
// non-finite; the step reports ErrNonFinite and no parameter changes.
func TestTrainStepFailsFastOnNonFinite(t *testing.T) {
	model.NeedTorch(t)
	m, err := model.New(model.ParityConfig(), 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr, err := train.NewEngine(m, model.DefaultTrainConfig(10))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	b := model.SynthBatch(t, 8, 4, 64, 2)
	b.Images[0] = float32(model.NaN())
	w := m.Param("det_head.class_embed.weight").T
	before, _ := w.Float32s()
	_, err = tr.Step(b)
	if !errors.Is(err, model.ErrNonFinite) {
		t.Fatalf("err = %v, want ErrNonFinite", err)
	}
	after, _ := w.Float32s()
	for i := range before {
		if before[i] != after[i] {
			t.Fatal("a parameter changed in a failed step")
		}
	}
	if tr.StepCount() != 0 {
		t.Errorf("step count %d after a failed step", tr.StepCount())
	}
}
