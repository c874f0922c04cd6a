package main

import (
	"fmt"
	"strconv"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// trainHyperFlags are the optimiser's and the schedule's flags beyond --lr, --backbone-lr and
// --clip-norm. Each fills the job-spec field of the same name (hyper.*); 0 leaves the model's
// default, which the usage states.
var trainHyperFlags = []cli.Flag{
	&cli.Float64Flag{Name: "weight-decay", Usage: "AdamW's decoupled weight decay (0: the model's, 1e-4 for E2E-VLP as DETR, none for linear)", EnvVars: []string{"VLP_WEIGHT_DECAY"}, Category: catTrain},
	&cli.Float64Flag{Name: "beta1", Usage: "AdamW's first-moment decay (0: 0.9)", EnvVars: []string{"VLP_BETA1"}, Category: catTrain},
	&cli.Float64Flag{Name: "beta2", Usage: "AdamW's second-moment decay (0: 0.999)", EnvVars: []string{"VLP_BETA2"}, Category: catTrain},
	&cli.Float64Flag{Name: "eps", Usage: "AdamW's denominator term (0: 1e-8)", EnvVars: []string{"VLP_EPS"}, Category: catTrain},
	&cli.IntFlag{Name: "warmup-steps", Usage: "steps of linear learning-rate warm-up (0: a tenth of the steps, at most 100)", EnvVars: []string{"VLP_WARMUP_STEPS"}, Category: catTrain},
	&cli.Float64Flag{Name: "min-lr", Usage: "learning rate the cosine decay ends at, at most --lr (0: a tenth of --lr); the backbone's ends at the same fraction of its own", EnvVars: []string{"VLP_MIN_LR"}, Category: catTrain},
}

// trainMode is what a `vlp train` run trains; it decides which flags apply.
type trainMode struct {
	local  bool // --local: this one process, the synthetic world, no coordinator
	linear bool // --model linear: the pure-Go model
	shards bool // --data DIR
	task   bool // --task T: fine-tuning on the records --data names
}

func trainModeOf(c *cli.Context) trainMode {
	d := c.String("data")
	task := c.String("task") != "" && c.String("task") != "pretrain"
	return trainMode{local: c.Bool("local"), linear: c.String("model") == "linear", shards: !task && d != "" && d != "synth", task: task}
}

func (m trainMode) String() string {
	switch {
	case m.linear:
		return "--model linear"
	case m.task && m.local:
		return "--local --task"
	case m.task:
		return "--task"
	case m.local:
		return "--local"
	case m.linear:
		return "--model linear"
	case m.shards:
		return "--data DIR"
	}
	return "a distributed run"
}

// trainFlagScope lists the `vlp train` flags that do not apply in every mode, where they apply,
// and why not elsewhere. A flag set where it does not apply is refused (checkTrainFlags): every
// flag either takes effect or stops the run. docs/training.md has the same table.
var trainFlagScope = []struct {
	flags   []string
	applies func(trainMode) bool
	why     string
}{
	{[]string{"workers", "dir", "model", "epochs", "per-unit", "checkpoint-every", "progress-every", "ring-transport", "bucket-mib", "overlap",
		"min-workers", "metrics-base-port", "eval"},
		func(m trainMode) bool { return !m.local },
		"--local trains in this one process on the synthetic world, with no coordinator, workers, checkpoints or shards"},
	{[]string{"data"},
		func(m trainMode) bool { return !m.local || m.task },
		"--local trains in this one process on the synthetic world (with --task, on the records --data names)"},
	{[]string{"task", "init-from"},
		func(m trainMode) bool { return !m.linear },
		"the linear model has no tasks: it pretrains on simulated pairs"},
	{[]string{"init-from"},
		func(m trainMode) bool { return m.task },
		"it initialises a fine-tuning task (--task); pretraining starts from the seed and resumes from its own --dir"},
	{[]string{"images", "itm-negatives", "attribute-mask", "vocab", "log-pairs", "eval"},
		func(m trainMode) bool { return !m.task },
		"it shapes pretraining's data or its evaluation; a task reads its records with the pretraining job's tokenizer (docs/finetune.md)"},
	{[]string{"preset", "backbone-lr", "images", "image-size", "attribute-mask", "itm-negatives", "dropout", "bf16", "channels-last", "tf32", "cudnn-benchmark", "threads", "warmup-steps", "min-lr", "data", "eval", "bucket-mib", "overlap"},
		func(m trainMode) bool { return !m.linear },
		"the linear model is pure Go on no data at a constant learning rate: no preset, backbone, images, dropout, precision, memory layout, LibTorch threads, schedule or evaluation"},
	{[]string{"images"},
		func(m trainMode) bool { return !m.shards },
		"it sizes the synthetic world; with --data the shards decide"},
	{[]string{"pairs", "linear-compute"},
		func(m trainMode) bool { return m.linear },
		"it shapes the linear model's simulated data only"},
	{[]string{"vocab", "log-pairs"},
		func(m trainMode) bool { return m.shards },
		"it applies to shards (--data DIR) only"},
}

// checkTrainFlags refuses a flag set where it does not apply, naming it and the mode.
func checkTrainFlags(c *cli.Context) error {
	m := trainModeOf(c)
	for _, r := range trainFlagScope {
		if r.applies(m) {
			continue
		}
		for _, f := range r.flags {
			if c.IsSet(f) {
				return fmt.Errorf("train: --%s does not apply to %s: %s", f, m, r.why)
			}
		}
	}
	if m.task {
		if _, err := train.ParseTask(c.String("task")); err != nil {
			return fmt.Errorf("train: --task %s: want vqa, nlvr2, caption or retrieval", c.String("task"))
		}
		if d := c.String("data"); d == "" || d == "synth" {
			return fmt.Errorf("train: --task %s needs --data RECORDS: the records file of vlp downstream import --records", c.String("task"))
		}
	}
	// A device that does not parse is refused where LibTorch loads (loadTorch).
	dev, derr := torch.ParseDevice(c.String("device"))
	for _, f := range []string{"tf32", "cudnn-benchmark"} {
		if c.Bool(f) && derr == nil && !dev.IsCUDA() {
			return fmt.Errorf("train: --%s applies to CUDA devices (--device cuda:N); this run trains on %s", f, c.String("device"))
		}
	}
	if m.linear && c.String("device") != "cpu" {
		return fmt.Errorf("train: --device %s does not apply to --model linear: it runs on the CPU, in Go", c.String("device"))
	}
	if mdl := c.String("model"); mdl != "" && mdl != "linear" && c.IsSet("preset") && mdl != c.String("preset") {
		return fmt.Errorf("train: --model %s and --preset %s name different models", mdl, c.String("preset"))
	}
	return nil
}

// trainModel is the model a run's flags name: --model, else --preset.
func trainModel(c *cli.Context) string {
	if m := c.String("model"); m != "" && !c.Bool("local") {
		return m
	}
	return c.String("preset")
}

// trainSpecFromFlags is the job spec `vlp train`'s flags describe for its worker processes, before
// its data: trainSpec adds the dataset and the unit count of a distributed run, newLocalRun the
// synthetic world's. --local resolves this same spec (train.Resolve) as a worker would.
func trainSpecFromFlags(c *cli.Context, workers int) coordinator.JobSpec {
	mdl := trainModel(c)
	batch := c.Int("batch")
	perUnit := c.Int("per-unit")
	if perUnit <= 0 {
		perUnit = max(1, batch/workers)
	}
	s := coordinator.JobSpec{
		Name: trainJob, Model: mdl, GlobalBatch: batch, MinWorkers: workers, MaxWorkers: max(workers, 64),
		CheckpointEvery: c.Int("checkpoint-every"), ProgressEvery: c.Int("progress-every"),
		Seed: c.Uint64("seed"), Epochs: c.Int("epochs"),
		Hyper: coordinator.HyperParams{
			LR: c.Float64("lr"), BackboneLR: c.Float64("backbone-lr"), MinLR: c.Float64("min-lr"),
			WeightDecay: c.Float64("weight-decay"), Beta1: c.Float64("beta1"), Beta2: c.Float64("beta2"), Eps: c.Float64("eps"),
			WarmupSteps: c.Int("warmup-steps"), MaxSteps: c.Int("steps"), ClipNorm: clipNorm(c, mdl),
		},
		Units:   coordinator.UnitsSpec{PerUnit: perUnit},
		Options: map[string]string{},
	}
	if m := c.Int("min-workers"); m > 0 {
		s.MinWorkers = min(m, workers)
	}
	if c.Bool("bf16") {
		s.Precision = coordinator.PrecisionBF16
	}
	for flag, opt := range map[string]string{"channels-last": train.OptChannelsLast, "tf32": train.OptTF32, "cudnn-benchmark": train.OptCuDNNBenchmark} {
		if c.Bool(flag) {
			s.Options[opt] = "true"
		}
	}
	if d := c.Float64("dropout"); d >= 0 {
		s.Dropout = &d
	}
	switch {
	case trainModeOf(c).task:
		s.Task = c.String("task")
		if ref := c.String("init-from"); ref != "" {
			s.InitFrom = absCheckpointRef(ref)
		}
		if !c.IsSet("lr") {
			s.Hyper.LR = 0 // the task's default (train.Task.DefaultLR)
		}
		s.Options[train.OptImageSize] = strconv.Itoa(c.Int("image-size"))
		setAllReduceOptions(c, &s)
		return s
	case mdl == "linear":
		s.Options[worker.OptDim] = "64"
		if d := c.Duration("linear-compute"); d > 0 {
			s.Options[worker.OptCompute] = d.String()
		}
		if c.Float64("clip-norm") <= 0 {
			s.Hyper.ClipNorm = 1
		}
	case trainModeOf(c).shards:
		s.Options[train.OptImageSize] = strconv.Itoa(c.Int("image-size"))
	default:
		s.Options[train.OptImages] = strconv.Itoa(c.Int("images"))
		s.Options[train.OptImageSize] = strconv.Itoa(c.Int("image-size"))
	}
	if mdl != "linear" {
		s.Options[train.OptAttributeMask] = fmtFloat(c.Float64("attribute-mask"))
		s.Options[train.OptITMNegatives] = fmtFloat(c.Float64("itm-negatives"))
		setAllReduceOptions(c, &s)
	}
	return s
}

// setAllReduceOptions puts --bucket-mib and --overlap in the spec's options when set: the
// buckets are collectives of the ring, the same on every rank, so they are the job's.
func setAllReduceOptions(c *cli.Context, s *coordinator.JobSpec) {
	if c.IsSet("bucket-mib") && c.Float64("bucket-mib") != 0 {
		s.Options[train.OptBucketMiB] = fmtFloat(c.Float64("bucket-mib"))
	}
	if c.IsSet("overlap") {
		s.Options[train.OptOverlap] = strconv.FormatBool(c.Bool("overlap"))
	}
}

// trainSpecFlags are the flags that fill a job-spec field, with the field as it reads in the
// spec. A resumed run keeps the spec it was submitted with: checkResumeFlags refuses a flag among
// these set to another value than the spec's, rather than ignore it.
var trainSpecFlags = []struct {
	flag, field string
	get         func(coordinator.JobSpec) string
}{
	{"model", "model", func(s coordinator.JobSpec) string { return s.Model }},
	{"preset", "model", func(s coordinator.JobSpec) string { return s.Model }},
	{"batch", "global_batch", func(s coordinator.JobSpec) string { return strconv.Itoa(s.GlobalBatch) }},
	{"seed", "seed", func(s coordinator.JobSpec) string { return strconv.FormatUint(s.Seed, 10) }},
	{"lr", "hyper.lr", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.LR) }},
	{"backbone-lr", "hyper.backbone_lr", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.BackboneLR) }},
	{"min-lr", "hyper.min_lr", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.MinLR) }},
	{"weight-decay", "hyper.weight_decay", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.WeightDecay) }},
	{"beta1", "hyper.beta1", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.Beta1) }},
	{"beta2", "hyper.beta2", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.Beta2) }},
	{"eps", "hyper.eps", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.Eps) }},
	{"warmup-steps", "hyper.warmup_steps", func(s coordinator.JobSpec) string { return strconv.Itoa(s.Hyper.WarmupSteps) }},
	{"clip-norm", "hyper.clip_norm", func(s coordinator.JobSpec) string { return fmtFloat(s.Hyper.ClipNorm) }},
	{"bf16", "precision", func(s coordinator.JobSpec) string {
		if s.Precision == "" {
			return coordinator.PrecisionFP32
		}
		return s.Precision
	}},
	{"dropout", "dropout", func(s coordinator.JobSpec) string {
		if s.Dropout == nil {
			return "the preset's"
		}
		return fmtFloat(*s.Dropout)
	}},
	{"images", "options.images", func(s coordinator.JobSpec) string { return s.Options[train.OptImages] }},
	{"image-size", "options.image_size", func(s coordinator.JobSpec) string { return s.Options[train.OptImageSize] }},
	{"itm-negatives", "options.itm_negatives", func(s coordinator.JobSpec) string { return s.Options[train.OptITMNegatives] }},
	{"attribute-mask", "options.attribute_mask", func(s coordinator.JobSpec) string { return s.Options[train.OptAttributeMask] }},
	{"bucket-mib", "options.bucket_mib", func(s coordinator.JobSpec) string { return s.Options[train.OptBucketMiB] }},
	{"overlap", "options.overlap", func(s coordinator.JobSpec) string { return s.Options[train.OptOverlap] }},
	{"channels-last", "options.channels_last", boolOption(train.OptChannelsLast)},
	{"tf32", "options.tf32", boolOption(train.OptTF32)},
	{"cudnn-benchmark", "options.cudnn_benchmark", boolOption(train.OptCuDNNBenchmark)},
	{"linear-compute", "options.compute", func(s coordinator.JobSpec) string { return s.Options[worker.OptCompute] }},
	{"task", "task", func(s coordinator.JobSpec) string { return s.Task }},
	{"init-from", "init_from", func(s coordinator.JobSpec) string { return s.InitFrom }},
	{"epochs", "epochs", func(s coordinator.JobSpec) string { return strconv.Itoa(s.Epochs) }},
	{"per-unit", "units.per_unit", func(s coordinator.JobSpec) string { return strconv.Itoa(s.Units.PerUnit) }},
	{"pairs", "units.pairs", func(s coordinator.JobSpec) string { return strconv.FormatInt(s.Units.Pairs, 10) }},
	{"min-workers", "min_workers", func(s coordinator.JobSpec) string { return strconv.Itoa(s.MinWorkers) }},
	{"checkpoint-every", "checkpoint_every", func(s coordinator.JobSpec) string { return strconv.Itoa(s.CheckpointEvery) }},
	{"progress-every", "progress_every", func(s coordinator.JobSpec) string { return strconv.Itoa(s.ProgressEvery) }},
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// boolOption reads a true/false job option as a flag sets it: absent is false.
func boolOption(key string) func(coordinator.JobSpec) string {
	return func(s coordinator.JobSpec) string {
		on, err := strconv.ParseBool(s.Options[key])
		return strconv.FormatBool(err == nil && on)
	}
}

// checkResumeFlags refuses, on a resumed run, a flag set to another value than the stored spec's
// field it fills. --steps is the exception: a resumed run may train further.
func checkResumeFlags(c *cli.Context, stored coordinator.JobSpec, workers int, dir string) error {
	fresh := trainSpecFromFlags(c, workers)
	if c.IsSet("pairs") {
		fresh.Units.Pairs = int64(c.Int("pairs"))
	}
	for _, f := range trainSpecFlags {
		if !c.IsSet(f.flag) {
			continue
		}
		if got, want := f.get(fresh), f.get(stored); got != want {
			return fmt.Errorf("train: --%s gives %s %s, but the job in %s was submitted with %s: a resumed run keeps its job spec (a new --dir starts a new job)",
				f.flag, f.field, got, dir, want)
		}
	}
	return nil
}
