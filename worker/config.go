package worker

import (
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Worker. Start from DefaultConfig; zero durations and
// sizes take the defaults documented on each field.
type Config struct {
	// Name is how the worker appears in the coordinator's member list
	// (default: "worker").
	Name string
	// Addr is where ring neighbours reach this worker directly (its TCP ring
	// listener); empty when it has none.
	Addr string
	// Device is reported to the coordinator ("cpu", "cuda:0").
	Device string
	// Server names the NATS server this worker's connection reached
	// (nats.Conn.ConnectedServerName), reported at join: the coordinator
	// keeps the members of one server adjacent in the ring.
	Server string

	// JoinTimeout bounds the join, retries included (default 60 s).
	JoinTimeout time.Duration
	// GenerationTimeout bounds the wait for the next generation after the
	// ring failed, and for a generation to become ready (default 60 s). It
	// must exceed the coordinator's lease TTL, which is how long a death
	// takes to turn into a new generation.
	GenerationTimeout time.Duration
	// RejoinAfter is how long a worker whose ring failed waits for the next
	// generation before it leaves and joins again to force one (default
	// 20 s; more than the coordinator's lease TTL, which is how long a
	// death takes to become a generation).
	RejoinAfter time.Duration
	// StepTimeout bounds one training step: its lease broadcast, forward and
	// backward, and the all-reduce; and the final barrier (default 30 s). A
	// step that runs past it is abandoned and logged, and the worker joins
	// again at once: its peers' heartbeats may flow (a NATS server restarted
	// and dropped a frame) while the step can never complete. Raise it for a
	// model whose step, or whose all-reduce on a slow link, takes longer.
	StepTimeout time.Duration
	// SyncTimeout bounds the state broadcast at the start of a generation
	// (default 10 min).
	SyncTimeout time.Duration
	// RequestTimeout bounds one call to the coordinator (default 30 s).
	RequestTimeout time.Duration
	// EpochWait is how long rank 0 keeps asking for units when the current
	// epoch is exhausted and the next one is not open yet (default 10 s).
	EpochWait time.Duration

	// BucketBytes is the size of one all-reduce bucket, in bytes (default
	// 25 MiB): big enough that per-op costs vanish, small enough that
	// buckets pipeline.
	BucketBytes int
	// MaxSteps stops training after this global step (0: run until the job
	// completes). The job spec's hyper.max_steps is used when this is 0.
	MaxSteps uint64

	// CheckpointDir holds the checkpoint store (checkpoints.db) that rank 0
	// writes; empty: no checkpoints are written.
	CheckpointDir string
	// FinalCheckpoint writes a checkpoint when training stops at MaxSteps
	// or on a signal, so that a later resume starts there (default true
	// via DefaultConfig).
	FinalCheckpoint bool
	// Checksums name the files the run depends on (tokenizer vocabulary,
	// manifest: "vocab.txt" → "sha256:…"); every checkpoint records them.
	Checksums map[string]string

	// Logger receives the worker's structured logs (default slog.Default()).
	Logger *slog.Logger
	// Metrics, when set, records step timings and losses.
	Metrics *Metrics
	// OnCommit, when set, is called on every committed step with the
	// record every rank agreed on (tests count sample ids with it). It runs
	// on the training goroutine: keep it short.
	OnCommit func(c Commit)
	// OnStep, when set, is called after each committed step with its
	// summary (progress bars, event files).
	OnStep func(s StepSummary)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Name:              "worker",
		Device:            "cpu",
		JoinTimeout:       60 * time.Second,
		GenerationTimeout: 60 * time.Second,
		RejoinAfter:       20 * time.Second,
		StepTimeout:       30 * time.Second,
		SyncTimeout:       10 * time.Minute,
		RequestTimeout:    30 * time.Second,
		EpochWait:         10 * time.Second,
		BucketBytes:       25 << 20,
		FinalCheckpoint:   true,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Name == "" {
		c.Name = d.Name
	}
	set := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	set(&c.JoinTimeout, d.JoinTimeout)
	set(&c.GenerationTimeout, d.GenerationTimeout)
	set(&c.RejoinAfter, d.RejoinAfter)
	set(&c.StepTimeout, d.StepTimeout)
	set(&c.SyncTimeout, d.SyncTimeout)
	set(&c.RequestTimeout, d.RequestTimeout)
	set(&c.EpochWait, d.EpochWait)
	if c.BucketBytes == 0 {
		c.BucketBytes = d.BucketBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the fields after defaults, naming the field and its bound.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.JoinTimeout < 0 || c.GenerationTimeout < 0 || c.RejoinAfter < 0 || c.StepTimeout < 0 || c.SyncTimeout < 0 ||
		c.RequestTimeout < 0 || c.EpochWait < 0:
		return bad("timeouts must be > 0")
	case c.BucketBytes < 4:
		return bad("Config.BucketBytes is %d, want >= 4", c.BucketBytes)
	case len(c.Name) > 256:
		return bad("Config.Name is %d bytes, at most 256", len(c.Name))
	}
	return nil
}
