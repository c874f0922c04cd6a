package main

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// synthOptions are the job options that describe the synthetic world every
// worker renders identically (same seed, same images).
type synthOptions struct {
	Images, ImageSize int
}

func jobSynthOptions(spec coordinator.JobSpec) (synthOptions, error) {
	o := synthOptions{Images: 512, ImageSize: 64}
	for key, dst := range map[string]*int{"images": &o.Images, "image_size": &o.ImageSize} {
		if v, ok := spec.Options[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, fmt.Errorf("job option %s=%q: want a positive integer", key, v)
			}
			*dst = n
		}
	}
	return o, nil
}

// synthWorld renders the job's synthetic world.
func synthWorld(spec coordinator.JobSpec) (*data.SynthWorld, synthOptions, error) {
	o, err := jobSynthOptions(spec)
	if err != nil {
		return nil, o, err
	}
	w, err := data.NewSynthWorld(synth.Config{Seed: spec.Seed, Images: o.Images, Width: o.ImageSize, Height: o.ImageSize, MaxObjects: 2}, false)
	return w, o, err
}

// newVLPLearner builds the E2E-VLP learner of a job whose model is a preset.
func newVLPLearner(c *cli.Context, spec coordinator.JobSpec, log *slog.Logger) (worker.Learner, func(), error) {
	if d := c.String("data"); d != "synth" {
		return nil, nil, fmt.Errorf("worker: --data %q: only synth (the in-memory synthetic world) is wired into workers", d)
	}
	cfg, err := model.Preset(spec.Model)
	if err != nil {
		return nil, nil, err
	}
	if err := torch.Load(c.String("torch-lib")); err != nil {
		return nil, nil, err
	}
	dev, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return nil, nil, err
	}
	world, o, err := synthWorld(spec)
	if err != nil {
		return nil, nil, err
	}
	cfg.VocabSize = max(cfg.VocabSize, world.Tokenizer.Vocab().Size())
	cfg.NumClasses = max(cfg.NumClasses, len(synth.ClassNames))
	cfg.NumAttributes = max(cfg.NumAttributes, len(synth.AttributeNames))
	dcfg := data.DefaultConfig()
	dcfg.Image = data.SquareImageConfig(o.ImageSize)
	dcfg.MaxTextLen, dcfg.MaxCaptionLen = cfg.MaxTextLen, cfg.MaxCaptionLen
	total := spec.Hyper.MaxSteps
	if total <= 0 {
		total = max(1, int(int64(len(world.Examples))*int64(spec.Epochs)/int64(spec.GlobalBatch)))
	}
	tc := model.DefaultTrainConfig(total)
	if spec.Hyper.LR > 0 {
		tc.LR, tc.BackboneLR = spec.Hyper.LR, spec.Hyper.LR
	}
	if v, ok := spec.Options["backbone_lr"]; ok {
		if tc.BackboneLR, err = strconv.ParseFloat(v, 64); err != nil {
			return nil, nil, fmt.Errorf("job option backbone_lr=%q: %v", v, err)
		}
	}
	if spec.Hyper.WeightDecay > 0 {
		tc.WeightDecay = spec.Hyper.WeightDecay
	}
	if spec.Hyper.ClipNorm > 0 {
		tc.ClipNorm = spec.Hyper.ClipNorm
	}
	tc.Schedule.Warmup = min(total/10, 100)
	if spec.Hyper.WarmupSteps > 0 {
		tc.Schedule.Warmup = spec.Hyper.WarmupSteps
	}
	tc.Seed = spec.Seed
	l, err := worker.NewVLPLearner(worker.VLPConfig{
		Model: cfg, Train: tc, Device: dev, World: world, Data: dcfg,
		PerUnit: uint32(max(spec.Units.PerUnit, 1)), Seed: spec.Seed, Threads: c.Int("threads"),
	})
	if err != nil {
		return nil, nil, err
	}
	total2, trainable := l.Model().NumParams()
	log.Info("model", "preset", spec.Model, "params", total2, "trainable", trainable, "pairs", len(world.Examples), "device", c.String("device"))
	return l, l.Close, nil
}
