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

// learnerExtras is what a learner gives the worker loop besides itself:
// the checksums its checkpoints record, and a hook on committed steps.
type learnerExtras struct {
	checksums map[string]string
	onCommit  func(self uint64, c worker.Commit)
}

// newVLPLearner builds the E2E-VLP learner of a job whose model is a
// preset, on the job's shards (or --data DIR) or the synthetic world. It
// returns what the worker loop needs besides (learnerExtras).
func newVLPLearner(c *cli.Context, spec coordinator.JobSpec, log *slog.Logger) (worker.Learner, func(), learnerExtras, error) {
	cfg, err := model.Preset(spec.Model)
	if err != nil {
		return nil, nil, learnerExtras{}, err
	}
	if err := torch.Load(c.String("torch-lib")); err != nil {
		return nil, nil, learnerExtras{}, err
	}
	dev, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return nil, nil, learnerExtras{}, err
	}
	o, err := jobSynthOptions(spec)
	if err != nil {
		return nil, nil, learnerExtras{}, err
	}
	perUnit := uint32(max(spec.Units.PerUnit, 1))
	vcfg := worker.VLPConfig{PerUnit: perUnit, Seed: spec.Seed, Device: dev, Threads: c.Int("threads")}
	var (
		pairs   int64
		extras  learnerExtras
		closers []func()
	)
	switch d := c.String("data"); {
	case d == "synth" || (d == "" && spec.Dataset.Manifest == ""):
		world, _, err := synthWorld(spec)
		if err != nil {
			return nil, nil, learnerExtras{}, err
		}
		vcfg.World, vcfg.Tokenizer = world, world.Tokenizer
		pairs = int64(len(world.Examples))
		cfg.NumClasses = max(cfg.NumClasses, len(synth.ClassNames))
		cfg.NumAttributes = max(cfg.NumAttributes, len(synth.AttributeNames))
	default:
		js, err := openJobShards(spec, d, c.String("vocab"))
		if err != nil {
			return nil, nil, learnerExtras{}, err
		}
		src, err := worker.NewShardExamples(js.dir, js.manifest, spec.Seed, int(perUnit))
		if err != nil {
			return nil, nil, learnerExtras{}, err
		}
		closers = append(closers, func() { src.Close() })
		vcfg.Source, vcfg.Tokenizer, extras.checksums = src, js.tokenizer, js.checksums
		pairs = js.manifest.Pairs
		cfg.NumClasses = max(cfg.NumClasses, len(js.manifest.Classes))
		cfg.NumAttributes = max(cfg.NumAttributes, len(js.manifest.Attributes))
		if p := c.String("pair-log"); p != "" {
			pl, err := openPairLog(p)
			if err != nil {
				return nil, nil, learnerExtras{}, err
			}
			closers = append(closers, func() { pl.Close() })
			pl.src = src
			extras.onCommit = pl.commit
		}
	}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	cfg.VocabSize = max(cfg.VocabSize, vcfg.Tokenizer.Vocab().Size())
	dcfg := data.DefaultConfig()
	dcfg.Image = data.SquareImageConfig(o.ImageSize)
	dcfg.MaxTextLen, dcfg.MaxCaptionLen = cfg.MaxTextLen, cfg.MaxCaptionLen
	vcfg.Data = dcfg
	total := spec.Hyper.MaxSteps
	if total <= 0 {
		total = max(1, int(pairs*int64(spec.Epochs)/int64(spec.GlobalBatch)))
	}
	tc := model.DefaultTrainConfig(total)
	if spec.Hyper.LR > 0 {
		tc.LR, tc.BackboneLR = spec.Hyper.LR, spec.Hyper.LR
	}
	if v, ok := spec.Options["backbone_lr"]; ok {
		if tc.BackboneLR, err = strconv.ParseFloat(v, 64); err != nil {
			closeAll()
			return nil, nil, learnerExtras{}, fmt.Errorf("job option backbone_lr=%q: %v", v, err)
		}
	}
	if spec.Hyper.WeightDecay > 0 {
		tc.WeightDecay = spec.Hyper.WeightDecay
	}
	tc.ClipNorm = model.PresetClipNorm(spec.Model)
	if spec.Hyper.ClipNorm > 0 {
		tc.ClipNorm = spec.Hyper.ClipNorm
	}
	tc.Schedule.Warmup = min(total/10, 100)
	if spec.Hyper.WarmupSteps > 0 {
		tc.Schedule.Warmup = spec.Hyper.WarmupSteps
	}
	tc.Seed = spec.Seed
	vcfg.Model, vcfg.Train = cfg, tc
	l, err := worker.NewVLPLearner(vcfg)
	if err != nil {
		closeAll()
		return nil, nil, learnerExtras{}, err
	}
	total2, trainable := l.Model().NumParams()
	log.Info("model", "preset", spec.Model, "params", total2, "trainable", trainable, "pairs", pairs, "device", c.String("device"))
	return l, func() { l.Close(); closeAll() }, extras, nil
}
