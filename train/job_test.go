package train

import (
	"errors"
	"github.com/e2evlp/vlp/worker"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
)

func TestResolveVLPJob(t *testing.T) {
	spec := coordinator.JobSpec{Name: "j", Model: "tiny", GlobalBatch: 10, Epochs: 2, Seed: 5,
		Hyper: coordinator.HyperParams{LR: 1e-3}, Options: map[string]string{OptImages: "8", OptImageSize: "32"}}
	j, err := Resolve(spec, 500)
	if err != nil {
		t.Fatal(err)
	}
	// No max_steps: the schedule lasts the job's epochs.
	if s := j.Train.Schedule; s.Total != 100 || s.Warmup != 10 || s.MinRatio != 0.1 {
		t.Errorf("schedule %+v, want 100 steps (2 epochs of 500 pairs, batch 10), warm-up 10, min ratio 0.1", s)
	}
	if j.Train.Seed != 5 || j.Train.LR != 1e-3 || j.Train.BackboneLR != 1e-3 || j.Train.ClipNorm != model.PresetClipNorm("tiny") {
		t.Errorf("train %+v", j.Train)
	}
	if j.Options.Images != 8 || j.Options.ImageSize != 32 || j.DataConfig().Image.Square != 32 || j.DataConfig().Seed != 5 {
		t.Errorf("options %+v, data %+v", j.Options, j.DataConfig())
	}
	// The older spelling of hyper.backbone_lr, read from specs stored before the field existed;
	// the field wins over it.
	spec.Options["backbone_lr"] = "2e-5"
	if j, err = Resolve(spec, 500); err != nil || j.Train.BackboneLR != 2e-5 {
		t.Errorf("legacy backbone_lr: %v %v", j.Train.BackboneLR, err)
	}
	spec.Hyper.BackboneLR = 3e-5
	if j, err = Resolve(spec, 500); err != nil || j.Train.BackboneLR != 3e-5 {
		t.Errorf("hyper.backbone_lr: %v %v", j.Train.BackboneLR, err)
	}
	// min_lr is the schedule's floor as a fraction of lr.
	spec.Hyper.MinLR = 2.5e-4
	if j, err = Resolve(spec, 500); err != nil || math.Abs(j.Train.Schedule.MinRatio-0.25) > 1e-12 {
		t.Errorf("hyper.min_lr: %v %v", j.Train.Schedule.MinRatio, err)
	}
	// options.attribute_mask reaches the data config with the data's class and attribute names.
	spec.Options[OptAttributeMask] = "0.5"
	if j, err = Resolve(spec, 500); err != nil {
		t.Fatal(err)
	}
	j.FitData(64, []string{"circle", "traffic light"}, []string{"red"})
	if d := j.DataConfig(); d.AttributeMaskProb != 0.5 || !slices.Equal(d.AttributeWords, []string{"red"}) {
		t.Errorf("options.attribute_mask: data config %v %q", d.AttributeMaskProb, d.AttributeWords)
	}
	if d := j.DataConfig(); d.ITMNegProb != 0.5 {
		t.Errorf("default ITM negatives %v, want 0.5", d.ITMNegProb)
	}
	spec.Options[OptITMNegatives] = "0.25"
	if j, err = Resolve(spec, 500); err != nil || j.DataConfig().ITMNegProb != 0.25 {
		t.Errorf("options.itm_negatives: %v %v", j.DataConfig().ITMNegProb, err)
	}
	for _, key := range []string{OptAttributeMask, OptITMNegatives} {
		for _, bad := range []string{"1.5", "-0.1", "half"} {
			spec.Options[key] = bad
			if _, err = Resolve(spec, 500); !errors.Is(err, worker.ErrJobSpec) || !strings.Contains(err.Error(), key) {
				t.Errorf("options.%s %q: %v", key, bad, err)
			}
		}
		delete(spec.Options, key)
	}
	spec.Options["colour"] = "red"
	if _, err = Resolve(spec, 500); !errors.Is(err, worker.ErrJobSpec) || !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown option: %v", err)
	}
}

// The learner follows its training configuration: AdamW's betas set the moments one step
// leaves, and bf16 autocast changes the forward pass's arithmetic.
func TestVLPLearnerFollowsTrainConfig(t *testing.T) {
	fp32 := vlpFactory(t, 2, 3)().(*Learner)
	betas := vlpFactoryWith(t, 2, 3, func(tc *model.TrainConfig) { tc.Beta1, tc.Beta2 = 0.5, 0.99 })().(*Learner)
	bf16 := vlpFactoryWith(t, 2, 3, func(tc *model.TrainConfig) { tc.BF16 = true })().(*Learner)
	pairs := []worker.Pair{{Unit: 0, Offset: 0}, {Unit: 1, Offset: 1}}
	grad := make([]float32, fp32.GradSize())
	l32, err := fp32.Gradients(t.Context(), pairs, grad)
	if err != nil {
		t.Fatal(err)
	}
	l16, err := bf16.Gradients(t.Context(), pairs, make([]float32, bf16.GradSize()))
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(l16["total"]) || l16["total"] == l32["total"] {
		t.Errorf("bf16 total loss %v, fp32 %v: want a finite loss that differs", l16["total"], l32["total"])
	}
	t.Logf("total loss: fp32 %v, bf16 %v", l32["total"], l16["total"])

	// One step from zero moments: exp_avg = (1-β1)·g, exp_avg_sq = (1-β2)·g², so against the
	// defaults (0.9, 0.999) β1 0.5 gives 5 times the first moment and β2 0.99 10 times the second.
	state := func(l *Learner) []float32 {
		if _, err := l.Apply(append([]float32(nil), grad...), 1); err != nil {
			t.Fatal(err)
		}
		snap, err := l.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		st, _ := snap.Find(checkpoint.GroupOptimizer, "adamw.state")
		buf := make([]float32, l.e.opt.StateElements())
		if err := float32s(st, buf); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	a, b := state(fp32), state(betas)
	checked := 0
	off := 0
	for _, p := range fp32.e.train {
		n := numel(p.Shape())
		for i := range n {
			for k, ratio := range []float64{5, 10} { // exp_avg, then exp_avg_sq
				x, y := float64(a[off+k*n+i]), float64(b[off+k*n+i])
				if math.Abs(x) < 1e-20 {
					continue
				}
				if math.Abs(y/x-ratio) > 1e-3*ratio {
					t.Fatalf("parameter element %d, moment %d: %g with the betas against %g, want %g times", i, k, y, x, ratio)
				}
				checked++
			}
		}
		off += 2 * n
	}
	if checked == 0 {
		t.Fatal("no moment to compare")
	}
}

// options.channels_last reaches the model's configuration; absent it is false, and a value that
// is not a boolean is refused naming the option.
func TestResolveChannelsLast(t *testing.T) {
	spec := coordinator.JobSpec{Name: "j", Model: "tiny", GlobalBatch: 10, Epochs: 1, Seed: 5,
		Hyper: coordinator.HyperParams{LR: 1e-3}, Options: map[string]string{OptImages: "8"}}
	j, err := Resolve(spec, 500)
	if err != nil || j.Model.ChannelsLast || j.Options.ChannelsLast {
		t.Errorf("absent: model %v, options %v, %v; want false", j.Model.ChannelsLast, j.Options.ChannelsLast, err)
	}
	for v, want := range map[string]bool{"true": true, "false": false} {
		spec.Options[OptChannelsLast] = v
		if j, err = Resolve(spec, 500); err != nil || j.Model.ChannelsLast != want {
			t.Errorf("options.channels_last %q: model %v, %v; want %v", v, j.Model.ChannelsLast, err, want)
		}
	}
	spec.Options[OptChannelsLast] = "nhwc"
	if _, err = Resolve(spec, 500); !errors.Is(err, worker.ErrJobSpec) || !strings.Contains(err.Error(), "channels_last") {
		t.Errorf("options.channels_last nhwc: %v, want an error naming the option", err)
	}
}

// options.tf32 and options.cudnn_benchmark reach the training configuration; absent they are false,
// a value that is not a boolean is refused naming the option, and a model on the CPU refuses them
// (CheckDevice, which every engine runs).
func TestResolveCUDAMath(t *testing.T) {
	spec := coordinator.JobSpec{Name: "j", Model: "tiny", GlobalBatch: 10, Epochs: 1, Seed: 5,
		Hyper: coordinator.HyperParams{LR: 1e-3}, Options: map[string]string{OptImages: "8"}}
	j, err := Resolve(spec, 500)
	if err != nil || j.Train.TF32 || j.Train.CuDNNBenchmark {
		t.Fatalf("absent: %+v, %v; want both false", j.Train, err)
	}
	if err := j.Train.CheckDevice(torch.CPU); err != nil {
		t.Errorf("neither set, on the CPU: %v", err)
	}
	for _, c := range []struct {
		key  string
		get  func(model.TrainConfig) bool
		name string
	}{
		{OptTF32, func(tc model.TrainConfig) bool { return tc.TF32 }, "tf32"},
		{OptCuDNNBenchmark, func(tc model.TrainConfig) bool { return tc.CuDNNBenchmark }, "cudnn_benchmark"},
	} {
		s := spec
		s.Options = map[string]string{OptImages: "8", c.key: "true"}
		j, err := Resolve(s, 500)
		if err != nil || !c.get(j.Train) {
			t.Errorf("options.%s true: %+v, %v", c.key, j.Train, err)
			continue
		}
		if err := j.Train.CheckDevice(torch.CPU); !errors.Is(err, model.ErrConfig) || !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), "CUDA") {
			t.Errorf("options.%s on the CPU: %v, want a refusal naming it", c.key, err)
		}
		if err := j.Train.CheckDevice(torch.CUDA(0)); err != nil {
			t.Errorf("options.%s on cuda:0: %v", c.key, err)
		}
		s.Options[c.key] = "fast"
		if _, err := Resolve(s, 500); !errors.Is(err, worker.ErrJobSpec) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("options.%s fast: %v, want an error naming the option", c.key, err)
		}
	}
}

// An engine for a CPU model refuses the CUDA-only settings instead of ignoring them.
func TestEngineRefusesCUDAMathOnCPU(t *testing.T) {
	loadTorch(t)
	m, err := model.New(model.Tiny(), 1, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tc := model.DefaultTrainConfig(10)
	tc.TF32 = true
	if e, err := NewEngine(m, tc); err == nil {
		e.Close()
		t.Fatal("an engine with TF32 on the CPU was built")
	} else if !strings.Contains(err.Error(), "tf32") {
		t.Fatalf("TF32 on the CPU: %v, want a refusal naming tf32", err)
	}
}
