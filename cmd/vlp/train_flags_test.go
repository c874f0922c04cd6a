package main

import (
	"encoding/json"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// These tests build a learner's configuration the way each mode does — the same functions the
// commands call, with the real flag definitions — and check that every `vlp train` flag and
// every job-spec field lands in it, identically in every mode, or is refused.

// withCommand runs the vlp app on args with cmd's action replaced by fn (the flags are the
// command's own). args start after "vlp".
func withCommand(t *testing.T, cmd *cli.Command, parents []string, args []string, fn func(*cli.Context) error) error {
	t.Helper()
	c := *cmd
	c.Action = fn
	root := &c
	for i := len(parents) - 1; i >= 0; i-- {
		root = &cli.Command{Name: parents[i], Subcommands: []*cli.Command{root}}
	}
	app := &cli.App{Name: "vlp", Flags: globalFlags, Commands: []*cli.Command{root}, Writer: io.Discard, ErrWriter: io.Discard}
	return app.Run(append([]string{"vlp"}, args...))
}

// learnerView is what a learner is built from, in terms every mode shares.
type learnerView struct {
	Model     model.Config
	Train     model.TrainConfig
	Device    torch.Device
	Threads   int
	Batch     int // rows per step over all ranks
	Images    int // images of the synthetic world
	ImageSize int // side of the model's input images
	MaxSteps  int // where the run stops
	// AttributeMask and Attributes are how batches mask attribute words.
	AttributeMask float64
	Attributes    []string
	ITMNegatives  float64
	// BucketBytes is the all-reduce bucket size of a distributed worker (0: automatic; --local
	// has no all-reduce).
	BucketBytes int
	// NoOverlap: a distributed worker all-reduces after backward (--overlap=false).
	NoOverlap bool
}

// localView is `vlp train --local args…`'s learner, from newLocalRun.
func localView(t *testing.T, args ...string) (learnerView, error) {
	t.Helper()
	var v learnerView
	err := withCommand(t, trainCommand, nil, append([]string{"--torch-lib", shimPath(t), "train", "--local"}, args...), func(c *cli.Context) error {
		if err := checkTrainFlags(c); err != nil {
			return err
		}
		r, err := newLocalRun(c)
		if err != nil {
			return err
		}
		v = learnerView{Model: r.job.Model, Train: r.job.Train, Device: r.device, Threads: r.threads, Batch: r.data.BatchSize,
			Images: len(r.world.Metas), ImageSize: r.data.Image.Square, MaxSteps: r.spec.Hyper.MaxSteps,
			AttributeMask: r.data.AttributeMaskProb, Attributes: r.data.AttributeWords, ITMNegatives: r.data.ITMNegProb}
		return nil
	})
	return v, err
}

// distributedView is worker 0's learner in `vlp train args…`: the spec the run submits, through
// JSON as the coordinator hands it on, and the worker's own arguments.
func distributedView(t *testing.T, args ...string) (learnerView, coordinator.JobSpec, []string, error) {
	t.Helper()
	var (
		spec  coordinator.JobSpec
		wargs []string
	)
	dir := t.TempDir()
	err := withCommand(t, trainCommand, nil, append([]string{"--torch-lib", shimPath(t), "train", "--dir", dir}, args...), func(c *cli.Context) error {
		if err := checkTrainFlags(c); err != nil {
			return err
		}
		s, err := trainSpec(c, 2, dir)
		if err != nil {
			return err
		}
		if err := resolveTrainSpec(c, s); err != nil {
			return err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &spec); err != nil {
			return err
		}
		wargs, err = trainWorkerArgs(c, 0, "nats://127.0.0.1:4222", dir)
		return err
	})
	if err != nil {
		return learnerView{}, spec, nil, err
	}
	v, err := workerView(t, spec, wargs)
	return v, spec, wargs, err
}

// workerView is the learner `vlp worker join args…` builds for spec (vlpLearnerConfig).
func workerView(t *testing.T, spec coordinator.JobSpec, args []string) (learnerView, error) {
	t.Helper()
	var v learnerView
	err := withCommand(t, workerJoinCommand, []string{"worker"}, args, func(c *cli.Context) error {
		vc, _, closeAll, err := vlpLearnerConfig(c, spec)
		if err != nil {
			return err
		}
		defer closeAll()
		v = learnerView{Model: vc.Model, Train: vc.Train, Device: vc.Device, Threads: vc.Threads, Batch: spec.GlobalBatch,
			Images: len(vc.World.Metas), ImageSize: vc.Data.Image.Square, MaxSteps: spec.Hyper.MaxSteps,
			AttributeMask: vc.Data.AttributeMaskProb, Attributes: vc.Data.AttributeWords, ITMNegatives: vc.Data.ITMNegProb,
			BucketBytes: vc.BucketBytes, NoOverlap: !vc.Overlap}
		if m := c.Uint64("max-steps"); m > 0 {
			v.MaxSteps = int(m)
		}
		return nil
	})
	return v, err
}

// specView is the learner `vlp worker join` builds for a job spec written in YAML.
func specView(t *testing.T, text string, args ...string) (learnerView, error) {
	t.Helper()
	spec, err := coordinator.ParseJobSpecYAML([]byte(text), "train")
	if err != nil {
		return learnerView{}, err
	}
	return workerView(t, spec, append([]string{"--torch-lib", shimPath(t), "worker", "join"}, args...))
}

// overlayYAML is base with the top-level keys of over replacing its own.
func overlayYAML(t *testing.T, base, over string) string {
	t.Helper()
	var a, b map[string]any
	if err := yaml.Unmarshal([]byte(base), &a); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(over), &b); err != nil {
		t.Fatal(err)
	}
	for k, v := range b {
		a[k] = v
	}
	out, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(b)) }

// Every `vlp train` flag that shapes the learner reaches the same configuration with --local,
// in a distributed run's worker, and — for the spec fields — from a job spec written by hand.
func TestTrainFlagsReachTheLearner(t *testing.T) {
	tiny, base := model.Tiny(), model.Base()
	const baseYAML = "name: train\nglobal_batch: 16\nseed: 1\noptions: {images: \"8\"}\n"
	cases := []struct {
		name  string
		flags []string
		yaml  string   // the same in a job spec (model and hyper lines); "": no spec field
		wargs []string // the worker flags of the spec's case
		check func(v learnerView) bool
	}{
		{"defaults", nil, "model: tiny\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			tc := v.Train
			return v.Model.DModel == tiny.DModel && v.Model.Dropout == tiny.Dropout && near(tc.LR, 5e-4) && near(tc.BackboneLR, 5e-4) &&
				tc.ClipNorm == 1 && near(tc.WeightDecay, 1e-4) && tc.Beta1 == 0.9 && tc.Beta2 == 0.999 && tc.Eps == 1e-8 &&
				tc.Schedule == model.Schedule{Warmup: 10, Total: 100, MinRatio: 0.1} && !tc.BF16 && tc.Seed == 1 &&
				v.Device == torch.CPU && v.Threads == 0 && v.Batch == 16 && v.Images == 8 && v.ImageSize == 64 && v.MaxSteps == 100 &&
				v.AttributeMask == 0 && v.ITMNegatives == 0.5 && slices.Contains(v.Attributes, "red") && slices.Contains(v.Attributes, "small") &&
				!v.Model.ChannelsLast
		}},
		{"preset", []string{"--preset", "base"}, "model: base\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Model.EncoderLayers == base.EncoderLayers && v.Model.DModel == base.DModel && v.Train.ClipNorm == 0.1
		}},
		{"steps", []string{"--steps", "40"}, "model: tiny\nhyper: {lr: 0.0005, max_steps: 40}", nil, func(v learnerView) bool {
			return v.MaxSteps == 40 && v.Train.Schedule.Total == 40 && v.Train.Schedule.Warmup == 4
		}},
		{"batch", []string{"--batch", "12"}, "model: tiny\nglobal_batch: 12\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Batch == 12
		}},
		{"lr", []string{"--lr", "0.003"}, "model: tiny\nhyper: {lr: 0.003, max_steps: 100}", nil, func(v learnerView) bool {
			return near(v.Train.LR, 0.003) && near(v.Train.BackboneLR, 0.003)
		}},
		{"backbone-lr", []string{"--backbone-lr", "1e-5"}, "model: tiny\nhyper: {lr: 0.0005, backbone_lr: 1.0e-5, max_steps: 100}", nil, func(v learnerView) bool {
			return near(v.Train.BackboneLR, 1e-5) && near(v.Train.LR, 5e-4)
		}},
		{"clip-norm", []string{"--clip-norm", "0.25"}, "model: tiny\nhyper: {lr: 0.0005, clip_norm: 0.25, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.ClipNorm == 0.25
		}},
		{"seed", []string{"--seed", "7"}, "model: tiny\nseed: 7\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.Seed == 7
		}},
		{"images", []string{"--images", "6"}, "model: tiny\noptions: {images: \"6\"}\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Images == 6
		}},
		{"image-size", []string{"--image-size", "48"}, "model: tiny\noptions: {images: \"8\", image_size: \"48\"}\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.ImageSize == 48
		}},
		{"attribute-mask", []string{"--attribute-mask", "0.5"}, "model: tiny\noptions: {images: \"8\", attribute_mask: \"0.5\"}\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.AttributeMask == 0.5
		}},
		{"itm-negatives", []string{"--itm-negatives", "0.25"}, "model: tiny\noptions: {images: \"8\", itm_negatives: \"0.25\"}\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.ITMNegatives == 0.25
		}},
		{"device", []string{"--device", "cpu"}, "model: tiny\nhyper: {lr: 0.0005, max_steps: 100}", []string{"--device", "cpu"}, func(v learnerView) bool {
			return v.Device == torch.CPU
		}},
		{"dropout", []string{"--dropout", "0.2"}, "model: tiny\ndropout: 0.2\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Model.Dropout == 0.2
		}},
		{"bf16", []string{"--bf16"}, "model: tiny\nprecision: bf16\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.BF16
		}},
		{"channels-last", []string{"--channels-last"}, "model: tiny\noptions: {images: \"8\", channels_last: \"true\"}\nhyper: {lr: 0.0005, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Model.ChannelsLast && !v.Train.BF16
		}},
		{"threads", []string{"--threads", "3"}, "model: tiny\nhyper: {lr: 0.0005, max_steps: 100}", []string{"--threads", "3"}, func(v learnerView) bool {
			return v.Threads == 3
		}},
		{"weight-decay", []string{"--weight-decay", "0.05"}, "model: tiny\nhyper: {lr: 0.0005, weight_decay: 0.05, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.WeightDecay == 0.05
		}},
		{"beta1", []string{"--beta1", "0.8"}, "model: tiny\nhyper: {lr: 0.0005, beta1: 0.8, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.Beta1 == 0.8 && v.Train.Beta2 == 0.999
		}},
		{"beta2", []string{"--beta2", "0.95"}, "model: tiny\nhyper: {lr: 0.0005, beta2: 0.95, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.Beta2 == 0.95 && v.Train.Beta1 == 0.9
		}},
		{"eps", []string{"--eps", "1e-6"}, "model: tiny\nhyper: {lr: 0.0005, eps: 1.0e-6, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.Eps == 1e-6
		}},
		{"warmup-steps", []string{"--warmup-steps", "7"}, "model: tiny\nhyper: {lr: 0.0005, warmup_steps: 7, max_steps: 100}", nil, func(v learnerView) bool {
			return v.Train.Schedule.Warmup == 7
		}},
		{"min-lr", []string{"--min-lr", "2e-5"}, "model: tiny\nhyper: {lr: 0.0005, min_lr: 2.0e-5, max_steps: 100}", nil, func(v learnerView) bool {
			return near(v.Train.Schedule.MinRatio, 0.04)
		}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range tc.flags {
				if strings.HasPrefix(f, "--") {
					covered[f[2:]] = true
				}
			}
			args := append([]string{"--images", "8"}, tc.flags...)
			if tc.name == "images" {
				args = tc.flags
			}
			local, err := localView(t, args...)
			if err != nil {
				t.Fatalf("--local %v: %v", args, err)
			}
			if !tc.check(local) {
				t.Errorf("--local %v: the learner is %+v", args, local)
			}
			dist, _, _, err := distributedView(t, args...)
			if err != nil {
				t.Fatalf("distributed %v: %v", args, err)
			}
			if !tc.check(dist) {
				t.Errorf("distributed %v: the worker's learner is %+v", args, dist)
			}
			if !equalViews(local, dist) {
				t.Errorf("%v: --local and a distributed worker differ:\n%+v\n%+v", args, local, dist)
			}
			spec, err := specView(t, overlayYAML(t, baseYAML, tc.yaml), tc.wargs...)
			if err != nil {
				t.Fatalf("job spec %q: %v", tc.yaml, err)
			}
			if !tc.check(spec) {
				t.Errorf("job spec %q: the worker's learner is %+v", tc.yaml, spec)
			}
		})
	}

	// Every flag of `vlp train` is checked somewhere: here, in the next tests, or by a test that
	// runs the binary (named).
	elsewhere := map[string]string{
		"local": "selects the mode", "dir": "TestTrainEmbeddedAndResume", "workers": "TestTrainEmbeddedAndResume",
		"model": "TestTrainLinearFlags", "pairs": "TestTrainLinearFlags", "linear-compute": "TestTrainLinearFlags",
		"epochs": "TestTrainDistributedFlags", "per-unit": "TestTrainDistributedFlags", "checkpoint-every": "TestTrainDistributedFlags",
		"progress-every": "TestTrainDistributedFlags", "ring-transport": "TestTrainDistributedFlags", "min-workers": "TestTrainDistributedFlags",
		"metrics-base-port": "TestTrainDistributedFlags", "data": "TestTrainOnShards", "vocab": "TestTrainDistributedFlags",
		"log-pairs": "TestTrainOnShards", "eval": "TestTrainOnShards", "bucket-mib": "TestTrainBucketFlag", "overlap": "TestTrainBucketFlag",
		"task": "TestTrainTaskFlags", "init-from": "TestTrainTaskFlags",
		"tf32": "TestTrainCUDAMathFlags", "cudnn-benchmark": "TestTrainCUDAMathFlags",
	}
	for _, f := range trainCommand.Flags {
		name := f.Names()[0]
		if !covered[name] && elsewhere[name] == "" {
			t.Errorf("--%s: no test shows where it lands", name)
		}
	}
}

func equalViews(a, b learnerView) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// The flags of a distributed run that shape the job rather than the learner land in the spec the
// run submits, or in its workers' arguments.
func TestTrainDistributedFlags(t *testing.T) {
	_, spec, wargs, err := distributedView(t, "--images", "8", "--batch", "8", "--epochs", "3", "--per-unit", "3", "--checkpoint-every", "7",
		"--progress-every", "2", "--min-workers", "1", "--ring-transport", "tcp", "--metrics-base-port", "9100", "--steps", "30")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Epochs != 3 || spec.Units.PerUnit != 3 || spec.CheckpointEvery != 7 || spec.ProgressEvery != 2 || spec.MinWorkers != 1 ||
		spec.GlobalBatch != 8 || spec.Hyper.MaxSteps != 30 || spec.Units.Pairs == 0 {
		t.Errorf("the spec: %+v", spec)
	}
	joined := strings.Join(wargs, " ")
	for _, want := range []string{"--ring-transport tcp", "--metrics-addr 127.0.0.1:9100", "--max-steps 30", "--device cpu"} {
		if !strings.Contains(joined, want) {
			t.Errorf("worker 0's arguments %q lack %q", joined, want)
		}
	}
	// --vocab names the tokenizer of a run on shards: the worker gets it, absolute.
	vocab := filepath.Join(t.TempDir(), "vocab.txt")
	err = withCommand(t, trainCommand, nil, []string{"train", "--data", "shards", "--vocab", vocab}, func(c *cli.Context) error {
		if err := checkTrainFlags(c); err != nil {
			return err
		}
		wargs, err = trainWorkerArgs(c, 1, "nats://x", t.TempDir())
		return err
	})
	if err != nil || !strings.Contains(strings.Join(wargs, " "), "--vocab "+vocab) {
		t.Errorf("--vocab: %v %q", err, wargs)
	}
}

// --bucket-mib (options.bucket_mib) sizes a distributed worker's all-reduce buckets and
// --overlap=false (options.overlap) all-reduces them after backward, from the flag and from a job
// spec; --local (no all-reduce) and the linear model refuse both, and a value out of range is
// refused naming the option.
func TestTrainBucketFlag(t *testing.T) {
	v, spec, _, err := distributedView(t, "--images", "8", "--bucket-mib", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if v.BucketBytes != 512<<10 || spec.Options[train.OptBucketMiB] != "0.5" {
		t.Errorf("--bucket-mib 0.5: buckets of %d bytes, spec options %v", v.BucketBytes, spec.Options)
	}
	if v, _, _, err := distributedView(t, "--images", "8"); err != nil || v.BucketBytes != 0 || v.NoOverlap {
		t.Errorf("default: buckets of %d bytes (want 0, automatic), overlap off %v, %v", v.BucketBytes, v.NoOverlap, err)
	}
	if v, spec, _, err := distributedView(t, "--images", "8", "--overlap=false"); err != nil || !v.NoOverlap || spec.Options[train.OptOverlap] != "false" {
		t.Errorf("--overlap=false: overlap off %v, options %v, %v", v.NoOverlap, spec.Options, err)
	}
	if sv, err := specView(t, "name: train\nmodel: tiny\nglobal_batch: 16\nseed: 1\noptions: {images: \"8\", overlap: \"false\"}\nhyper: {lr: 0.0005, max_steps: 10}\n"); err != nil || !sv.NoOverlap {
		t.Errorf("job spec overlap false: overlap off %v, %v", sv.NoOverlap, err)
	}
	if _, err := specView(t, "name: train\nmodel: tiny\nglobal_batch: 16\nseed: 1\noptions: {images: \"8\", overlap: \"sometimes\"}\nhyper: {lr: 0.0005, max_steps: 10}\n"); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("job spec overlap sometimes: %v, want an error naming the option", err)
	}
	sv, err := specView(t, "name: train\nmodel: tiny\nglobal_batch: 16\nseed: 1\noptions: {images: \"8\", bucket_mib: \"2\"}\nhyper: {lr: 0.0005, max_steps: 10}\n")
	if err != nil || sv.BucketBytes != 2<<20 {
		t.Errorf("job spec bucket_mib 2: buckets of %d bytes, %v", sv.BucketBytes, err)
	}
	for _, args := range [][]string{{"--local", "--bucket-mib", "1"}, {"--model", "linear", "--bucket-mib", "1"}, {"--local", "--overlap=false"}, {"--model", "linear", "--overlap=false"}} {
		err := withCommand(t, trainCommand, nil, append([]string{"train"}, args...), checkTrainFlags)
		name := "--bucket-mib"
		if strings.HasPrefix(args[len(args)-1], "--overlap") {
			name = "--overlap"
		}
		if err == nil || !strings.Contains(err.Error(), name+" does not apply") {
			t.Errorf("%v: %v, want a refusal naming %s", args, err, name)
		}
	}
	if _, _, _, err := distributedView(t, "--images", "8", "--bucket-mib", "-1"); err == nil || !strings.Contains(err.Error(), "bucket_mib") {
		t.Errorf("--bucket-mib -1: %v, want an error naming options.bucket_mib", err)
	}
}

// The linear model's flags reach its learner; the flags it has no use for are refused.
func TestTrainLinearFlags(t *testing.T) {
	var spec coordinator.JobSpec
	dir := t.TempDir()
	args := []string{"train", "--dir", dir, "--model", "linear", "--lr", "0.02", "--clip-norm", "0.5", "--weight-decay", "0.01",
		"--beta1", "0.7", "--beta2", "0.9", "--eps", "1e-7", "--pairs", "96", "--linear-compute", "3ms", "--batch", "8"}
	err := withCommand(t, trainCommand, nil, args, func(c *cli.Context) error {
		if err := checkTrainFlags(c); err != nil {
			return err
		}
		var err error
		if spec, err = trainSpec(c, 2, dir); err != nil {
			return err
		}
		return resolveTrainSpec(c, spec)
	})
	if err != nil {
		t.Fatal(err)
	}
	var j worker.LinearJob
	err = withCommand(t, workerJoinCommand, []string{"worker"}, []string{"worker", "join"}, func(c *cli.Context) error {
		var err error
		j, err = linearJob(c, spec)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := worker.LinearHyper{LR: 0.02, Beta1: 0.7, Beta2: 0.9, Eps: 1e-7, WeightDecay: 0.01, ClipNorm: 0.5, Compute: 3 * time.Millisecond}
	if j.Hyper != want || j.Dim != 64 || spec.Units.Pairs != 96 || spec.GlobalBatch != 8 {
		t.Errorf("linear learner %+v (spec units %+v), want %+v", j, spec.Units, want)
	}
	// A worker flag the linear model has no use for is refused.
	for _, a := range [][]string{{"--device", "cuda:0"}, {"--threads", "2"}, {"--data", "synth"}, {"--pair-log", "p.log"}} {
		err := withCommand(t, workerJoinCommand, []string{"worker"}, append([]string{"worker", "join"}, a...), func(c *cli.Context) error {
			_, err := linearJob(c, spec)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), a[0]) {
			t.Errorf("worker join %v on a linear job: %v; want an error naming the flag", a, err)
		}
	}
}

// A flag set where it does not apply stops the run with one line naming it, before anything
// starts.
func TestTrainFlagsRefused(t *testing.T) {
	cases := []struct {
		mode  []string
		flags [][]string
	}{
		{[]string{"--local"}, [][]string{{"--workers", "2"}, {"--dir", "d"}, {"--model", "tiny"}, {"--epochs", "2"}, {"--per-unit", "2"},
			{"--checkpoint-every", "5"}, {"--progress-every", "5"}, {"--ring-transport", "tcp"}, {"--min-workers", "1"},
			{"--metrics-base-port", "9000"}, {"--data", "synth"}, {"--eval", "0"}, {"--pairs", "10"}, {"--linear-compute", "1ms"},
			{"--vocab", "v.txt"}, {"--log-pairs"}}},
		{[]string{"--model", "linear"}, [][]string{{"--preset", "base"}, {"--backbone-lr", "1e-4"}, {"--images", "8"}, {"--image-size", "32"},
			{"--dropout", "0"}, {"--bf16"}, {"--channels-last"}, {"--threads", "1"}, {"--warmup-steps", "3"}, {"--min-lr", "1e-5"}, {"--data", "synth"},
			{"--eval", "0"}, {"--device", "cuda:0"}, {"--vocab", "v.txt"}}},
		{nil, [][]string{{"--pairs", "5"}, {"--linear-compute", "1ms"}, {"--vocab", "v.txt"}, {"--log-pairs"}}},
		{[]string{"--data", "/shards"}, [][]string{{"--images", "8"}, {"--model", "tiny", "--preset", "base"}}},
	}
	for _, tc := range cases {
		for _, f := range tc.flags {
			args := append(append([]string{"train"}, tc.mode...), f...)
			err := withCommand(t, trainCommand, nil, args, checkTrainFlags)
			if err == nil || !strings.Contains(err.Error(), f[0]) || strings.Contains(err.Error(), "\n") {
				t.Errorf("vlp %v: %v; want one line naming %s", args, err, f[0])
			}
		}
	}
}

// A resumed run keeps its spec: a flag that would change it is refused, naming the flag and the
// spec field; --steps may grow.
func TestTrainResumeFlags(t *testing.T) {
	dir := t.TempDir()
	var stored coordinator.JobSpec
	first := []string{"train", "--dir", dir, "--model", "linear", "--lr", "0.02", "--batch", "8", "--checkpoint-every", "5"}
	if err := withCommand(t, trainCommand, nil, first, func(c *cli.Context) (err error) {
		stored, err = trainSpec(c, 2, dir)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		says  string // "": accepted
	}{
		{[]string{"--steps", "500"}, ""},
		{[]string{"--lr", "0.02", "--batch", "8", "--checkpoint-every", "5"}, ""},
		{[]string{"--lr", "0.01"}, "--lr gives hyper.lr 0.01, but the job in " + dir + " was submitted with 0.02"},
		{[]string{"--batch", "4"}, "global_batch"},
		{[]string{"--weight-decay", "0.1"}, "hyper.weight_decay"},
		{[]string{"--checkpoint-every", "9"}, "checkpoint_every"},
		{[]string{"--seed", "3"}, "seed"},
		{[]string{"--pairs", "10"}, "units.pairs"},
		{[]string{"--channels-last=false"}, ""},
		{[]string{"--channels-last"}, "--channels-last gives options.channels_last true, but the job in " + dir + " was submitted with false"},
	} {
		args := append([]string{"train", "--dir", dir, "--model", "linear"}, tc.flags...)
		err := withCommand(t, trainCommand, nil, args, func(c *cli.Context) error { return checkResumeFlags(c, stored, 2, dir) })
		switch {
		case tc.says == "" && err != nil:
			t.Errorf("resume %v: %v", tc.flags, err)
		case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("resume %v: %v; want an error saying %q", tc.flags, err, tc.says)
		}
	}
}

// --tf32 and --cudnn-benchmark are CUDA's: on the CPU every mode refuses them, naming the flag and
// the device, and a CPU worker refuses a job spec that sets them. With a CUDA device they fill the
// job's options, which resolve to the training configuration every mode builds its engine from.
func TestTrainCUDAMathFlags(t *testing.T) {
	for _, flag := range []string{"--tf32", "--cudnn-benchmark"} {
		for _, mode := range [][]string{{"--local"}, nil, {"--task", "vqa", "--data", "records.jsonl"}} {
			args := append(append([]string{"train"}, mode...), flag)
			err := withCommand(t, trainCommand, nil, args, checkTrainFlags)
			if err == nil || !strings.Contains(err.Error(), flag+" applies to CUDA devices") || !strings.Contains(err.Error(), "cpu") {
				t.Errorf("%v: %v, want a refusal naming %s and the device", args, err, flag)
			}
		}
		var spec coordinator.JobSpec
		err := withCommand(t, trainCommand, nil, []string{"train", "--device", "cuda:0", flag}, func(c *cli.Context) error {
			if err := checkTrainFlags(c); err != nil {
				return err
			}
			spec = trainSpecFromFlags(c, 2)
			return nil
		})
		if err != nil {
			t.Fatalf("%s --device cuda:0: %v", flag, err)
		}
		key := strings.ReplaceAll(strings.TrimPrefix(flag, "--"), "-", "_")
		if spec.Options[key] != "true" {
			t.Fatalf("%s: the spec's options are %v, want %s true", flag, spec.Options, key)
		}
		spec.Options[train.OptImages], spec.Hyper.MaxSteps = "8", 10
		job, err := train.Resolve(spec, 8)
		if err != nil {
			t.Fatal(err)
		}
		if on := map[string]bool{"tf32": job.Train.TF32, "cudnn_benchmark": job.Train.CuDNNBenchmark}; !on[key] || len(on) != 2 || on["tf32"] == on["cudnn_benchmark"] {
			t.Errorf("%s: resolved to TF32 %v, cuDNN benchmark %v", flag, job.Train.TF32, job.Train.CuDNNBenchmark)
		}
		_, err = specView(t, "name: train\nmodel: tiny\nglobal_batch: 16\nseed: 1\noptions: {images: \"8\", "+key+": \"true\"}\nhyper: {lr: 0.0005, max_steps: 10}\n")
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "CUDA") {
			t.Errorf("a CPU worker given options.%s true: %v, want a refusal naming it", key, err)
		}
	}
}
