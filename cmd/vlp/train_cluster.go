package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/urfave/cli/v2"
)

// trainClusterFlags are the flags of the embedded default of `vlp train`
// (without --local): a single-node coordinator with embedded NATS and N
// local worker processes of this binary, the same code paths as a cluster.
var trainClusterFlags = []cli.Flag{
	&cli.IntFlag{Name: "workers", Value: 2, Usage: "local worker processes", EnvVars: []string{"VLP_WORKERS"}, Category: catTrain},
	&cli.StringFlag{Name: "dir", Value: "vlp-run", Usage: "run directory: coordinator state, checkpoints, worker logs, event files (an existing one resumes)", EnvVars: []string{"VLP_RUN_DIR"}, Category: catTrain},
	&cli.StringFlag{Name: "model", Usage: "model: a preset (default --preset) or linear (pure Go, no LibTorch)", EnvVars: []string{"VLP_MODEL"}, Category: catTrain},
	&cli.IntFlag{Name: "epochs", Value: 0, Usage: "passes over the data (0: enough for --steps)", EnvVars: []string{"VLP_EPOCHS"}, Category: catTrain},
	&cli.IntFlag{Name: "pairs", Value: 4096, Usage: "pairs per epoch of the linear model's data", Category: catTrain},
	&cli.IntFlag{Name: "per-unit", Value: 0, Usage: "pairs per work unit (0: the per-worker batch)", Category: catTrain},
	&cli.IntFlag{Name: "checkpoint-every", Value: 50, Usage: "checkpoint interval in steps", EnvVars: []string{"VLP_CHECKPOINT_EVERY"}, Category: catTrain},
	&cli.IntFlag{Name: "progress-every", Value: 10, Usage: "progress report interval in steps", Category: catTrain},
	&cli.StringFlag{Name: "ring-transport", Value: "auto", Usage: "auto (the default: the workers run on this machine, so shared memory through /dev/shm, else TCP, else NATS), nats, tcp or shm", EnvVars: []string{"VLP_RING_TRANSPORT"}, Category: catTrain},
	&cli.BoolFlag{Name: "overlap", Value: true, Usage: "all-reduce the gradients bucket by bucket while backward runs (--overlap=false: after backward, the stand-alone all-reduce)", EnvVars: []string{"VLP_OVERLAP"}, Category: catTrain},
	&cli.Float64Flag{Name: "bucket-mib", Usage: "size of a gradient all-reduce bucket in MiB (0: an eighth of the gradients, at least 1 and at most 25 as DistributedDataParallel; the first at most 1, the last at most 0.25); buckets are all-reduced while backward computes the rest", EnvVars: []string{"VLP_BUCKET_MIB"}, Category: catTrain},
	&cli.IntFlag{Name: "min-workers", Usage: "members the ring needs to train (default: --workers)", Category: catTrain},
	&cli.DurationFlag{Name: "linear-compute", Usage: "linear model only: simulated compute time per pair", Category: catTrain},
	&cli.StringFlag{Name: "data", Usage: "shard directory (manifest.json + shards from `vlp shard build`); empty: the in-memory synthetic world", EnvVars: []string{"VLP_DATA"}, Category: catTrain},
	&cli.StringFlag{Name: "vocab", Usage: "with --data: the tokenizer's vocab.txt (default: learnt from the shards' texts into --dir/vocab.txt)", EnvVars: []string{"VLP_VOCAB"}, Category: catTrain},
	&cli.BoolFlag{Name: "log-pairs", Usage: "with --data: each worker appends the epoch and pair id of every pair it consumed in a committed step to --dir/pairs-<i>.log", Category: catTrain},
	&cli.IntFlag{Name: "eval", Value: 64, Usage: "after training, evaluate the last verified checkpoint on this many held-out synthetic images (package eval, as vlp eval: MLM colour words, ITM, COCO AP/AR, BLEU and CIDEr-D, retrieval; report in DIR/eval, boxes.png); 0: none", EnvVars: []string{"VLP_EVAL"}, Category: catTrain},
	&cli.StringFlag{Name: "metrics-base-port", Usage: "serve worker i's /metrics on 127.0.0.1:(port+i) (empty: none)", Category: catTrain},
}

const trainJob = "train"

// runTrainCluster runs a whole job on this machine (launcher).
func runTrainCluster(c *cli.Context) error {
	l, err := openLauncher(c)
	if err != nil {
		return err
	}
	defer l.close()
	if err := l.startCoordinator(); err != nil {
		return err
	}
	if err := l.submit(); err != nil {
		return err
	}
	if err := l.watchSteps(); err != nil {
		return err
	}
	if err := l.startWorkers(); err != nil {
		return err
	}
	l.supervise()
	return l.report()
}

// trainSpec is the job a fresh run submits: the flags' spec (trainSpecFromFlags) with its data —
// the shards' dataset and tokenizer (--data DIR), the synthetic world's pairs, or the linear
// model's --pairs — and the epochs --steps needs when --epochs is not set.
func trainSpec(c *cli.Context, workers int, dir string) (coordinator.JobSpec, error) {
	s := trainSpecFromFlags(c, workers)
	var pairs int64
	if trainModeOf(c).task {
		var err error
		if pairs, err = taskSpecData(&s, c.String("data")); err != nil {
			return s, err
		}
	} else if s.Model == "linear" {
		pairs = int64(c.Int("pairs"))
	} else if d := c.String("data"); d != "" && d != "synth" {
		var err error
		if pairs, err = trainDataset(&s, d, c.String("vocab"), dir); err != nil {
			return s, err
		}
	} else {
		w, _, err := synthWorld(s)
		if err != nil {
			return s, err
		}
		pairs = int64(len(w.Examples))
	}
	s.Units.Pairs = pairs
	if s.Epochs <= 0 {
		s.Epochs = int((int64(s.Hyper.MaxSteps)*int64(s.GlobalBatch) + pairs - 1) / pairs)
	}
	s.Epochs = max(s.Epochs, 1)
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("train: %w", err)
	}
	return s, nil
}

// resolveTrainSpec resolves a fresh run's spec as its workers will (worker.ResolveLinearJob,
// train.Resolve; a task's learner from its records and its init_from checkpoint, as
// taskLearnerConfig reads them), so that a spec they would refuse is refused before any of them
// starts.
func resolveTrainSpec(c *cli.Context, s coordinator.JobSpec) error {
	var err error
	switch {
	case s.Model == "linear":
		_, err = worker.ResolveLinearJob(s)
	case s.Task != "" && s.Task != "pretrain":
		_, err = taskLearnerConfig(s, c.String("data"), torch.CPU, 0)
	default:
		_, err = train.Resolve(s, s.Units.Pairs)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// trainWorkerArgs are the arguments of worker i's `vlp worker join`: the run's coordinator at url,
// and the flags that are per worker rather than in the job spec (device, threads, where the data
// is, --steps for a run that trains further than its spec).
func trainWorkerArgs(c *cli.Context, i int, url, dir string) ([]string, error) {
	args := []string{"--log-level", c.String("log-level")}
	if tl := c.String("torch-lib"); tl != "" {
		args = append(args, "--torch-lib", tl)
	}
	args = append(args, "worker", "join", "--nats-url", url, "--job", trainJob,
		"--name", fmt.Sprintf("w%d", i), "--device", c.String("device"),
		"--checkpoint-dir", filepath.Join(dir, "checkpoints"),
		"--ring-transport", c.String("ring-transport"),
		"--tb-dir", filepath.Join(dir, "events"), "--publish-steps")
	if th := c.Int("threads"); th > 0 {
		args = append(args, "--threads", strconv.Itoa(th))
	}
	if c.IsSet("steps") {
		// A resumed run may train further than the spec's max_steps.
		args = append(args, "--max-steps", strconv.Itoa(c.Int("steps")))
	}
	for _, f := range []string{"data", "vocab"} {
		// The same files the spec names (checked against its checksums),
		// possibly at another path than when the job was submitted.
		if v := c.String(f); v != "" {
			if v != "synth" {
				var err error
				if v, err = filepath.Abs(v); err != nil {
					return nil, err
				}
			}
			args = append(args, "--"+f, v)
		}
	}
	if c.Bool("log-pairs") {
		args = append(args, "--pair-log", filepath.Join(dir, fmt.Sprintf("pairs-%d.log", i)))
	}
	if p := c.String("metrics-base-port"); p != "" {
		base, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("train: --metrics-base-port %q: %v", p, err)
		}
		args = append(args, "--metrics-addr", "127.0.0.1:"+strconv.Itoa(base+i))
	}
	return args, nil
}

// lastErrorLine is the last error a worker printed into its log (the "vlp: …" line main writes
// before exiting), or "".
func lastErrorLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-20; i-- {
		if l := lines[i]; strings.HasPrefix(l, "vlp: ") {
			return strings.TrimPrefix(l, "vlp: ")
		}
	}
	return ""
}

// runToken keeps the run's job token in dir, so a resumed run uses the same.
func runToken(dir string) (string, error) {
	path := filepath.Join(dir, "job.token")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	t, err := randomToken()
	if err != nil {
		return "", err
	}
	return t, os.WriteFile(path, []byte(t+"\n"), 0o600)
}

// progressLine is a one-line progress bar.
func progressLine(s worker.StepSummary, total uint64) string {
	const width = 30
	bar := ""
	if total > 0 {
		done := int(min(s.Step, total) * width / total)
		bar = "[" + strings.Repeat("#", done) + strings.Repeat(".", width-done) + "] "
	}
	rate := 0.0
	if s.Timings.Total > 0 {
		rate = float64(s.Pairs) / s.Timings.Total.Seconds()
	}
	return fmt.Sprintf("%sstep %d/%d epoch %d loss %.4f %.1f pairs/s workers %d gen %d", bar, s.Step, total, s.Epoch,
		s.Losses["total"], rate, s.WorldSize, s.Generation)
}

// printTrainSummary prints the final metrics of a run.
func printTrainSummary(w io.Writer, st *coordinator.JobStatus, last worker.StepSummary, took time.Duration) {
	fmt.Fprintf(w, "done in %s: step %d, job %s, epoch %d (%.0f%%)\n", took.Round(time.Millisecond), st.Step, st.State, st.Epoch, 100*st.EpochProgress)
	if len(last.Losses) > 0 {
		names := make([]string, 0, len(last.Losses))
		for k := range last.Losses {
			if !auxLoss.MatchString(k) {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		fmt.Fprint(w, "final losses:")
		for _, k := range names {
			fmt.Fprintf(w, " %s %.4f", k, last.Losses[k])
		}
		fmt.Fprintln(w)
	}
	for _, ck := range st.Checkpoints {
		fmt.Fprintf(w, "checkpoint step %d: %s (%d bytes) %s\n", ck.Step, ck.Status, ck.Bytes, ck.Location)
	}
}
