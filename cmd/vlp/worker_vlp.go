package main

import (
	"fmt"
	"log/slog"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// synthWorld renders the job's synthetic world: every worker renders the same one (same seed,
// same options).
func synthWorld(spec coordinator.JobSpec) (*data.SynthWorld, train.Options, error) {
	o, err := train.ParseOptions(spec)
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

// newVLPLearner builds the E2E-VLP learner of a job whose model is a preset (vlpLearnerConfig).
func newVLPLearner(c *cli.Context, spec coordinator.JobSpec, log *slog.Logger) (worker.Learner, func(), learnerExtras, error) {
	vcfg, extras, closeAll, err := vlpLearnerConfig(c, spec)
	if err != nil {
		return nil, nil, learnerExtras{}, err
	}
	logTaskInit(&vcfg, log)
	l, err := train.New(vcfg)
	if err != nil {
		closeAll()
		return nil, nil, learnerExtras{}, err
	}
	total, trainable := l.Model().NumParams()
	log.Info("model", "preset", spec.Model, "params", total, "trainable", trainable, "device", vcfg.Device.String(),
		"precision", map[bool]string{false: "fp32", true: "bf16"}[vcfg.Train.BF16])
	if t := vcfg.Task; t != nil {
		from := "the seed"
		if t.Pretrained != nil {
			from = t.Pretrained.Ref
		}
		log.Info("fine-tuning", "task", string(t.Task), "examples", t.Examples.Records.Len(), "init_from", from,
			"lr", vcfg.Train.LR, "backbone_lr", vcfg.Train.BackboneLR)
	}
	return l, func() { l.Close(); closeAll() }, extras, nil
}

// vlpLearnerConfig is the configuration of the E2E-VLP learner `vlp worker join` builds for spec:
// the spec resolved by train.Resolve, on the job's shards (or --data DIR) or its synthetic
// world, on --device with --threads. It loads LibTorch and refuses a device it cannot drive before
// anything else. closeAll releases the data sources.
func vlpLearnerConfig(c *cli.Context, spec coordinator.JobSpec) (train.Config, learnerExtras, func(), error) {
	fail := func(err error) (train.Config, learnerExtras, func(), error) {
		return train.Config{}, learnerExtras{}, nil, err
	}
	dev, err := loadTorch(c, c.String("device"))
	if err != nil {
		return fail(fmt.Errorf("worker: %w", err))
	}
	if task, err := train.ParseTask(spec.Task); err != nil {
		return fail(err)
	} else if task.FineTuning() {
		for _, f := range []string{"vocab", "pair-log"} {
			if c.String(f) != "" {
				return fail(fmt.Errorf("worker: --%s does not apply to task %s: the tokenizer is the pretraining job's, and the committed examples are in --commit-log", f, task))
			}
		}
		vcfg, err := taskLearnerConfig(spec, c.String("data"), dev, c.Int("threads"))
		if err != nil {
			return fail(err)
		}
		return vcfg, learnerExtras{}, func() {}, nil
	}
	perUnit := uint32(max(spec.Units.PerUnit, 1))
	vcfg := train.Config{PerUnit: perUnit, Seed: spec.Seed, Device: dev, Threads: c.Int("threads")}
	var (
		pairs          int64
		classes, attrs []string
		extras         learnerExtras
		closers        []func()
	)
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	switch d := c.String("data"); {
	case d == "synth" || (d == "" && spec.Dataset.Manifest == ""):
		for _, f := range []string{"vocab", "pair-log"} {
			if c.String(f) != "" {
				return fail(fmt.Errorf("worker: --%s applies to shards only; this worker trains on the synthetic world", f))
			}
		}
		world, _, err := synthWorld(spec)
		if err != nil {
			return fail(err)
		}
		vcfg.World, vcfg.Tokenizer = world, world.Tokenizer
		pairs, classes, attrs = int64(len(world.Examples)), synth.ClassNames, synth.AttributeNames
	default:
		if v, ok := spec.Options[train.OptImages]; ok {
			return fail(fmt.Errorf("%w: option %s=%s sizes the synthetic world; this job trains on shards", worker.ErrJobSpec, train.OptImages, v))
		}
		js, err := openJobShards(spec, d, c.String("vocab"))
		if err != nil {
			return fail(err)
		}
		src, err := train.NewShardExamples(js.dir, js.manifest, spec.Seed, int(perUnit))
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { src.Close() })
		vcfg.Source, vcfg.Tokenizer, extras.checksums = src, js.tokenizer, js.checksums
		pairs, classes, attrs = js.manifest.Pairs, js.manifest.Classes, js.manifest.Attributes
		if p := c.String("pair-log"); p != "" {
			pl, err := openPairLog(p)
			if err != nil {
				closeAll()
				return fail(err)
			}
			closers = append(closers, func() { pl.Close() })
			pl.src = src
			extras.onCommit = pl.commit
		}
	}
	job, err := train.Resolve(spec, pairs)
	if err == nil {
		err = job.Train.CheckDevice(dev) // options.tf32 on a CPU worker: refused before any step
	}
	if err != nil {
		closeAll()
		return fail(err)
	}
	job.FitData(vcfg.Tokenizer.Vocab().Size(), classes, attrs)
	vcfg.Model, vcfg.Train, vcfg.Data = job.Model, job.Train, job.DataConfig()
	vcfg.Overlap, vcfg.BucketBytes = job.Overlap(), job.BucketBytes()
	return vcfg, extras, closeAll, nil
}
