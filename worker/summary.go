package worker

import "time"

// StepSummary describes one committed step, for logs, progress bars and
// event files.
type StepSummary struct {
	Step       uint64
	Generation uint64
	Rank       int
	WorldSize  int
	Epoch      uint64
	Pairs      int                // global pairs in the step
	Losses     map[string]float64 // global means by name
	GradNorm   float64            // before clipping
	Timings    StepTimings
}

// StepTimings splits one step's wall time.
type StepTimings struct {
	Data      time.Duration // leasing and waiting for the batch
	Compute   time.Duration // forward and backward
	AllReduce time.Duration // waiting for the buckets
	Optimizer time.Duration // clip and optimizer step
	Total     time.Duration
	// Interval is the wall time from the end of this rank's previous step in the same generation
	// to the end of this one (0 for a generation's first step): the step and whatever ran between
	// the two (callbacks, progress reports, checkpoints). Throughput is pairs over Interval.
	Interval time.Duration
}

// Result is how a Worker's Run ended.
type Result struct {
	// Step is the last committed global step this worker holds.
	Step uint64
	// Reason: "complete" (every epoch done), "max-steps", "stopped" (signal
	// or coordinator), or "" on error.
	Reason string
	// Generations counts the generations this worker trained in.
	Generations int
}
