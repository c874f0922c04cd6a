package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/urfave/cli/v2"
)

const catTrain = "TRAINING"

// trainCommand trains in this process. With --local it runs alone on an
// in-memory synthetic shapes world: the quickest end-to-end check of the
// model, the losses and the optimiser on any machine with LibTorch.
var trainCommand = &cli.Command{
	Name:  "train",
	Usage: "train E2E-VLP",
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "local", Usage: "single process on an in-memory synthetic shapes world", EnvVars: []string{"VLP_LOCAL"}, Category: catTrain},
		&cli.StringFlag{Name: "preset", Usage: "model preset: tiny, base or large", Value: "tiny", EnvVars: []string{"VLP_PRESET"}, Category: catModel},
		&cli.IntFlag{Name: "steps", Usage: "optimiser steps", Value: 100, EnvVars: []string{"VLP_STEPS"}, Category: catTrain},
		&cli.IntFlag{Name: "batch", Usage: "rows per batch", Value: 16, EnvVars: []string{"VLP_BATCH"}, Category: catTrain},
		&cli.Float64Flag{Name: "lr", Usage: "peak learning rate of the transformer", Value: 5e-4, EnvVars: []string{"VLP_LR"}, Category: catTrain},
		&cli.Float64Flag{Name: "backbone-lr", Usage: "peak learning rate of the backbone (default: lr)", EnvVars: []string{"VLP_BACKBONE_LR"}, Category: catTrain},
		&cli.Float64Flag{Name: "clip-norm", Usage: "global gradient-norm clipping bound (0: the preset's, 1 for tiny trained from scratch, DETR's 0.1 for base and large)", EnvVars: []string{"VLP_CLIP_NORM"}, Category: catTrain},
		&cli.Uint64Flag{Name: "seed", Usage: "seed of the model, the data and dropout", Value: 1, EnvVars: []string{"VLP_SEED"}, Category: catTrain},
		&cli.IntFlag{Name: "images", Usage: "images in the synthetic world", Value: 512, EnvVars: []string{"VLP_IMAGES"}, Category: catTrain},
		&cli.IntFlag{Name: "image-size", Usage: "side of the synthetic images in pixels", Value: 64, EnvVars: []string{"VLP_IMAGE_SIZE"}, Category: catTrain},
		&cli.StringFlag{Name: "device", Usage: "cpu or cuda:N", Value: "cpu", EnvVars: []string{"VLP_DEVICE"}, Category: catTrain},
		&cli.Float64Flag{Name: "dropout", Usage: "dropout rate (negative: the preset's)", Value: -1, EnvVars: []string{"VLP_DROPOUT"}, Category: catModel},
		&cli.BoolFlag{Name: "bf16", Usage: "bf16 autocast for forward and backward", EnvVars: []string{"VLP_BF16"}, Category: catTrain},
		&cli.IntFlag{Name: "threads", Usage: "LibTorch intra-op threads (0: its default)", EnvVars: []string{"VLP_THREADS"}, Category: catTrain},
	}, trainClusterFlags...),
	Action: runTrainLocal,
}

func runTrainLocal(c *cli.Context) error {
	if !c.Bool("local") {
		return runTrainCluster(c)
	}
	if err := torch.Load(c.String("torch-lib")); err != nil {
		return err
	}
	if n := c.Int("threads"); n > 0 {
		torch.NumThreads(n)
	}
	dev, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return err
	}
	cfg, err := model.Preset(c.String("preset"))
	if err != nil {
		return err
	}
	if d := c.Float64("dropout"); d >= 0 {
		cfg.Dropout = d
	}
	seed := c.Uint64("seed")
	side := c.Int("image-size")
	world, err := data.NewSynthWorld(synth.Config{Seed: seed, Images: c.Int("images"), Width: side, Height: side, MaxObjects: 2}, false)
	if err != nil {
		return err
	}
	v := world.Tokenizer.Vocab()
	cfg.VocabSize = max(cfg.VocabSize, v.Size())
	cfg.NumClasses = max(cfg.NumClasses, len(synth.ClassNames))
	cfg.NumAttributes = max(cfg.NumAttributes, len(synth.AttributeNames))
	dcfg := data.DefaultConfig()
	dcfg.BatchSize, dcfg.Seed = c.Int("batch"), seed
	dcfg.Image = data.SquareImageConfig(side)
	dcfg.MaxTextLen, dcfg.MaxCaptionLen = cfg.MaxTextLen, cfg.MaxCaptionLen
	m, err := model.New(cfg, seed, dev)
	if err != nil {
		return err
	}
	defer m.Close()
	steps := c.Int("steps")
	tc := model.DefaultTrainConfig(steps)
	tc.LR, tc.BackboneLR, tc.Seed = c.Float64("lr"), c.Float64("lr"), seed
	if c.IsSet("backbone-lr") {
		tc.BackboneLR = c.Float64("backbone-lr")
	}
	tc.Schedule.Warmup = min(steps/10, 100)
	tc.ClipNorm = clipNorm(c, c.String("preset"))
	tc.BF16 = c.Bool("bf16")
	tr, err := model.NewTrainer(m, tc)
	if err != nil {
		return err
	}
	defer tr.Close()
	total, trainable := m.NumParams()
	fmt.Fprintf(c.App.Writer, "preset %s: %d parameters (%d trainable), %d images, vocab %d, device %s\n",
		c.String("preset"), total, trainable, c.Int("images"), v.Size(), c.String("device"))
	var batches []*data.Batch
	start := time.Now()
	for step, epoch := 0, uint64(0); step < steps; step++ {
		if len(batches) == 0 {
			dcfg.Epoch = epoch
			if batches, err = world.Batches(dcfg); err != nil {
				return err
			}
			epoch++
		}
		b := batches[0]
		batches = batches[1:]
		mt, err := tr.Step(b)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		fmt.Fprintln(c.App.Writer, formatMetrics(mt, b.Size))
	}
	el := time.Since(start)
	fmt.Fprintf(c.App.Writer, "done: %d steps in %s (%.1f samples/s)\n", steps, el.Round(time.Millisecond),
		float64(steps*c.Int("batch"))/el.Seconds())
	return nil
}

// auxLoss matches the auxiliary decoder layers' losses (det_ce_0, …),
// which the log line leaves out.
var auxLoss = regexp.MustCompile(`_[0-9]+$`)

// formatMetrics is one log line: step, lr, total and the main losses, the
// gradient norm and the step's time split.
func formatMetrics(mt model.Metrics, rows int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "step %d lr %.2e loss %.4f", mt.Step, mt.LR, mt.Losses["total"])
	names := make([]string, 0, len(mt.Losses))
	for k := range mt.Losses {
		if k != "total" && !auxLoss.MatchString(k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&sb, " %s %.4f", k, mt.Losses[k])
	}
	fmt.Fprintf(&sb, " gnorm %.3f step_ms %.1f match_ms %.2f samples/s %.1f", mt.GradNorm,
		float64(mt.Total.Microseconds())/1e3, float64(mt.Matcher.Microseconds())/1e3, float64(rows)/mt.Total.Seconds())
	return sb.String()
}

// clipNorm is --clip-norm, or the preset's bound when it is 0.
func clipNorm(c *cli.Context, preset string) float64 {
	if v := c.Float64("clip-norm"); v > 0 {
		return v
	}
	return model.PresetClipNorm(preset)
}
