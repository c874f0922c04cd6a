package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// Worker is one training process of a job. Create it with New, run it with
// Run; a Worker runs once.
type Worker struct {
	cfg     Config
	coord   Coordinator
	rings   RingMaker
	learner Learner
	log     *slog.Logger
	baseLog *slog.Logger

	instance string
	id       uint64
	job      coordinator.JobSpec
	hb       time.Duration

	// Training state, owned by the Run goroutine.
	has    bool // the learner holds the state of rec.Step
	rec    record
	queue  unitQueue
	levels []int // pairs each rank of the current generation holds
	grad   []float32
	phase  finishPhase // where this worker stands on the way out (finish.go)
	// leaseOpen: a lease was due and this rank has not received its grants
	// yet. Should the generation fail now, units may be leased to this
	// worker that it does not know of: it rejoins so that they return.
	leaseOpen bool
	ckpt      checkpointer
	// lastCkpt is the step of the last checkpoint handed to the writer.
	lastCkpt uint64
	stepEnd  time.Time // when this rank's last step of the generation ended (zero: none yet)
	// beforeRecord, when set (tests), runs before a durable checkpoint is
	// recorded with the coordinator: a slow record widens the window in
	// which it is still in flight.
	beforeRecord func()

	// Shared with the heartbeat and watch goroutines.
	mu      sync.Mutex
	newest  coordinator.GenerationInfo
	hbID    atomic.Uint64 // the worker id the heartbeats carry
	heard   atomic.Uint64 // newest generation number heard of
	stopReq atomic.Bool   // a stop order for this worker: published in the next step (finish.go)
	jobStop atomic.Bool   // the coordinator says the job is stopped: every rank finishes together
	removed atomic.Bool
	// interrupts counts RingInterrupted calls: a step that sees it change
	// is abandoned.
	interrupts atomic.Uint64
	kicked     chan struct{} // a newer generation was heard of
}

// New returns a worker that will join through coord, build its rings with
// rings and train learner.
func New(cfg Config, coord Coordinator, rings RingMaker, learner Learner) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("worker: instance nonce: %w", err)
	}
	return &Worker{
		cfg: cfg, coord: coord, rings: rings, learner: learner, log: cfg.Logger, baseLog: cfg.Logger,
		instance: hex.EncodeToString(nonce[:]),
		grad:     gradBuffer(learner),
		ckpt:     newCheckpointer(),
		kicked:   make(chan struct{}, 1),
	}, nil
}

// ID is the worker id the coordinator gave (0 before the join).
func (w *Worker) ID() uint64 { return w.hbID.Load() }

// Stop asks the worker to finish the step in flight and leave; Run then
// returns with Reason "stopped". It is what SIGTERM does.
func (w *Worker) Stop() {
	w.stopReq.Store(true)
	w.kick()
}

// RingInterrupted tells the worker that frames of its ring may have been
// lost: its NATS connection reconnected (a server restarted, a link
// flapped). A NATS ring does not resend, and the peers' heartbeats flow
// again, so the step in flight could only end at StepTimeout; it is
// abandoned now instead, and the worker joins again, which moves every
// rank to a new generation. It is safe to call from any goroutine.
func (w *Worker) RingInterrupted() {
	w.interrupts.Add(1)
	w.kick()
}

func (w *Worker) kick() {
	select {
	case w.kicked <- struct{}{}:
	default:
	}
}

// errFinished ends the generation loop; the Result says why.
type errFinished struct{ reason string }

func (e errFinished) Error() string { return "worker: finished: " + e.reason }

// Run joins the job and trains until the job completes, MaxSteps is
// reached, Stop is called, or an error that no new generation can cure.
// Cancelling ctx is a hard stop: collectives in flight fail and the worker
// does not leave (as if the process died); use Stop for a clean exit.
func (w *Worker) Run(ctx context.Context) (Result, error) {
	var res Result
	jr, err := w.join(ctx)
	if err != nil {
		return res, err
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(2)
	go func(every time.Duration) { defer wg.Done(); w.heartbeatLoop(bg, every) }(w.hb)
	go func() { defer wg.Done(); w.watchLoop(bg) }()
	defer w.closeCheckpoints()

	gen := jr.Generation
	w.noteGeneration(gen)
	for {
		gen, err = w.waitUsable(ctx, gen)
		if err != nil {
			if errors.Is(err, errStopWhileWaiting) {
				res.Reason = "stopped"
				res.Step = w.rec.Step
				return res, w.leave(ctx)
			}
			if errors.Is(err, ErrRemoved) && ctx.Err() == nil {
				if gen, err = w.rejoin(ctx); err == nil {
					continue
				}
			}
			if errors.Is(err, errJobEnded) {
				return w.leaveEnded(ctx, res)
			}
			return res, err
		}
		res.Generations++
		w.cfg.Metrics.generation()
		err = w.runGeneration(ctx, gen)
		res.Step = w.rec.Step
		var fin errFinished
		switch {
		case errors.As(err, &fin):
			res.Reason = fin.reason
			return res, w.leave(ctx)
		case errors.Is(err, ErrGeneration) || errors.Is(err, ErrRemoved):
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			w.log.Info("generation ended", "generation", gen.Number, "step", w.rec.Step, "err", err)
			if w.stopping() && (errors.Is(err, errStepTimeout) || errors.Is(err, errRingInterrupted)) {
				// A stop order and a stuck step: nothing of the step was
				// committed, so leaving now loses nothing, and the ring
				// that could carry a joint stop is gone; the handover
				// returns this worker's units.
				res.Reason = "stopped"
				return res, w.leave(ctx)
			}
			if w.removed.Load() || w.leaseOpen || errors.Is(err, errStepTimeout) || errors.Is(err, errRingInterrupted) {
				// Declared dead (a long stall), or units may be leased to
				// this worker that it never heard of, or the ring is stuck
				// (a step that timed out waited longer than a death takes to
				// become a generation, so none is coming): join again,
				// keeping the parameters; the departure hands the units back.
				gen, err = w.rejoin(ctx)
			} else {
				gen, err = w.waitNewer(ctx, gen.Number, w.cfg.RejoinAfter)
				if errors.Is(err, ErrNoGeneration) || errors.Is(err, ErrRemoved) {
					// The ring failed but the membership did not change (a
					// member stalled past its peers' timeout, a link
					// dropped): leaving and joining again makes one.
					gen, err = w.rejoin(ctx)
				}
			}
			if errors.Is(err, errJobEnded) {
				// The ring broke while the job was stopped (or completed):
				// nothing of this worker's is uncommitted, so it leaves.
				return w.leaveEnded(ctx, res)
			}
			if err != nil {
				return res, err
			}
		default:
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			w.log.Error("training failed", "err", err)
			_ = w.leave(ctx)
			return res, err
		}
	}
}

func (w *Worker) join(ctx context.Context) (*coordinator.JoinReply, error) {
	jctx, cancel := context.WithTimeout(ctx, w.cfg.JoinTimeout)
	defer cancel()
	jr, err := w.coord.Join(jctx, coordinator.JoinRequest{Name: w.cfg.Name, Instance: w.instance, Addr: w.cfg.Addr, Device: w.cfg.Device, Server: w.cfg.Server})
	if err != nil {
		return nil, fmt.Errorf("worker: join: %w", err)
	}
	w.id, w.job = jr.WorkerID, jr.Job
	w.hbID.Store(jr.WorkerID)
	w.removed.Store(false)
	w.hb = time.Duration(jr.HeartbeatIntervalMS) * time.Millisecond
	if w.hb <= 0 {
		w.hb = time.Second
	}
	if w.job.GlobalBatch <= 0 {
		return nil, fmt.Errorf("%w: the job's global_batch is %d", ErrConfig, w.job.GlobalBatch)
	}
	if w.cfg.MaxSteps == 0 && w.job.Hyper.MaxSteps > 0 {
		w.cfg.MaxSteps = uint64(w.job.Hyper.MaxSteps)
	}
	w.log = w.baseLog.With("worker", w.id)
	w.log.Info("joined", "job", w.job.Name, "rank", jr.Rank, "generation", jr.Generation.Number, "members", len(jr.Generation.Members),
		"step_timeout", w.cfg.StepTimeout, "rejoin_after", w.cfg.RejoinAfter)
	return jr, nil
}

func (w *Worker) leave(ctx context.Context) error {
	w.closeCheckpoints()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
	defer cancel()
	if _, err := w.coord.Leave(lctx, w.id); err != nil && !errors.Is(err, coordinator.ErrUnknownWorker) {
		return fmt.Errorf("worker: leave: %w", err)
	}
	w.log.Info("left the job", "step", w.rec.Step)
	return nil
}

// heartbeatLoop keeps the lease and hears of generations and stop orders.
func (w *Worker) heartbeatLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, max(every*3, 2*time.Second))
		rep, err := w.coord.Heartbeat(hctx, w.hbID.Load(), w.heard.Load())
		cancel()
		switch {
		case errors.Is(err, coordinator.ErrUnknownWorker):
			if !w.removed.Swap(true) {
				w.baseLog.Warn("the coordinator declared this worker dead", "worker", w.hbID.Load())
				w.kick()
			}
			continue
		case err != nil:
			if ctx.Err() == nil {
				w.baseLog.Warn("heartbeat failed", "worker", w.hbID.Load(), "err", err)
			}
			continue
		}
		if rep.Stop {
			w.jobStop.Store(true)
		}
		if rep.Generation > w.heard.Load() {
			w.heard.Store(rep.Generation)
			w.kick()
		}
	}
}

// watchLoop follows the coordinator's generation announcements.
func (w *Worker) watchLoop(ctx context.Context) {
	ch, err := w.coord.Watch(ctx)
	if err != nil {
		w.baseLog.Warn("cannot watch generations; relying on heartbeats", "err", err)
		return
	}
	for g := range ch {
		w.noteGeneration(g)
	}
}

func (w *Worker) noteGeneration(g coordinator.GenerationInfo) {
	w.mu.Lock()
	if g.Number > w.newest.Number || (g.Number == w.newest.Number && len(w.newest.Members) == 0) {
		w.newest = g
	}
	w.mu.Unlock()
	for {
		h := w.heard.Load()
		if g.Number <= h || w.heard.CompareAndSwap(h, g.Number) {
			break
		}
	}
	w.kick()
}

// newer reports whether a generation after n was heard of.
func (w *Worker) newer(n uint64) bool { return w.heard.Load() > n }

var errStopWhileWaiting = errors.New("worker: stopped while waiting for a generation")

// waitUsable returns gen, or a newer generation, once it is ready and has
// this worker as a member.
func (w *Worker) waitUsable(ctx context.Context, gen coordinator.GenerationInfo) (coordinator.GenerationInfo, error) {
	deadline := time.Now().Add(w.cfg.GenerationTimeout)
	for {
		if g := w.latest(); g.Number > gen.Number {
			gen = g
		}
		if gen.Ready && rankOf(gen, w.id) >= 0 && !w.newer(gen.Number) {
			return gen, nil
		}
		if w.removed.Load() {
			return gen, ErrRemoved
		}
		if w.stopping() {
			return gen, errStopWhileWaiting
		}
		if w.newer(gen.Number) || !gen.Ready {
			// Ask for the newest generation outright: the announcement may be late.
			sctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
			st, err := w.coord.Status(sctx)
			cancel()
			if err == nil && st.Generation.Number >= gen.Number {
				w.noteGeneration(st.Generation)
				gen = st.Generation
				if gen.Ready && rankOf(gen, w.id) >= 0 {
					return gen, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return gen, fmt.Errorf("%w: generation %d (ready %v, member %v) after %v", ErrNoGeneration, gen.Number, gen.Ready, rankOf(gen, w.id) >= 0, w.cfg.GenerationTimeout)
		}
		select {
		case <-ctx.Done():
			return gen, ctx.Err()
		case <-w.kicked:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rejoin joins again as a new member that keeps its training state, then
// ends the old membership: its units go back to the job through the
// handover. Joining first means the job never has zero members (which would
// roll it back to its last checkpoint) when every member rejoins at once.
func (w *Worker) rejoin(ctx context.Context) (coordinator.GenerationInfo, error) {
	w.log.Warn("rejoining", "removed", w.removed.Load(), "lease_open", w.leaseOpen)
	old := w.id
	var nonce [12]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return coordinator.GenerationInfo{}, fmt.Errorf("worker: instance nonce: %w", err)
	}
	w.instance = hex.EncodeToString(nonce[:])
	jr, err := w.join(ctx)
	if errors.Is(err, coordinator.ErrJobNotRunning) {
		return coordinator.GenerationInfo{}, fmt.Errorf("%w: %v", errJobEnded, err)
	}
	if err != nil {
		return coordinator.GenerationInfo{}, err
	}
	lctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	_, err = w.coord.Leave(lctx, old)
	cancel()
	if err != nil && !errors.Is(err, coordinator.ErrUnknownWorker) {
		return coordinator.GenerationInfo{}, fmt.Errorf("worker: leave as %d: %w", old, err)
	}
	w.leaseOpen = false
	w.queue = unitQueue{}
	w.noteGeneration(jr.Generation)
	return jr.Generation, nil
}

// errJobEnded: a rejoin found the job stopped or complete. The old
// membership is still the worker's to end (leave).
var errJobEnded = errors.New("worker: the job ended")

// leaveEnded ends the old membership of a worker whose rejoin found the job
// no longer running, with reason "complete" when the coordinator says so,
// else "stopped".
func (w *Worker) leaveEnded(ctx context.Context, res Result) (Result, error) {
	res.Reason, res.Step = "stopped", w.rec.Step
	sctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	if st, err := w.coord.Status(sctx); err == nil && st.State == coordinator.JobCompleted {
		res.Reason = "complete"
	}
	cancel()
	w.log.Info("the job is no longer running", "reason", res.Reason, "step", res.Step)
	return res, w.leave(ctx)
}

// stopping: a stop order for this worker, or the job's stop, was heard.
func (w *Worker) stopping() bool { return w.stopReq.Load() || w.jobStop.Load() }

// waitNewer waits for a generation after n, at most d.
func (w *Worker) waitNewer(ctx context.Context, n uint64, d time.Duration) (coordinator.GenerationInfo, error) {
	deadline := time.Now().Add(d)
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		if g := w.latest(); g.Number > n {
			return g, nil
		}
		if w.removed.Load() {
			return coordinator.GenerationInfo{}, ErrRemoved
		}
		if time.Now().After(deadline) {
			return coordinator.GenerationInfo{}, fmt.Errorf("%w: none after %d within %v", ErrNoGeneration, n, d)
		}
		select {
		case <-ctx.Done():
			return coordinator.GenerationInfo{}, ctx.Err()
		case <-w.kicked:
		case <-poll.C:
			sctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
			st, err := w.coord.Status(sctx)
			cancel()
			if err == nil {
				w.noteGeneration(st.Generation)
			}
		}
	}
}

func (w *Worker) latest() coordinator.GenerationInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.newest
}

func rankOf(g coordinator.GenerationInfo, id uint64) int {
	for i, m := range g.Members {
		if m.WorkerID == id {
			return i
		}
	}
	return -1
}

// gradBuffer is the buffer the worker all-reduces: an OverlapLearner's own, else a new one.
func gradBuffer(l Learner) []float32 {
	if ol, ok := l.(OverlapLearner); ok {
		if g := ol.GradBuffer(); g != nil {
			return g
		}
	}
	return make([]float32, l.GradSize())
}
