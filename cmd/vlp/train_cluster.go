package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
	"github.com/nats-io/nats.go"
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
	&cli.StringFlag{Name: "ring-transport", Value: "nats", Usage: "auto, nats, tcp or shm (the workers run on this machine: shm and auto go through /dev/shm)", EnvVars: []string{"VLP_RING_TRANSPORT"}, Category: catTrain},
	&cli.BoolFlag{Name: "overlap", Value: true, Usage: "all-reduce the gradients bucket by bucket while backward runs (--overlap=false: after backward, the stand-alone all-reduce)", EnvVars: []string{"VLP_OVERLAP"}, Category: catTrain},
	&cli.Float64Flag{Name: "bucket-mib", Usage: "size of a gradient all-reduce bucket in MiB (0: 25, as DistributedDataParallel; the first at most 1); buckets are all-reduced while backward computes the rest", EnvVars: []string{"VLP_BUCKET_MIB"}, Category: catTrain},
	&cli.IntFlag{Name: "min-workers", Usage: "members the ring needs to train (default: --workers)", Category: catTrain},
	&cli.DurationFlag{Name: "linear-compute", Usage: "linear model only: simulated compute time per pair", Category: catTrain},
	&cli.StringFlag{Name: "data", Usage: "shard directory (manifest.json + shards from `vlp shard build`); empty: the in-memory synthetic world", EnvVars: []string{"VLP_DATA"}, Category: catTrain},
	&cli.StringFlag{Name: "vocab", Usage: "with --data: the tokenizer's vocab.txt (default: learnt from the shards' texts into --dir/vocab.txt)", EnvVars: []string{"VLP_VOCAB"}, Category: catTrain},
	&cli.BoolFlag{Name: "log-pairs", Usage: "with --data: each worker appends the epoch and pair id of every pair it consumed in a committed step to --dir/pairs-<i>.log", Category: catTrain},
	&cli.IntFlag{Name: "eval", Value: 64, Usage: "after training, evaluate the last verified checkpoint on this many held-out synthetic images (package eval, as vlp eval: MLM colour words, ITM, COCO AP/AR, BLEU and CIDEr-D, retrieval; report in DIR/eval, boxes.png); 0: none", EnvVars: []string{"VLP_EVAL"}, Category: catTrain},
	&cli.StringFlag{Name: "metrics-base-port", Usage: "serve worker i's /metrics on 127.0.0.1:(port+i) (empty: none)", Category: catTrain},
}

const trainJob = "train"

// runTrainCluster runs a whole job on this machine.
func runTrainCluster(c *cli.Context) error {
	log, err := cliLogger(c)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return err
	}
	n := c.Int("workers")
	if n < 1 {
		return fmt.Errorf("train: --workers %d: want >= 1", n)
	}
	// The library and the device, before anything starts (not even --dir): a fresh run of a
	// preset, or any run on a GPU, needs them; a resumed run learns its model from the spec.
	_, statErr := os.Stat(filepath.Join(dir, "coordinator"))
	if c.String("device") != "cpu" || (trainModel(c) != "linear" && statErr != nil) {
		if _, err := loadTorch(c, c.String("device")); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// A fresh run's spec, resolved as its workers will resolve it, before the coordinator starts:
	// a spec they would refuse stops the run here, in one line.
	newSpec := func() (*coordinator.JobSpec, error) {
		s, err := trainSpec(c, n, dir)
		if err != nil {
			return nil, err
		}
		if err := resolveTrainSpec(c, s); err != nil {
			return nil, err
		}
		return &s, nil
	}
	var fresh *coordinator.JobSpec
	if statErr != nil {
		if fresh, err = newSpec(); err != nil {
			return err
		}
	}
	token, err := runToken(dir)
	if err != nil {
		return err
	}
	// The coordinator: single node, Raft and the job in dir/coordinator.
	raftPort, err := freeTCPPort()
	if err != nil {
		return err
	}
	cfg := coordinator.DefaultConfig()
	cfg.Logger = log.With("component", "coordinator")
	cfg.DataDir = filepath.Join(dir, "coordinator")
	cfg.NodeID = "train"
	cfg.RaftAddr = "127.0.0.1:" + strconv.Itoa(raftPort)
	cfg.Job, cfg.Token = trainJob, token
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
	start := time.Now()
	srv, err := coordinator.NewServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	url := srv.NATSURL()
	cl, err := coordinator.Dial(url, trainJob, token, []nats.Option{nats.MaxReconnects(-1)})
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	st, err := cl.Status(ctx)
	cancel()
	if err != nil {
		return explain(err)
	}
	spec := st.Job
	if spec == nil {
		if fresh == nil { // a coordinator directory without a job: an earlier run stopped early
			if fresh, err = newSpec(); err != nil {
				return err
			}
		}
		s := *fresh
		ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
		_, err = cl.Submit(ctx, s)
		cancel()
		if err != nil {
			return explain(err)
		}
		spec = &s
		fmt.Fprintf(c.App.Writer, "job: model %s, %d workers, global batch %d, %d pairs per epoch, %d epoch(s), %d steps\n",
			s.Model, n, s.GlobalBatch, s.Units.Pairs, s.Epochs, s.Hyper.MaxSteps)
	} else {
		if err := checkResumeFlags(c, *spec, n, dir); err != nil {
			return err
		}
		if spec.Model != "linear" {
			if _, err := loadTorch(c, c.String("device")); err != nil {
				return fmt.Errorf("train: %w", err)
			}
		}
		if st.State == coordinator.JobStopped {
			// Stopped by a signal to an earlier run: the same spec again resumes it.
			ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
			_, err := cl.Submit(ctx, *spec)
			cancel()
			if err != nil {
				return explain(err)
			}
		}
		fmt.Fprintf(c.App.Writer, "resuming job in %s at step %d (model %s, %d steps)\n", dir, st.Step, spec.Model, spec.Hyper.MaxSteps)
	}

	// Step summaries from rank 0 feed the progress line and DIR/steps.jsonl (one JSON
	// worker.StepSummary a line: losses, gradient norm, the step-time split; vlp bench train
	// reads it).
	stepLog, err := os.OpenFile(filepath.Join(dir, "steps.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer stepLog.Close()
	var mu sync.Mutex
	var last worker.StepSummary
	var firstStep time.Time
	var split worker.StepTimings // summed over the steps seen
	var seen int
	var curve []lossPoint
	sub, err := cl.Conn().Subscribe(stepSubject(trainJob), func(m *nats.Msg) {
		var s worker.StepSummary
		if json.Unmarshal(m.Data, &s) == nil {
			mu.Lock()
			if s.Step > last.Step {
				last = s
				t := s.Timings
				split.Data += t.Data
				split.Compute += t.Compute
				split.AllReduce += t.AllReduce
				split.Optimizer += t.Optimizer
				split.Total += t.Total
				seen++
				curve = append(curve, lossPoint{Step: s.Step, Losses: s.Losses})
				stepLog.Write(append(bytes.TrimSpace(m.Data), '\n'))
			}
			if firstStep.IsZero() {
				firstStep = time.Now()
				log.Info("first step", "step", s.Step, "after_start", time.Since(start).Round(time.Millisecond))
			}
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()

	// The workers: this binary, `worker join`, one process each.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	procs := make([]*exec.Cmd, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		args, err := trainWorkerArgs(c, i, url, dir)
		if err != nil {
			return err
		}
		logf, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("worker-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), "VLP_JOB_TOKEN="+token)
		cmd.Stdout, cmd.Stderr = logf, logf
		// Their own process group: a Ctrl-C at the terminal reaches this process only, which
		// stops the job for all of them at once (below).
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("train: start worker %d: %w", i, err)
		}
		procs[i] = cmd
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = procs[i].Wait()
		}(i)
	}
	fmt.Fprintf(c.App.Writer, "%d workers started; logs in %s/worker-*.log\n", n, dir)

	// SIGINT/SIGTERM stops the job (as `vlp job stop` does): a joint stop,
	// every worker finishes at the same step and rank 0 writes a final
	// checkpoint first. Signalling each worker instead would let the ranks
	// publish their stop orders in different steps: the first would leave
	// alone, the ring would break under the others, and the job would roll
	// back to its last checkpoint. A second signal kills them.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	signals := 0
	total := uint64(spec.Hyper.MaxSteps)
	if c.IsSet("steps") {
		total = uint64(c.Int("steps"))
	}
loop:
	for {
		select {
		case <-done:
			break loop
		case s := <-sig:
			signals++
			if signals == 1 {
				fmt.Fprintf(c.App.ErrWriter, "\n%s: stopping the job (again to kill the workers)\n", s)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cl.Stop(ctx, "vlp train: "+s.String())
				cancel()
				if err == nil {
					continue
				}
				fmt.Fprintf(c.App.ErrWriter, "stopping the job: %v; stopping each worker\n", err)
			}
			for _, p := range procs {
				if signals == 1 {
					p.Process.Signal(syscall.SIGTERM)
				} else {
					p.Process.Kill()
				}
			}
		case <-tick.C:
			mu.Lock()
			s := last
			mu.Unlock()
			if s.Step > 0 {
				fmt.Fprint(c.App.ErrWriter, "\r"+progressLine(s, total))
			}
		}
	}
	mu.Lock()
	s := last
	mu.Unlock()
	if s.Step > 0 {
		fmt.Fprintln(c.App.ErrWriter, "\r"+progressLine(s, total))
	}
	var failed []string
	for i, err := range errs {
		if err != nil {
			msg := fmt.Sprintf("worker %d: %v", i, err)
			if last := lastErrorLine(filepath.Join(dir, fmt.Sprintf("worker-%d.log", i))); last != "" {
				msg += ": " + last
			}
			failed = append(failed, msg)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	fin, serr := cl.Status(ctx)
	cancel()
	if serr == nil {
		printTrainSummary(c.App.Writer, fin, s, time.Since(start))
	}
	mu.Lock()
	if seen > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(seen) }
		fmt.Fprintf(c.App.Writer, "step time (rank 0, mean of %d steps): data %.1f ms, forward/backward %.1f ms, all-reduce %.1f ms, optimizer %.1f ms, total %.1f ms\n",
			seen, ms(split.Data), ms(split.Compute), ms(split.AllReduce), ms(split.Optimizer), ms(split.Total))
	}
	if !firstStep.IsZero() {
		fmt.Fprintf(c.App.Writer, "first step %v after the coordinator started\n", firstStep.Sub(start).Round(time.Millisecond))
	}
	points := append([]lossPoint(nil), curve...)
	mu.Unlock()
	if len(failed) > 0 {
		return fmt.Errorf("train: %s (see %s/worker-*.log)", strings.Join(failed, "; "), dir)
	}
	if len(points) >= 2 {
		path := filepath.Join(dir, "loss-curve.png")
		legend, err := plotLosses(path, lossCurveTitle(dir, *spec), points)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "loss curve: %s: %s\n", path, legend)
	}
	if n := c.Int("eval"); n > 0 && spec.Model != "linear" && (spec.Task == "" || spec.Task == "pretrain") {
		rep, err := runTrainEval(c, *spec, dir, n, log)
		if err != nil {
			return fmt.Errorf("train: evaluation: %w", err)
		}
		printEval(c.App.Writer, rep)
	}
	return nil
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
// train.Resolve), so that a spec they would refuse is refused before any of them starts.
func resolveTrainSpec(c *cli.Context, s coordinator.JobSpec) error {
	var err error
	if s.Model == "linear" {
		_, err = worker.ResolveLinearJob(s)
	} else {
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

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
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
