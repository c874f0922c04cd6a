package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

const catBenchTrain = "BENCH TRAIN"

// benchTrainSkip are the `vlp train` flags bench train does not pass on: it chooses the run
// directory, runs no evaluation, and trains a preset (the linear model has no PyTorch peer).
var benchTrainSkip = []string{"local", "dir", "eval", "model", "pairs", "linear-compute", "log-pairs", "metrics-base-port"}

var benchTrainCommand = &cli.Command{
	Name:  "train",
	Usage: "vlp's multi-worker training step next to PyTorch DistributedDataParallel on the same shapes",
	Description: "Each round runs `vlp train` with the given flags (a coordinator and --workers worker\n" +
		"processes on this host, the default NATS ring or --ring-transport) and then the PyTorch\n" +
		"reference model (reference/e2evlp.py ddp) in DistributedDataParallel with as many ranks —\n" +
		"Gloo on the CPU, NCCL on cuda — each on one per-rank batch built from the same data, with\n" +
		"the same threads per process, AdamW, clipping, --bf16, --channels-last, --tf32 and --cudnn-benchmark;\n" +
		"with --stand-alone also vlp with\n" +
		"--overlap=false (vlp-a: the all-reduce after backward). It prints the median step of each side\n" +
		"(vlp's: from one step's end to the next's, whatever ran between the two included),\n" +
		"its phases and samples/s, and the ratio vlp / DDP; rounds alternate the two so that a\n" +
		"noisy machine weighs on both. The first --warmup steps of every run are left out.",
	Flags: append(benchTrainFlags(),
		&cli.IntFlag{Name: "rounds", Usage: "vlp runs and DDP runs, alternated", Value: 2, Category: catBenchTrain},
		&cli.IntFlag{Name: "warmup", Usage: "steps of each run left out of the medians", Value: 5, Category: catBenchTrain},
		&cli.StringFlag{Name: "python", Value: "/usr/bin/python3", Usage: "interpreter with torch.distributed (Debian's python3-torch)", EnvVars: []string{"VLP_PYTHON"}, Category: catBenchTrain},
		&cli.StringFlag{Name: "reference", Value: "reference/e2evlp.py", Usage: "the PyTorch reference model; empty: vlp only", Category: catBenchTrain},
		&cli.BoolFlag{Name: "stand-alone", Value: true, Usage: "each round also runs vlp with --overlap=false: the all-reduce after backward, to set the visible part of the overlapped one against", Category: catBenchTrain},
		&cli.StringFlag{Name: "keep", Usage: "keep the run directories under this folder (default: a temporary one, removed)", Category: catBenchTrain},
	),
	Action: benchTrain,
}

// benchTrainFlags are `vlp train`'s flags less benchTrainSkip, --steps defaulting to 40.
func benchTrainFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range trainCommand.Flags {
		name := f.Names()[0]
		if slices.Contains(benchTrainSkip, name) {
			continue
		}
		if name == "steps" {
			f = &cli.IntFlag{Name: "steps", Usage: "optimiser steps of each vlp run and each DDP run", Value: 40, Category: catTrain}
		}
		out = append(out, f)
	}
	return out
}

// benchPhases is one side's median step, in milliseconds.
type benchPhases struct {
	Step, Data, Compute, AllReduce, Optimizer float64
	SamplesPerS                               float64
	Steps                                     int
}

func benchTrain(c *cli.Context) error {
	workers := c.Int("workers")
	if workers < 1 {
		return fmt.Errorf("bench train: --workers %d: want >= 1", workers)
	}
	if c.Int("batch")%workers != 0 {
		return fmt.Errorf("bench train: --batch %d is not a multiple of --workers %d: the DDP peer needs equal per-rank batches", c.Int("batch"), workers)
	}
	if c.Int("steps") <= c.Int("warmup")+2 {
		return fmt.Errorf("bench train: --steps %d leaves too few steps after --warmup %d", c.Int("steps"), c.Int("warmup"))
	}
	root := c.String("keep")
	if root == "" {
		tmp, err := os.MkdirTemp("", "vlp-bench-train-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	} else if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ref := c.String("reference")
	var cfgPath, batchPath string
	var clip float64
	if ref != "" {
		if cfgPath, batchPath, clip, err = writeDDPInputs(c, root, workers); err != nil {
			return err
		}
	}
	out := c.App.Writer
	fmt.Fprintf(out, "preset %s, %d workers, global batch %d (%d a rank), %d px, %d threads a process, ring %s, device %s; medians of steps %d–%d\n\n",
		c.String("preset"), workers, c.Int("batch"), c.Int("batch")/workers, c.Int("image-size"), c.Int("threads"),
		c.String("ring-transport"), c.String("device"), c.Int("warmup")+1, c.Int("steps"))
	fmt.Fprintf(out, "%-6s %-5s %9s %9s %9s %11s %9s %10s\n", "round", "side", "step ms", "data ms", "fwd+bwd", "all-reduce", "optim ms", "samples/s")
	var vlps, ddps, alones []benchPhases
	alone := c.Bool("stand-alone") && !(c.IsSet("overlap") && !c.Bool("overlap"))
	for r := range c.Int("rounds") {
		dir := filepath.Join(root, fmt.Sprintf("vlp-%d", r))
		v, err := benchTrainVLP(c, exe, dir)
		if err != nil {
			return err
		}
		vlps = append(vlps, v)
		fmt.Fprintf(out, "%-6d %-5s %9.1f %9.1f %9.1f %11.1f %9.1f %10.1f\n", r+1, "vlp", v.Step, v.Data, v.Compute, v.AllReduce, v.Optimizer, v.SamplesPerS)
		if alone {
			a, err := benchTrainVLP(c, exe, filepath.Join(root, fmt.Sprintf("vlp-after-%d", r)), "--overlap=false")
			if err != nil {
				return err
			}
			alones = append(alones, a)
			fmt.Fprintf(out, "%-6d %-5s %9.1f %9.1f %9.1f %11.1f %9.1f %10.1f\n", r+1, "vlp-a", a.Step, a.Data, a.Compute, a.AllReduce, a.Optimizer, a.SamplesPerS)
		}
		if ref == "" {
			continue
		}
		d, err := benchTrainDDP(c, ref, cfgPath, batchPath, workers, clip)
		if err != nil {
			return err
		}
		ddps = append(ddps, d)
		fmt.Fprintf(out, "%-6d %-5s %9.1f %9s %9.1f %11s %9.1f %10.1f\n", r+1, "ddp", d.Step, "-", d.Compute, "(in bwd)", d.Optimizer, d.SamplesPerS)
	}
	if len(alones) > 0 {
		ar := func(p benchPhases) float64 { return p.AllReduce }
		v, a := medianOf(vlps, ar), medianOf(alones, ar)
		fmt.Fprintf(out, "\nall-reduce left visible in the step: %.1f ms overlapped, %.1f ms after backward (vlp-a): %.0f%% of the stand-alone time\n", v, a, 100*v/a)
	}
	if len(ddps) > 0 {
		v, d := medianOf(vlps, func(p benchPhases) float64 { return p.SamplesPerS }), medianOf(ddps, func(p benchPhases) float64 { return p.SamplesPerS })
		fmt.Fprintf(out, "\nvlp %.1f samples/s, DDP %.1f samples/s: vlp / DDP = %.2f (medians over %d rounds)\n", v, d, v/d, len(vlps))
	}
	return nil
}

// benchTrainVLP runs `vlp train` with the bench's flags into dir and reads the medians of its
// DIR/steps.jsonl.
func benchTrainVLP(c *cli.Context, exe, dir string, extra ...string) (benchPhases, error) {
	args := []string{"--log-level", c.String("log-level")}
	if tl := c.String("torch-lib"); tl != "" {
		args = append(args, "--torch-lib", tl)
	}
	args = append(args, "train", "--dir", dir, "--eval", "0")
	for _, f := range benchTrainFlags() {
		name := f.Names()[0]
		if name == "steps" || c.IsSet(name) {
			args = append(args, fmt.Sprintf("--%s=%v", name, c.Value(name)))
		}
	}
	args = append(args, extra...)
	cmd := exec.Command(exe, args...)
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		return benchPhases{}, fmt.Errorf("bench train: vlp train: %v\n%s", err, lastBytes(outb.String(), 2000))
	}
	f, err := os.Open(filepath.Join(dir, "steps.jsonl"))
	if err != nil {
		return benchPhases{}, fmt.Errorf("bench train: %w", err)
	}
	defer f.Close()
	var steps []worker.StepSummary
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s worker.StepSummary
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return benchPhases{}, fmt.Errorf("bench train: %s: line %d: %w", f.Name(), len(steps)+1, err)
		}
		steps = append(steps, s)
	}
	if err := sc.Err(); err != nil {
		return benchPhases{}, err
	}
	warm := c.Int("warmup")
	if len(steps) <= warm {
		return benchPhases{}, fmt.Errorf("bench train: %s holds %d steps, --warmup is %d", f.Name(), len(steps), warm)
	}
	steps = steps[warm:]
	ms := func(get func(worker.StepTimings) time.Duration) float64 {
		return medianOf(steps, func(s worker.StepSummary) float64 { return float64(get(s.Timings).Microseconds()) / 1e3 })
	}
	p := benchPhases{
		// The step's cycle: from the previous step's end, so that what a worker does between two
		// steps counts against it as the peer's loop, which does nothing between them, would.
		Step:      ms(func(t worker.StepTimings) time.Duration { return max(t.Interval, t.Total) }),
		Data:      ms(func(t worker.StepTimings) time.Duration { return t.Data }),
		Compute:   ms(func(t worker.StepTimings) time.Duration { return t.Compute }),
		AllReduce: ms(func(t worker.StepTimings) time.Duration { return t.AllReduce }),
		Optimizer: ms(func(t worker.StepTimings) time.Duration { return t.Optimizer }),
		Steps:     len(steps),
	}
	p.SamplesPerS = 1e3 * float64(steps[0].Pairs) / p.Step
	return p, nil
}

// writeDDPInputs writes the model's reference config and one per-rank batch of the run's data
// (the first batch of epoch 0, --batch / --workers rows) for reference/e2evlp.py ddp, and
// returns the clipping bound the run resolves to.
func writeDDPInputs(c *cli.Context, root string, workers int) (cfgPath, batchPath string, clip float64, err error) {
	run, err := newLocalRun(c)
	if err != nil {
		return "", "", 0, fmt.Errorf("bench train: %w", err)
	}
	dc := run.data
	dc.BatchSize = c.Int("batch") / workers
	batches, err := run.world.Batches(dc)
	if err != nil {
		return "", "", 0, err
	}
	cfgPath, batchPath = filepath.Join(root, "config.json"), filepath.Join(root, "batch.json")
	for path, v := range map[string]any{cfgPath: run.job.Model.ReferenceConfig(), batchPath: batches[0]} {
		b, err := json.Marshal(v)
		if err != nil {
			return "", "", 0, err
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return "", "", 0, err
		}
	}
	return cfgPath, batchPath, run.job.Train.ClipNorm, nil
}

// benchTrainDDP runs reference/e2evlp.py ddp and reads its JSON line.
func benchTrainDDP(c *cli.Context, ref, cfgPath, batchPath string, ranks int, clip float64) (benchPhases, error) {
	dev := "cpu"
	if d := c.String("device"); d != "cpu" {
		dev = "cuda"
	}
	threads := c.Int("threads")
	if threads <= 0 {
		threads = 1
	}
	cmd := exec.Command(c.String("python"), ref, "ddp", cfgPath, batchPath, "--ranks", strconv.Itoa(ranks),
		"--threads", strconv.Itoa(threads), "--steps", strconv.Itoa(c.Int("steps")), "--warmup", strconv.Itoa(c.Int("warmup")),
		"--device", dev, "--clip", strconv.FormatFloat(clip, 'g', -1, 64), "--seed", strconv.FormatUint(c.Uint64("seed"), 10))
	// The options that change how the same model computes reach the peer too.
	if c.Bool("bf16") {
		cmd.Args = append(cmd.Args, "--bf16")
	}
	for _, f := range []string{"channels-last", "tf32", "cudnn-benchmark"} {
		if c.Bool(f) {
			cmd.Args = append(cmd.Args, "--"+f)
		}
	}
	// Each vlp worker's --threads bounds OpenBLAS's pool too (torch.NumThreads); torch.set_num_threads
	// does not, so the peer's ranks get the same bound the way torchrun gives it (OMP_NUM_THREADS,
	// which OpenBLAS reads as well) rather than one BLAS thread a core each.
	n := strconv.Itoa(threads)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+n, "OPENBLAS_NUM_THREADS="+n)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return benchPhases{}, fmt.Errorf("bench train: %s ddp: %v\n%s", ref, err, lastBytes(stderr.String(), 2000))
	}
	var r struct {
		StepMS      float64 `json:"step_ms"`
		ForwardMS   float64 `json:"forward_ms"`
		BackwardMS  float64 `json:"backward_allreduce_ms"`
		OptimizerMS float64 `json:"optimizer_ms"`
		SamplesPerS float64 `json:"samples_per_s"`
		Steps       int     `json:"steps"`
	}
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		return benchPhases{}, fmt.Errorf("bench train: %s ddp printed %q: %w", ref, lastBytes(stdout.String(), 500), err)
	}
	if r.Steps == 0 {
		return benchPhases{}, errors.New("bench train: the DDP run timed no step")
	}
	return benchPhases{Step: r.StepMS, Compute: r.ForwardMS + r.BackwardMS, Optimizer: r.OptimizerMS, SamplesPerS: r.SamplesPerS, Steps: r.Steps}, nil
}

// medianOf is the median of f over xs (the upper one of an even count).
func medianOf[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// lastBytes is the last n bytes of s.
func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
