package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/synth"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/urfave/cli/v2"
)

const catTrain = "TRAINING"

// threadsUsage is every command's --threads: LibTorch's intra-op threads, and OpenBLAS's pool with
// them (torch.NumThreads), so a process's math runs on that many threads and its float bits do not
// depend on the machine's core count.
const threadsUsage = "threads for the math: LibTorch's intra-op threads and OpenBLAS's pool (0: their defaults, about one a core)"

// trainCommand trains a job on this machine: by default a coordinator and N
// worker processes (train_cluster.go); with --local alone in this process on
// an in-memory synthetic shapes world, the quickest end-to-end check of the
// model, the losses and the optimiser. Both build the same job spec from the
// flags (train_flags.go) and resolve it as every worker does, so a flag means
// the same in both, or is refused where it cannot apply.
var trainCommand = &cli.Command{
	Name:  "train",
	Usage: "train E2E-VLP",
	Flags: append([]cli.Flag{
		&cli.BoolFlag{Name: "local", Usage: "single process on an in-memory synthetic shapes world", EnvVars: []string{"VLP_LOCAL"}, Category: catTrain},
		&cli.StringFlag{Name: "preset", Usage: "model preset: tiny, base, large, or a depth variant (vlp model describe --variants)", Value: "tiny", EnvVars: []string{"VLP_PRESET"}, Category: catModel},
		&cli.IntFlag{Name: "steps", Usage: "optimiser steps", Value: 100, EnvVars: []string{"VLP_STEPS"}, Category: catTrain},
		&cli.IntFlag{Name: "batch", Usage: "rows per batch", Value: 16, EnvVars: []string{"VLP_BATCH"}, Category: catTrain},
		&cli.Float64Flag{Name: "lr", Usage: "peak learning rate of the transformer", Value: 5e-4, EnvVars: []string{"VLP_LR"}, Category: catTrain},
		&cli.Float64Flag{Name: "backbone-lr", Usage: "peak learning rate of the backbone (default: lr)", EnvVars: []string{"VLP_BACKBONE_LR"}, Category: catTrain},
		&cli.Float64Flag{Name: "clip-norm", Usage: "global gradient-norm clipping bound (0: the preset's, 1 for tiny trained from scratch, DETR's 0.1 for base and large)", EnvVars: []string{"VLP_CLIP_NORM"}, Category: catTrain},
		&cli.Uint64Flag{Name: "seed", Usage: "seed of the model, the data and dropout", Value: 1, EnvVars: []string{"VLP_SEED"}, Category: catTrain},
		&cli.IntFlag{Name: "images", Usage: "images in the synthetic world", Value: 512, EnvVars: []string{"VLP_IMAGES"}, Category: catTrain},
		&cli.IntFlag{Name: "image-size", Usage: "side of the synthetic images in pixels", Value: 64, EnvVars: []string{"VLP_IMAGE_SIZE"}, Category: catTrain},
		&cli.Float64Flag{Name: "itm-negatives", Usage: "share of rows given a mismatched text for image-text matching", Value: 0.5, EnvVars: []string{"VLP_ITM_NEGATIVES"}, Category: catTrain},
		&cli.Float64Flag{Name: "attribute-mask", Usage: "probability an attribute word — a colour, an attribute name of the data — is masked for MLM (0: BERT's 15% like any word; docs/model.md)", EnvVars: []string{"VLP_ATTRIBUTE_MASK"}, Category: catTrain},
		&cli.StringFlag{Name: "device", Usage: "cpu or cuda:N", Value: "cpu", EnvVars: []string{"VLP_DEVICE"}, Category: catTrain},
		&cli.Float64Flag{Name: "dropout", Usage: "dropout rate (negative: the preset's)", Value: -1, EnvVars: []string{"VLP_DROPOUT"}, Category: catModel},
		&cli.BoolFlag{Name: "bf16", Usage: "bf16 autocast for forward and backward", EnvVars: []string{"VLP_BF16"}, Category: catTrain},
		&cli.BoolFlag{Name: "channels-last", Usage: "run the backbone's convolutions in the channels-last (NHWC) memory layout: the same function, for GPUs' tensor cores (no gain on a CPU)", EnvVars: []string{"VLP_CHANNELS_LAST"}, Category: catTrain},
		&cli.BoolFlag{Name: "tf32", Usage: "on CUDA, let float32 matrix products use TensorFloat-32 tensor cores (torch.backends.cuda.matmul.allow_tf32); refused on the CPU", EnvVars: []string{"VLP_TF32"}, Category: catTrain},
		&cli.BoolFlag{Name: "cudnn-benchmark", Usage: "on CUDA, let cuDNN time each convolution shape's algorithms and keep the fastest (torch.backends.cudnn.benchmark); refused on the CPU", EnvVars: []string{"VLP_CUDNN_BENCHMARK"}, Category: catTrain},
		&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"VLP_THREADS"}, Category: catTrain},
	}, append(append(trainHyperFlags, trainTaskFlags...), trainClusterFlags...)...),
	Action: runTrain,
}

func runTrain(c *cli.Context) error {
	if err := checkTrainFlags(c); err != nil {
		return err
	}
	switch {
	case !c.Bool("local"):
		return runTrainCluster(c)
	case trainModeOf(c).task:
		return runTaskLocal(c)
	}
	return runTrainLocal(c)
}

// runTrainLocal trains in this process (--local).
func runTrainLocal(c *cli.Context) error {
	run, err := newLocalRun(c)
	if err != nil {
		return err
	}
	if run.threads > 0 {
		torch.NumThreads(run.threads)
	}
	m, err := model.New(run.job.Model, run.job.Train.Seed, run.device)
	if err != nil {
		return err
	}
	defer m.Close()
	tr, err := train.NewEngine(m, run.job.Train)
	if err != nil {
		return err
	}
	defer tr.Close()
	total, trainable := m.NumParams()
	fmt.Fprintf(c.App.Writer, "preset %s: %d parameters (%d trainable), %d images, vocab %d, device %s, %s\n",
		run.spec.Model, total, trainable, run.job.Options.Images, run.world.Tokenizer.Vocab().Size(), run.device, precisionName(run.job.Train.BF16))
	steps := run.spec.Hyper.MaxSteps
	dcfg := run.data
	var batches []*data.Batch
	start := time.Now()
	for step, epoch := 0, uint64(0); step < steps; step++ {
		if len(batches) == 0 {
			dcfg.Epoch = epoch
			if batches, err = run.world.Batches(dcfg); err != nil {
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
		float64(steps*dcfg.BatchSize)/el.Seconds())
	return nil
}

// localRun is what `vlp train --local` trains: the job spec its flags describe, resolved as a
// worker resolves a submitted one (train.Resolve), on the synthetic world of the spec.
type localRun struct {
	spec    coordinator.JobSpec
	job     train.Job
	device  torch.Device
	threads int
	world   *data.SynthWorld
	data    data.Config // the whole --batch in one process
}

// newLocalRun loads LibTorch, refuses a device it cannot drive, and resolves the flags.
func newLocalRun(c *cli.Context) (*localRun, error) {
	dev, err := loadTorch(c, c.String("device"))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	spec := trainSpecFromFlags(c, 1)
	world, _, err := synthWorld(spec)
	if err != nil {
		return nil, err
	}
	spec.Units.Pairs = int64(len(world.Examples))
	if spec = spec.WithDefaults(); spec.Validate() != nil {
		return nil, fmt.Errorf("train: %w", spec.Validate())
	}
	job, err := train.Resolve(spec, spec.Units.Pairs)
	if err != nil {
		return nil, err
	}
	job.FitData(world.Tokenizer.Vocab().Size(), synth.ClassNames, synth.AttributeNames)
	r := &localRun{spec: spec, job: job, device: dev, threads: c.Int("threads"), world: world, data: job.DataConfig()}
	r.data.BatchSize = spec.GlobalBatch
	return r, nil
}

func precisionName(bf16 bool) string {
	if bf16 {
		return "bf16 autocast"
	}
	return "fp32"
}

// auxLoss matches the auxiliary decoder layers' losses (det_ce_0, …),
// which the log line leaves out.
var auxLoss = regexp.MustCompile(`_[0-9]+$`)

// formatMetrics is one log line: step, lr, total and the main losses, the
// gradient norm and the step's time split.
func formatMetrics(mt train.Metrics, rows int) string {
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
