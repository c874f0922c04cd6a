package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/e2evlp/vlp/worker"
	"github.com/nats-io/nats.go"
)

// stepWatch follows rank 0's step summaries (worker --publish-steps) for `vlp train`: the
// progress line, DIR/steps.jsonl (one JSON worker.StepSummary a line: losses, gradient norm,
// the step-time split; vlp bench train reads it), the loss curve and the mean step-time split.
type stepWatch struct {
	out   io.Writer // steps.jsonl
	log   *slog.Logger
	start time.Time // the run's start, for the first step's log line

	mu    sync.Mutex
	last  worker.StepSummary
	first time.Time          // when the first summary came
	split worker.StepTimings // summed over the steps seen
	seen  int
	curve []lossPoint
}

// handle takes one summary: a step after the last one seen counts; a repeat (a step trained
// again after a rollback reaches the same number) does not.
func (w *stepWatch) handle(m *nats.Msg) {
	var s worker.StepSummary
	if json.Unmarshal(m.Data, &s) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.Step > w.last.Step {
		w.last = s
		t := s.Timings
		w.split.Data += t.Data
		w.split.Compute += t.Compute
		w.split.AllReduce += t.AllReduce
		w.split.Optimizer += t.Optimizer
		w.split.Total += t.Total
		w.seen++
		w.curve = append(w.curve, lossPoint{Step: s.Step, Losses: s.Losses})
		w.out.Write(append(bytes.TrimSpace(m.Data), '\n'))
	}
	if w.first.IsZero() {
		w.first = time.Now()
		w.log.Info("first step", "step", s.Step, "after_start", time.Since(w.start).Round(time.Millisecond))
	}
}

// lastStep is the newest summary.
func (w *stepWatch) lastStep() worker.StepSummary {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// stepSplit is the step-time split, each phase the mean over the steps seen (seen 0: none).
func (w *stepWatch) stepSplit() (mean worker.StepTimings, seen int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == 0 {
		return mean, 0
	}
	n := time.Duration(w.seen)
	return worker.StepTimings{Data: w.split.Data / n, Compute: w.split.Compute / n, AllReduce: w.split.AllReduce / n,
		Optimizer: w.split.Optimizer / n, Total: w.split.Total / n}, w.seen
}

// firstStep is when the first summary came (zero: none came).
func (w *stepWatch) firstStep() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// lossCurve is the losses of every step seen.
func (w *stepWatch) lossCurve() []lossPoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]lossPoint(nil), w.curve...)
}
