package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"
)

// launcher is `vlp train` without --local: a whole job on this machine, through the code paths of
// a cluster — a single-node coordinator (Raft and embedded NATS, state in DIR/coordinator) in
// this process and N `vlp worker join` processes of this binary. Its life, in order: open (flags,
// the library, DIR, the fresh run's spec), startCoordinator, submit (or resume the job in DIR),
// watchSteps, startWorkers, supervise (progress and signals until every worker exited), report.
type launcher struct {
	c     *cli.Context
	log   *slog.Logger
	dir   string
	n     int // worker processes
	start time.Time

	fresh *coordinator.JobSpec // a fresh run's spec; nil when DIR holds a job
	spec  *coordinator.JobSpec // the job's spec, once submitted or read back
	token string

	srv   *coordinator.Server
	cl    *coordinator.Client
	steps *stepWatch
	sub   *nats.Subscription
	files []*os.File // DIR/steps.jsonl and the workers' logs

	procs []*exec.Cmd
	errs  []error // each worker's exit (nil: exit status 0)
	done  chan struct{}
}

// openLauncher checks the flags and the library, makes DIR and, for a fresh run, the spec —
// resolved as its workers will resolve it, so that a spec they would refuse stops the run here
// in one line rather than as "worker 0: exit status 1".
func openLauncher(c *cli.Context) (*launcher, error) {
	log, err := cliLogger(c)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return nil, err
	}
	l := &launcher{c: c, log: log, dir: dir, n: c.Int("workers")}
	if l.n < 1 {
		return nil, fmt.Errorf("train: --workers %d: want >= 1", l.n)
	}
	// The library and the device, before anything starts (not even DIR): a fresh run of a
	// preset, or any run on a GPU, needs them; a resumed run learns its model from the spec.
	_, statErr := os.Stat(filepath.Join(dir, "coordinator"))
	if c.String("device") != "cpu" || (trainModel(c) != "linear" && statErr != nil) {
		if _, err := loadTorch(c, c.String("device")); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if statErr != nil {
		if l.fresh, err = l.newSpec(); err != nil {
			return nil, err
		}
	}
	if l.token, err = runToken(dir); err != nil {
		return nil, err
	}
	return l, nil
}

// newSpec is a fresh run's spec from the flags, resolved as the workers will.
func (l *launcher) newSpec() (*coordinator.JobSpec, error) {
	s, err := trainSpec(l.c, l.n, l.dir)
	if err != nil {
		return nil, err
	}
	if err := resolveTrainSpec(l.c, s); err != nil {
		return nil, err
	}
	return &s, nil
}

// close releases what the launcher holds, last opened first.
func (l *launcher) close() {
	if l.sub != nil {
		l.sub.Unsubscribe()
	}
	for _, f := range l.files {
		f.Close()
	}
	if l.cl != nil {
		l.cl.Close()
	}
	if l.srv != nil {
		l.srv.Close()
	}
}

// startCoordinator starts the single-node coordinator on DIR/coordinator (an existing one
// resumes its Raft state) and connects to it.
func (l *launcher) startCoordinator() error {
	cfg := coordinator.DefaultConfig()
	cfg.Logger = l.log.With("component", "coordinator")
	cfg.DataDir = filepath.Join(l.dir, "coordinator")
	cfg.NodeID = "train"
	cfg.RaftAddr = "127.0.0.1:0" // a free port, taken as the transport listens
	cfg.Job, cfg.Token = trainJob, l.token
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
	l.start = time.Now()
	var err error
	if l.srv, err = coordinator.NewServer(cfg); err != nil {
		return err
	}
	l.cl, err = coordinator.Dial(l.srv.NATSURL(), trainJob, l.token, []nats.Option{nats.MaxReconnects(-1)})
	return err
}

// submit submits the fresh run's spec, or resumes the job DIR holds: its stored spec is kept
// (checkResumeFlags refuses a flag that would change it), and a job stopped by a signal to an
// earlier run is submitted again, which resumes it from the checkpoint its stop wrote.
func (l *launcher) submit() error {
	c := l.c
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	st, err := l.cl.Status(ctx)
	cancel()
	if err != nil {
		return explain(err)
	}
	if st.Job == nil {
		if l.fresh == nil { // a coordinator directory without a job: an earlier run stopped early
			if l.fresh, err = l.newSpec(); err != nil {
				return err
			}
		}
		s := *l.fresh
		if err := l.submitSpec(s); err != nil {
			return err
		}
		l.spec = &s
		fmt.Fprintf(c.App.Writer, "job: model %s, %d workers, global batch %d, %d pairs per epoch, %d epoch(s), %d steps\n",
			s.Model, l.n, s.GlobalBatch, s.Units.Pairs, s.Epochs, s.Hyper.MaxSteps)
		return nil
	}
	l.spec = st.Job
	if err := checkResumeFlags(c, *l.spec, l.n, l.dir); err != nil {
		return err
	}
	if l.spec.Model != "linear" {
		if _, err := loadTorch(c, c.String("device")); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	if st.State == coordinator.JobStopped {
		if err := l.submitSpec(*l.spec); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.App.Writer, "resuming job in %s at step %d (model %s, %d steps)\n", l.dir, st.Step, l.spec.Model, l.spec.Hyper.MaxSteps)
	return nil
}

func (l *launcher) submitSpec(s coordinator.JobSpec) error {
	ctx, cancel := context.WithTimeout(l.c.Context, 30*time.Second)
	defer cancel()
	if _, err := l.cl.Submit(ctx, s); err != nil {
		return explain(err)
	}
	return nil
}

// watchSteps subscribes to rank 0's step summaries before any worker starts.
func (l *launcher) watchSteps() error {
	f, err := os.OpenFile(filepath.Join(l.dir, "steps.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.files = append(l.files, f)
	l.steps = &stepWatch{out: f, log: l.log, start: l.start}
	l.sub, err = l.cl.Conn().Subscribe(stepSubject(trainJob), l.steps.handle)
	return err
}

// startWorkers starts the worker processes, each logging to DIR/worker-<i>.log, in their own
// process group: a Ctrl-C at the terminal reaches this process only, which stops the job for
// all of them at once (supervise).
func (l *launcher) startWorkers() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	l.procs, l.errs = make([]*exec.Cmd, l.n), make([]error, l.n)
	var wg sync.WaitGroup
	for i := range l.n {
		args, err := trainWorkerArgs(l.c, i, l.srv.NATSURL(), l.dir)
		if err != nil {
			return err
		}
		logf, err := os.OpenFile(filepath.Join(l.dir, fmt.Sprintf("worker-%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		l.files = append(l.files, logf)
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), "VLP_JOB_TOKEN="+l.token)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			for _, p := range l.procs[:i] {
				p.Process.Kill()
			}
			return fmt.Errorf("train: start worker %d: %w", i, err)
		}
		l.procs[i] = cmd
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l.errs[i] = l.procs[i].Wait()
		}(i)
	}
	l.done = make(chan struct{})
	go func() { wg.Wait(); close(l.done) }()
	fmt.Fprintf(l.c.App.Writer, "%d workers started; logs in %s/worker-*.log\n", l.n, l.dir)
	return nil
}

// supervise prints the progress line every second until every worker has exited.
// SIGINT/SIGTERM stops the job (as `vlp job stop` does): a joint stop, every worker finishes at
// the same step and rank 0 writes a final checkpoint first. Signalling each worker instead would
// let the ranks publish their stop orders in different steps: the first would leave alone, the
// ring would break under the others, and the job would roll back to its last checkpoint. A
// second signal kills the workers.
func (l *launcher) supervise() {
	c := l.c
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	total := l.totalSteps()
	signals := 0
	for {
		select {
		case <-l.done:
			if s := l.steps.lastStep(); s.Step > 0 {
				fmt.Fprintln(c.App.ErrWriter, "\r"+progressLine(s, total))
			}
			return
		case s := <-sig:
			signals++
			if signals == 1 {
				fmt.Fprintf(c.App.ErrWriter, "\n%s: stopping the job (again to kill the workers)\n", s)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := l.cl.Stop(ctx, "vlp train: "+s.String())
				cancel()
				if err == nil {
					continue
				}
				fmt.Fprintf(c.App.ErrWriter, "stopping the job: %v; stopping each worker\n", err)
			}
			for _, p := range l.procs {
				if signals == 1 {
					p.Process.Signal(syscall.SIGTERM)
				} else {
					p.Process.Kill()
				}
			}
		case <-tick.C:
			if s := l.steps.lastStep(); s.Step > 0 {
				fmt.Fprint(c.App.ErrWriter, "\r"+progressLine(s, total))
			}
		}
	}
}

// totalSteps is the run's last step: --steps when set (a resumed run may train further), else
// the spec's max_steps.
func (l *launcher) totalSteps() uint64 {
	if l.c.IsSet("steps") {
		return uint64(l.c.Int("steps"))
	}
	return uint64(l.spec.Hyper.MaxSteps)
}

// report prints the end of the run — the job's status, the final losses, the checkpoints, the
// step-time split — and fails with every failed worker's last error line; otherwise it draws
// the loss curve and evaluates the last verified checkpoint (--eval).
func (l *launcher) report() error {
	c := l.c
	var failed []string
	for i, err := range l.errs {
		if err != nil {
			msg := fmt.Sprintf("worker %d: %v", i, err)
			if last := lastErrorLine(filepath.Join(l.dir, fmt.Sprintf("worker-%d.log", i))); last != "" {
				msg += ": " + last
			}
			failed = append(failed, msg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	fin, serr := l.cl.Status(ctx)
	cancel()
	if serr == nil {
		printTrainSummary(c.App.Writer, fin, l.steps.lastStep(), time.Since(l.start))
	}
	if t, seen := l.steps.stepSplit(); seen > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
		fmt.Fprintf(c.App.Writer, "step time (rank 0, mean of %d steps): data %.1f ms, forward/backward %.1f ms, all-reduce %.1f ms, optimizer %.1f ms, total %.1f ms\n",
			seen, ms(t.Data), ms(t.Compute), ms(t.AllReduce), ms(t.Optimizer), ms(t.Total))
	}
	if first := l.steps.firstStep(); !first.IsZero() {
		fmt.Fprintf(c.App.Writer, "first step %v after the coordinator started\n", first.Sub(l.start).Round(time.Millisecond))
	}
	if len(failed) > 0 {
		return fmt.Errorf("train: %s (see %s/worker-*.log)", strings.Join(failed, "; "), l.dir)
	}
	if points := l.steps.lossCurve(); len(points) >= 2 {
		path := filepath.Join(l.dir, "loss-curve.png")
		legend, err := plotLosses(path, lossCurveTitle(l.dir, *l.spec), points)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "loss curve: %s: %s\n", path, legend)
	}
	if n := c.Int("eval"); n > 0 && l.spec.Model != "linear" && (l.spec.Task == "" || l.spec.Task == "pretrain") {
		rep, err := runTrainEval(c, *l.spec, l.dir, n, l.log)
		if err != nil {
			return fmt.Errorf("train: evaluation: %w", err)
		}
		printEval(c.App.Writer, rep)
	}
	return nil
}
