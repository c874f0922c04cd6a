package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/e2evlp/vlp/allreduce"
	"github.com/e2evlp/vlp/coordinator"
)

// runGeneration trains in one generation until it ends (ErrGeneration),
// training is finished (errFinished), or an error.
func (w *Worker) runGeneration(ctx context.Context, gen coordinator.GenerationInfo) error {
	rank := rankOf(gen, w.id)
	if rank < 0 {
		return fmt.Errorf("%w: not a member of generation %d", ErrGeneration, gen.Number)
	}
	log := w.log.With("generation", gen.Number, "rank", rank, "size", len(gen.Members))
	start := time.Now()
	ring, err := w.rings.MakeRing(ctx, w.job.Name, gen, rank)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrGeneration, err)
	}
	defer ring.Close()
	syncCtx, cancelSync := context.WithCancel(ctx)
	mark := w.interrupts.Load()
	interrupted := func() bool { return w.interrupts.Load() != mark }
	stopWatch := w.abandonOnNewer(syncCtx, cancelSync, gen.Number, interrupted)
	err = w.sync(syncCtx, ring, gen, rank)
	stopWatch()
	cancelSync()
	if err != nil {
		switch {
		case w.newer(gen.Number):
			return fmt.Errorf("%w: generation %d superseded during sync: %v", ErrGeneration, gen.Number, err)
		case interrupted() && ctx.Err() == nil:
			log.Warn("ring interrupted (NATS reconnected) during the sync: joining again")
			return fmt.Errorf("%w: %w", errRingInterrupted, err)
		case errors.Is(err, errStepTimeout):
			log.Warn("sync timed out: joining again", "step_timeout", w.cfg.StepTimeout, "err", err)
		}
		return err
	}
	w.newGeneration()
	w.stepEnd = time.Time{}
	log.Info("training in generation", "step", w.rec.Step, "sync", time.Since(start).Round(time.Millisecond))
	for {
		switch {
		case w.removed.Load():
			return ErrRemoved
		case w.newer(gen.Number):
			return fmt.Errorf("%w: generation %d superseded", ErrGeneration, gen.Number)
		}
		if reason := w.finishReason(); reason != "" {
			if err := w.finish(ctx, ring, gen, rank); err != nil {
				return err
			}
			return errFinished{reason}
		}
		if err := w.step(ctx, ring, gen, rank); err != nil {
			switch {
			case errors.Is(err, errStepTimeout):
				log.Warn("step timed out: abandoning it and joining again", "step", w.rec.Step+1, "step_timeout", w.cfg.StepTimeout, "err", err)
			case errors.Is(err, errRingInterrupted):
				log.Warn("ring interrupted (NATS reconnected): abandoning the step and joining again", "step", w.rec.Step+1)
			}
			if errors.Is(err, ErrGeneration) {
				w.cfg.Metrics.abandon()
			}
			return err
		}
	}
}

// finish ends training at a step boundary: rank 0 reports the last step and
// writes a final checkpoint, and the ranks that all finish together wait for
// it, so that the job's last departure rolls back to exactly this step.
func (w *Worker) finish(ctx context.Context, ring Collective, gen coordinator.GenerationInfo, rank int) error {
	all := w.finishTogether()
	if rank == 0 || !all {
		if rank == 0 && w.rec.Gen == gen.Number {
			final := w.cfg.FinalCheckpoint && w.rec.Step > 0 && w.lastCkpt != w.rec.Step
			w.report(ctx, gen, final)
			if final {
				if err := w.checkpointNow(ctx, gen, true); err != nil {
					w.log.Error("final checkpoint failed", "err", err)
				}
			}
		}
	}
	if all {
		bctx, cancel := context.WithTimeout(ctx, w.cfg.StepTimeout)
		defer cancel()
		if _, err := ring.AllGather(bctx, nil); err != nil {
			w.log.Warn("final barrier failed", "err", err)
		}
	}
	return nil
}

// step runs one training step: lease, batch, gradients, all-reduce, commit.
func (w *Worker) step(ctx context.Context, ring Collective, gen coordinator.GenerationInfo, rank int) error {
	t0 := time.Now()
	size := len(gen.Members)
	sctx, cancel := context.WithTimeout(ctx, w.cfg.StepTimeout)
	defer cancel()
	// A newer generation heard of mid-step, or a ring interruption, abandons
	// the step at once rather than after the ring's peer or step timeout.
	mark := w.interrupts.Load()
	interrupted := func() bool { return w.interrupts.Load() != mark }
	stopWatch := w.abandonOnNewer(sctx, cancel, gen.Number, interrupted)
	defer stopWatch()
	cut := func(err error) error { return stepCut(ctx, sctx, interrupted(), err) }
	if err := w.lease(sctx, ring, gen, rank); err != nil {
		if errors.Is(err, errJobStopped) {
			w.log.Info("the job was stopped: finishing at this step boundary", "step", w.rec.Step)
			return nil
		}
		return cut(err)
	}
	total := 0
	for r := range size {
		total += min(rankBatch(w.job.GlobalBatch, size, r), w.levels[r])
	}
	if total == 0 {
		// Only a lease that found the job complete leaves every rank
		// without pairs (leaseFor waits for anything else).
		w.phase = phaseComplete
		return nil
	}
	next := w.rec.Step + 1
	batch := rankBatch(w.job.GlobalBatch, size, rank)
	segs := w.queue.peek(batch)
	pairs := pairsOf(segs)
	if err := w.learner.Load(sctx, pairs); err != nil {
		if sctx.Err() != nil && ctx.Err() == nil {
			return cut(fmt.Errorf("%w: step %d: %v", ErrGeneration, next, err))
		}
		return fmt.Errorf("worker: step %d: data: %w", next, err)
	}
	t1 := time.Now()

	// What this rank tells the others with its gradients: its pairs, its
	// cursor after them, its losses (once the forward pass has them).
	after := unitQueue{units: append([]coordinator.UnitLease(nil), w.queue.units...)}
	done := after.consume(segs)
	// The next step's pairs, when this rank's queue already holds them
	// (units larger than a step): their batch is built while this step
	// computes.
	if ahead := pairsOf(after.peek(batch)); len(ahead) == batch {
		w.learner.Prepare(ahead)
	}
	meta := stepMeta{
		Worker: w.id, Count: len(pairs), Segments: segs,
		After: after.cursor(rank, w.id), Remaining: after.remaining(), Done: done,
	}
	if rank == 0 {
		meta.Acked = w.rec.Acked
	}
	meta.Stopping, meta.JobStopped = w.stopReq.Load(), w.jobStop.Load()

	// Forward and backward: the gradient of the summed loss of this rank's
	// pairs. The all-reduce sums the gradients and gathers every rank's
	// cursor; a learner with gradient buckets starts it during backward.
	// Until it completes on this rank nothing is changed.
	red := &reduction{ctx: sctx, ring: ring, grad: w.grad}
	var err error
	if ol, ok := w.learner.(OverlapLearner); ok && ol.GradBuffer() != nil {
		_, err = ol.GradientsOverlapped(sctx, pairs, func(l Losses) error {
			meta.Losses = l
			return red.setMeta(meta)
		}, red.start)
	} else {
		meta.Losses, err = w.learner.Gradients(sctx, pairs, w.grad)
		if err == nil {
			err = red.all(meta, w.cfg.BucketBytes)
		}
	}
	if err != nil {
		if sctx.Err() != nil && ctx.Err() == nil {
			// A newer generation or the step's deadline cut the computation
			// short: the step is abandoned, nothing was changed.
			return cut(fmt.Errorf("%w: step %d: %v", ErrGeneration, next, err))
		}
		return fmt.Errorf("worker: step %d: %w", next, err)
	}
	t2 := time.Now()
	raw, err := red.wait()
	if err != nil {
		return cut(fmt.Errorf("%w: all-reduce of step %d: %v", ErrGeneration, next, err))
	}
	metas, err := decodeMetas(raw)
	if err != nil {
		return err
	}
	t3 := time.Now()

	// Commit: the queue, the shared record, then the parameters.
	w.queue.consume(segs)
	w.rec.commit(next, gen.Number, metas)
	all, job := true, true
	for _, m := range metas {
		all = all && m.Stopping
		job = job && m.JobStopped
	}
	w.committed(meta.Stopping, all, job)
	global := 0
	sums := map[string]float64{}
	for r, m := range metas {
		global += m.Count
		w.levels[r] = m.Remaining
		for k, v := range m.Losses {
			sums[k] += v
		}
	}
	if global > 0 {
		allreduce.Scale(w.grad, float32(1/float64(global)))
		for k := range sums {
			sums[k] /= float64(global)
		}
	}
	norm, err := w.learner.Apply(w.grad, next)
	if err != nil {
		// The parameters may be half-updated: this rank cannot continue.
		return fmt.Errorf("worker: optimizer step %d: %w", next, err)
	}
	t4 := time.Now()
	if w.cfg.OnCommit != nil {
		c := Commit{Step: next, Generation: gen.Number, Losses: sums, Pairs: global}
		for _, m := range metas {
			c.Ranks = append(c.Ranks, RankCommit{Worker: m.Worker, Segments: m.Segments, After: m.After})
		}
		w.cfg.OnCommit(c)
	}
	sum := StepSummary{
		Step: next, Generation: gen.Number, Rank: rank, WorldSize: size, Epoch: w.rec.Epoch,
		Pairs: global, Losses: sums, GradNorm: norm,
		Timings: StepTimings{Data: t1.Sub(t0), Compute: t2.Sub(t1), AllReduce: t3.Sub(t2), Optimizer: t4.Sub(t3), Total: t4.Sub(t0)},
	}
	if !w.stepEnd.IsZero() {
		sum.Timings.Interval = t4.Sub(w.stepEnd)
	}
	w.stepEnd = t4
	w.cfg.Metrics.observeStep(sum, len(pairs))
	if w.cfg.OnStep != nil {
		w.cfg.OnStep(sum)
	}
	if rank == 0 {
		w.afterCommit(ctx, gen, sum)
	}
	return nil
}

// Why a step was cut short, besides a newer generation.
var (
	// errStepTimeout: the step ran past StepTimeout.
	errStepTimeout = errors.New("worker: step timeout")
	// errRingInterrupted: RingInterrupted was called during the step.
	errRingInterrupted = errors.New("worker: ring interrupted")
)

// stepCut marks err with errStepTimeout when the step's own deadline (sctx's,
// not the run's ctx) ended it, or with errRingInterrupted.
func stepCut(ctx, sctx context.Context, interrupted bool, err error) error {
	switch {
	case ctx.Err() != nil:
		return err
	case interrupted:
		return fmt.Errorf("%w: %w", errRingInterrupted, err)
	case errors.Is(sctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", errStepTimeout, err)
	}
	return err
}

// reduction is one step's all-reduce of grad: ranges started as they are
// ready, in the same order on every rank, the step's metadata riding on
// the first.
type reduction struct {
	ctx  context.Context
	ring Collective
	grad []float32

	mu  sync.Mutex
	mb  []byte
	ops []*allreduce.Op
}

// setMeta encodes the metadata the first range carries.
func (r *reduction) setMeta(meta stepMeta) error {
	mb, err := encodeMeta(meta)
	r.mu.Lock()
	r.mb = mb
	r.mu.Unlock()
	return err
}

// start starts the all-reduce of grad[lo:hi].
func (r *reduction) start(lo, hi int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m []byte
	if len(r.ops) == 0 {
		m = r.mb
	}
	r.ops = append(r.ops, r.ring.StartAllReduce(r.ctx, r.grad[lo:hi], m))
}

// all starts the whole buffer at once, in buckets of bucketBytes (the
// gradients of a learner without buckets, complete after backward).
func (r *reduction) all(meta stepMeta, bucketBytes int) error {
	if err := r.setMeta(meta); err != nil {
		return err
	}
	per := max(1, bucketBytes/4)
	for lo := 0; lo == 0 || lo < len(r.grad); lo += per {
		r.start(lo, min(len(r.grad), lo+per))
	}
	return nil
}

// wait waits for every started range and returns every rank's metadata.
func (r *reduction) wait() ([][]byte, error) {
	r.mu.Lock()
	ops := r.ops
	r.mu.Unlock()
	if len(ops) == 0 {
		return nil, errors.New("worker: no all-reduce was started")
	}
	var metas [][]byte
	for i, op := range ops {
		ms, err := op.Wait()
		if err != nil {
			return nil, err
		}
		if i == 0 {
			metas = ms
		}
	}
	return metas, nil
}

// afterCommit is rank 0's bookkeeping: log, progress every K steps,
// checkpoint every N.
func (w *Worker) afterCommit(ctx context.Context, gen coordinator.GenerationInfo, s StepSummary) {
	every := uint64(max(1, w.job.ProgressEvery))
	ckEvery := uint64(max(1, w.job.CheckpointEvery))
	ck := w.cfg.CheckpointDir != "" && s.Step%ckEvery == 0
	if s.Step%every == 0 || ck {
		w.report(ctx, gen, ck)
		w.log.Info("step", "step", s.Step, "epoch", s.Epoch, "pairs", s.Pairs, "loss", roundLoss(s.Losses["total"]),
			"step_ms", s.Timings.Total.Milliseconds(), "allreduce_ms", s.Timings.AllReduce.Milliseconds())
	}
	if ck {
		if err := w.checkpointNow(ctx, gen, false); err != nil {
			w.log.Error("checkpoint failed", "step", s.Step, "err", err)
		}
	}
}

func roundLoss(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// report sends the record to the coordinator (rank 0). With checkpoint
// set it also announces that a checkpoint of this step is about to be
// written, so that the coordinator keeps the data state at this step and
// accepts the checkpoint's record however many steps later it is durable.
func (w *Worker) report(ctx context.Context, gen coordinator.GenerationInfo, checkpoint bool) {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req := w.rec.progress(false)
	req.Generation = gen.Number
	req.Checkpoint = checkpoint
	if _, err := w.coord.ReportProgress(rctx, req); err != nil {
		w.log.Warn("progress report failed; the next report or the handover covers it", "step", w.rec.Step, "err", err)
		return
	}
	w.rec.acked(w.rec.Step)
}

// abandonOnNewer cancels a step's context when a generation after n is
// heard of, or one of also says so; the returned function stops watching.
func (w *Worker) abandonOnNewer(ctx context.Context, cancel context.CancelFunc, n uint64, also ...func() bool) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if w.newer(n) || w.removed.Load() {
				cancel()
				return
			}
			for _, f := range also {
				if f() {
					cancel()
					return
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}
