// Package workertest runs real workers — the step protocol, the NATS ring, leases and commits —
// against an in-process coordinator (real Raft, embedded NATS), for the tests of learners that
// live outside package worker (package train). It is test support, like net/http/httptest:
// nothing in the binary imports it.
package workertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/internal/testlog"
	"github.com/e2evlp/vlp/worker"
	"github.com/nats-io/nats.go"
)

const (
	job   = "test"
	token = "secret"
)

// Spec is a small job of model: pairs in units of perUnit, a global batch, seed 7, one epoch.
func Spec(model string, pairs int64, perUnit, batch, minWorkers int) coordinator.JobSpec {
	return coordinator.JobSpec{
		Name: job, Model: model, GlobalBatch: batch, MinWorkers: minWorkers,
		CheckpointEvery: 5, ProgressEvery: 3, Seed: 7, Epochs: 1,
		Hyper: coordinator.HyperParams{LR: 0.05, ClipNorm: 1},
		Units: coordinator.UnitsSpec{Pairs: pairs, PerUnit: perUnit},
	}
}

// Job is a coordinator with spec submitted.
type Job struct {
	t    testing.TB
	c    *coordinator.Cluster
	spec coordinator.JobSpec

	mu      sync.Mutex
	commits map[uint64]map[string]worker.Commit // step → worker name → its commit
	log     *slog.Logger                        // the workers' (testlog: printed when the test fails)
}

// Start starts a one-node coordinator with NATS (opts adjust it) and submits spec.
func Start(t testing.TB, spec coordinator.JobSpec, opts ...coordinator.ClusterOption) *Job {
	t.Helper()
	c := coordinator.MakeCluster(t, 1, append([]coordinator.ClusterOption{coordinator.WithNATS(), coordinator.WithJob(job, token)}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Client(t).Submit(ctx, spec.WithDefaults()); err != nil {
		t.Fatalf("submit: %v", err)
	}
	return &Job{t: t, c: c, spec: spec, commits: map[uint64]map[string]worker.Commit{}, log: testlog.New(t, "the workers' log")}
}

// Node is one worker of a Job.
type Node struct {
	Name    string
	Learner worker.Learner
	Result  worker.Result // once Wait returned
	Err     error
	done    chan struct{}
}

// Worker starts a worker named name training l until step maxSteps (0: the job's end).
func (j *Job) Worker(name string, l worker.Learner, maxSteps uint64) *Node {
	j.t.Helper()
	return j.WorkerWith(name, l, func(c *worker.Config) { c.MaxSteps = maxSteps })
}

// WorkerWith is Worker with edit applied to the worker's configuration (MaxSteps,
// CheckpointDir, …) before it starts; OnCommit stays the Job's.
func (j *Job) WorkerWith(name string, l worker.Learner, edit func(*worker.Config)) *Node {
	j.t.Helper()
	cl, err := coordinator.Dial(j.c.NATSURL(), job, token, []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)},
		coordinator.WithWatchPoll(200*time.Millisecond))
	if err != nil {
		j.t.Fatalf("dial: %v", err)
	}
	j.t.Cleanup(cl.Close)
	cfg := worker.DefaultConfig()
	cfg.Name, cfg.Logger = name, j.log.With("node", name)
	// LibTorch steps starve heartbeats on two busy cores: generous bounds keep a slow worker
	// from being declared dead.
	cfg.GenerationTimeout, cfg.StepTimeout, cfg.RequestTimeout = 20*time.Second, 20*time.Second, 5*time.Second
	cfg.RejoinAfter, cfg.EpochWait = 4*time.Second, time.Second
	edit(&cfg)
	cfg.OnCommit = func(c worker.Commit) {
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.commits[c.Step] == nil {
			j.commits[c.Step] = map[string]worker.Commit{}
		}
		j.commits[c.Step][name] = c
	}
	rcfg := allreduce.Config{PeerTimeout: 3 * time.Second, HeartbeatInterval: 200 * time.Millisecond, Timeout: 20 * time.Second, Logger: cfg.Logger}
	w, err := worker.New(cfg, cl, worker.NATSRings(cl.Conn(), rcfg, cfg.Logger), l)
	if err != nil {
		j.t.Fatalf("new worker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{Name: name, Learner: l, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		n.Result, n.Err = w.Run(ctx)
	}()
	j.t.Cleanup(func() {
		cancel()
		<-n.done
	})
	return n
}

// Wait waits up to d for every node to finish, and fails the test naming every node that failed
// or did not finish (a node that fails first often takes its peers down with it: each one's error
// tells the story).
func Wait(t testing.TB, d time.Duration, nodes ...*Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var failed []string
	for _, n := range nodes {
		select {
		case <-n.done:
			if n.Err != nil && !errors.Is(n.Err, context.Canceled) {
				failed = append(failed, fmt.Sprintf("%s: %v", n.Name, n.Err))
			}
		case <-ctx.Done():
			failed = append(failed, fmt.Sprintf("%s did not finish within %v", n.Name, d))
		}
	}
	if len(failed) > 0 {
		t.Fatal(strings.Join(failed, "; "))
	}
}

// Commit is what worker name committed at step (zero if it did not).
func (j *Job) Commit(step uint64, name string) worker.Commit {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.commits[step][name]
}
