package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// trainTaskFlags make `vlp train` fine-tune: --task names the task, --data its records file (the
// output of `vlp downstream import --records`), --init-from the pretraining checkpoint.
var trainTaskFlags = []cli.Flag{
	&cli.StringFlag{Name: "task", Usage: "fine-tune: vqa, nlvr2, caption or retrieval on the records file --data names (vlp downstream import --records); empty: pretrain", EnvVars: []string{"VLP_TASK"}, Category: catTrain},
	&cli.StringFlag{Name: "init-from", Usage: "with --task: the pretraining checkpoint store to start from, optionally STORE#ID (default: its latest that verifies); empty: from the seed", EnvVars: []string{"VLP_INIT_FROM"}, Category: catTrain},
}

// absCheckpointRef is STORE[#ID] with STORE made absolute (the workers may run elsewhere).
func absCheckpointRef(ref string) string {
	store, suffix := ref, ""
	if i := strings.LastIndex(ref, "#"); i >= 0 {
		store, suffix = ref[:i], ref[i:]
	}
	if abs, err := filepath.Abs(store); err == nil {
		store = abs
	}
	return store + suffix
}

// taskSpecData fills a fine-tuning spec's dataset with the records file at path (absolute, with
// its checksum) and returns its number of examples.
func taskSpecData(s *coordinator.JobSpec, path string) (int64, error) {
	ds, err := taskRecordsAbs(path)
	if err != nil {
		return 0, err
	}
	task, err := train.ParseTask(s.Task)
	if err != nil {
		return 0, err
	}
	o, err := train.ParseOptions(*s)
	if err != nil {
		return 0, err
	}
	recs, err := train.LoadTaskRecords(task, ds.Manifest, o.AnswerMinCount)
	if err != nil {
		return 0, fmt.Errorf("train: --data: %w", err)
	}
	s.Dataset = ds
	return int64(recs.Len()), nil
}

// localTaskRun is what `vlp train --local --task T` trains: the spec its flags describe, resolved
// and built into a learner's configuration exactly as a worker builds it (taskLearnerConfig).
type localTaskRun struct {
	spec coordinator.JobSpec
	cfg  train.Config
}

// newLocalTaskRun loads LibTorch, refuses a device it cannot drive, and resolves the flags.
func newLocalTaskRun(c *cli.Context) (*localTaskRun, error) {
	dev, err := loadTorch(c, c.String("device"))
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	spec := trainSpecFromFlags(c, 1)
	if spec.Units.Pairs, err = taskSpecData(&spec, c.String("data")); err != nil {
		return nil, err
	}
	if spec = spec.WithDefaults(); spec.Validate() != nil {
		return nil, fmt.Errorf("train: %w", spec.Validate())
	}
	cfg, err := taskLearnerConfig(spec, "", dev, c.Int("threads"))
	if err != nil {
		return nil, err
	}
	cfg.Overlap = false // one process: no all-reduce to overlap
	return &localTaskRun{spec: spec, cfg: cfg}, nil
}

// runTaskLocal fine-tunes in this process: the learner a worker would build, fed the epoch's
// examples in unit order, --batch a step; the gradients of the summed loss divided by the rows,
// as the ring divides by the global count.
func runTaskLocal(c *cli.Context) error {
	run, err := newLocalTaskRun(c)
	if err != nil {
		return err
	}
	log, err := cliLogger(c)
	if err != nil {
		return err
	}
	logTaskInit(&run.cfg, log)
	l, err := train.New(run.cfg)
	if err != nil {
		return err
	}
	defer l.Close()
	spec := run.spec
	if err := l.Init(spec.Seed); err != nil {
		return err
	}
	total, trainable := l.Model().NumParams()
	fmt.Fprintf(c.App.Writer, "task %s, preset %s: %d parameters (%d trainable) + head, %d examples, device %s, lr %.2e\n",
		spec.Task, spec.Model, total, trainable, spec.Units.Pairs, run.cfg.Device, run.cfg.Train.LR)
	grad := make([]float32, l.GradSize())
	perUnit := uint64(run.cfg.PerUnit)
	next := uint64(0) // position in the epochs' examples
	start := time.Now()
	for step := 1; step <= spec.Hyper.MaxSteps; step++ {
		pairs := make([]worker.Pair, 0, spec.GlobalBatch)
		for range spec.GlobalBatch {
			epoch, k := next/uint64(spec.Units.Pairs), next%uint64(spec.Units.Pairs)
			pairs = append(pairs, worker.Pair{Epoch: epoch, Unit: uint32(k / perUnit), Offset: uint32(k % perUnit)})
			next++
		}
		t0 := time.Now()
		losses, err := l.Gradients(c.Context, pairs, grad)
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		for i := range grad {
			grad[i] /= float32(len(pairs))
		}
		norm, err := l.Apply(grad, uint64(step))
		if err != nil {
			return fmt.Errorf("step %d: %w", step, err)
		}
		fmt.Fprintf(c.App.Writer, "step %d epoch %d loss %.4f gnorm %.3f step_ms %.1f\n", step, pairs[0].Epoch,
			losses["total"]/float64(len(pairs)), norm, float64(time.Since(t0).Microseconds())/1e3)
	}
	el := time.Since(start)
	fmt.Fprintf(c.App.Writer, "done: %d steps in %s\n", spec.Hyper.MaxSteps, el.Round(time.Millisecond))
	return nil
}
