package worker

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
)

// syncMeta is what each rank tells the others when a generation starts.
type syncMeta struct {
	Worker uint64 `json:"w"`
	Has    bool   `json:"h"`
	Step   uint64 `json:"s"`
	Gen    uint64 `json:"g"`
}

// levelMeta is each rank's queue level, gathered once the state is synced.
type levelMeta struct {
	Remaining int `json:"r"`
}

// wireState is the broadcast training state.
type wireState struct {
	Rec  record
	Snap *checkpoint.Snapshot
}

// sync brings every rank of a new generation to the same state: the newest
// any member holds (broadcast from the lowest rank holding it), or the
// restore point when nobody holds one. Then rank 0 hands the previous
// generation's last committed step over to the coordinator, and the ranks
// gather each other's queue levels.
func (w *Worker) sync(ctx context.Context, ring Collective, gen coordinator.GenerationInfo, rank int) error {
	sctx, cancel := context.WithTimeout(ctx, w.cfg.SyncTimeout)
	defer cancel()
	if w.has && w.rec.Gen < gen.RollbackGen {
		// The job was rolled back while this worker held a state: every member was declared dead
		// (all coordinators restarted and the heartbeats lapsed), or an operator rolled it back.
		// The state belongs to the abandoned timeline: the units its steps consumed are pending
		// again. Syncing it would consume them twice.
		w.log.Warn("the job was rolled back past this worker's state: dropping it",
			"step", w.rec.Step, "of_generation", w.rec.Gen, "rollback_generation", gen.RollbackGen)
		w.has = false
		w.queue = unitQueue{}
	}
	mine, _ := json.Marshal(syncMeta{Worker: w.id, Has: w.has, Step: w.rec.Step, Gen: w.rec.Gen})
	raw, err := w.smallGather(sctx, ring, mine)
	if err != nil {
		return fmt.Errorf("%w: sync: %w", ErrGeneration, err)
	}
	metas := make([]syncMeta, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &metas[i]); err != nil {
			return fmt.Errorf("%w: rank %d's sync metadata: %v", ErrState, i, err)
		}
	}
	root, same := -1, true
	for i, m := range metas {
		if m.Has && (root < 0 || m.Step > metas[root].Step) {
			root = i
		}
		if !m.Has || m.Step != metas[0].Step || m.Gen != metas[0].Gen {
			same = false
		}
	}
	myStep, myHas := w.rec.Step, w.has
	restored := false
	if root < 0 {
		root = 0
		if rank == 0 {
			if err := w.restoreStart(sctx, gen); err != nil {
				return err
			}
		}
		restored = true
	}
	if !same {
		var payload []byte
		if rank == root {
			snap, err := w.learner.Snapshot()
			if err != nil {
				return fmt.Errorf("worker: snapshot for the state broadcast: %w", err)
			}
			var buf bytes.Buffer
			if err := gob.NewEncoder(&buf).Encode(wireState{Rec: w.rec, Snap: snap}); err != nil {
				return fmt.Errorf("%w: encode: %v", ErrState, err)
			}
			payload = buf.Bytes()
		}
		data, err := ring.Broadcast(sctx, root, payload)
		if err != nil {
			return fmt.Errorf("%w: state broadcast: %v", ErrGeneration, err)
		}
		if rank != root {
			var ws wireState
			if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&ws); err != nil {
				return fmt.Errorf("%w: decode the broadcast state: %v", ErrState, err)
			}
			if err := w.learner.Restore(ws.Snap); err != nil {
				return fmt.Errorf("%w: %v", ErrState, err)
			}
			w.rec, w.has = ws.Rec, true
		}
		w.log.Info("state synced", "generation", gen.Number, "root", root, "step", w.rec.Step, "bytes", len(data), "restored", restored)
	}
	// Where this rank's queue stands after the agreed step. A rank that
	// committed it already holds the right queue (with perhaps units leased
	// for the abandoned next step); one that missed it (the ring failed
	// between its commit on some ranks and on others) moves forward by the
	// cursor the others recorded for it.
	switch c, ok := w.rec.cursorOf(w.id); {
	case restored:
		w.queue = unitQueue{}
	case myHas && myStep == w.rec.Step:
	case ok && myHas && myStep+1 == w.rec.Step:
		w.queue.advanceTo(c)
	default:
		// A newcomer, or a rank too far behind to know its queue: it holds
		// nothing the coordinator has not handed to it or taken back.
		if len(w.queue.units) > 0 {
			w.log.Warn("dropping a queue the synced state does not describe", "my_step", myStep, "step", w.rec.Step)
		}
		w.queue = unitQueue{}
	}
	if rank == 0 && w.rec.Gen < gen.Number && !restored {
		if err := w.handover(sctx); err != nil {
			return err
		}
	}
	lv, _ := json.Marshal(levelMeta{Remaining: w.queue.remaining()})
	raw, err = w.smallGather(sctx, ring, lv)
	if err != nil {
		return fmt.Errorf("%w: levels: %w", ErrGeneration, err)
	}
	w.levels = make([]int, len(raw))
	for i, b := range raw {
		var m levelMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%w: rank %d's level: %v", ErrState, i, err)
		}
		w.levels[i] = m.Remaining
	}
	return nil
}

// handover reports the last committed step of the previous generation so
// that a departed member's units go back to pending where its cursor left
// them. Reporting when no handover is pending is harmless; a failure only
// matters when one is.
func (w *Worker) handover(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	_, err := w.coord.ReportProgress(rctx, w.rec.progress(true))
	if err == nil {
		w.rec.acked(w.rec.Step)
		w.log.Info("handover reported", "step", w.rec.Step, "of_generation", w.rec.Gen)
		return nil
	}
	st, serr := w.coord.Status(rctx)
	if serr == nil && !st.Generation.HandoverPending {
		w.log.Debug("handover not needed", "err", err)
		return nil
	}
	return fmt.Errorf("%w: handover of step %d: %v", ErrGeneration, w.rec.Step, err)
}

// restoreStart gives rank 0 the state the job starts from when no member
// holds one: the coordinator's restore point (a checkpoint, falling back
// past corrupt ones), or fresh parameters from the seed.
func (w *Worker) restoreStart(ctx context.Context, gen coordinator.GenerationInfo) error {
	rs := gen.Restore
	if rs == nil {
		// The job has trained past its last restore point and nobody here
		// holds that state: its holders left before passing it on (the
		// last old worker of a rolling upgrade). Starting from the seed
		// would train the job's pairs again on fresh parameters; the
		// coordinator sends the job back to its latest usable checkpoint.
		lctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
		rep, err := w.coord.LostState(lctx, gen.Number)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("%w: no member holds the job's state, and reporting it failed: %v", ErrGeneration, err)
		case rep.RolledBack:
			step := uint64(0)
			if rep.Restore != nil {
				step = rep.Restore.Step
			}
			w.log.Warn("no member holds the job's state: the job went back to its latest checkpoint", "step", step, "generation", rep.Generation)
			return fmt.Errorf("%w: no member held the job's state; the job went back to step %d in generation %d", ErrGeneration, step, rep.Generation)
		}
		rs = rep.Restore
	}
	for rs != nil && rs.Location != "" {
		snap, err := w.loadCheckpoint(rs.Location)
		if err == nil {
			if err := w.learner.Restore(snap); err != nil {
				return fmt.Errorf("%w: checkpoint at step %d: %v", ErrRestore, rs.Step, err)
			}
			w.rec = record{Step: rs.Step, Gen: gen.Number, Reclaim: append([]coordinator.RankCursor(nil), rs.Cursors...), Acked: rs.Step}
			w.has = true
			w.log.Info("restored from checkpoint", "step", rs.Step, "location", rs.Location)
			return nil
		}
		w.log.Error("checkpoint failed to load; reporting it corrupt", "step", rs.Step, "location", rs.Location, "err", err)
		rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
		rep, rerr := w.coord.RecordCheckpoint(rctx, coordinator.CheckpointRequest{Step: rs.Step, Location: rs.Location, Checksum: rs.Checksum, Status: coordinator.CheckpointCorrupt})
		cancel()
		if rerr != nil {
			return fmt.Errorf("%w: %v (and reporting it corrupt failed: %v)", ErrRestore, err, rerr)
		}
		if rep.Restore == nil || (rep.Restore.Step == rs.Step && rep.Restore.Location == rs.Location) {
			return fmt.Errorf("%w: %v; the coordinator names no other restore point", ErrRestore, err)
		}
		// The coordinator rolled back to an older point: that is a new
		// generation, which the members will see; restore it now anyway.
		rs = rep.Restore
		if rs.Location == "" {
			break
		}
	}
	if err := w.learner.Init(w.job.Seed); err != nil {
		return fmt.Errorf("worker: init: %w", err)
	}
	step := uint64(0)
	var cursors []coordinator.RankCursor
	if rs != nil {
		step, cursors = rs.Step, rs.Cursors
	}
	if step != 0 {
		return fmt.Errorf("%w: restore point at step %d has no checkpoint location", ErrRestore, step)
	}
	w.rec = record{Step: 0, Gen: gen.Number, Reclaim: cursors}
	w.has = true
	w.log.Info("initialised from the seed", "seed", w.job.Seed)
	return nil
}

// smallGather all-gathers a few bytes of metadata within StepTimeout: it
// needs no longer than a step's collectives, and a frame lost while the
// peers' heartbeats flow (a NATS server that restarted before its routes
// formed again) must not hold the sync for the whole SyncTimeout, which is
// sized for the state broadcast. A timeout is marked errStepTimeout: the
// worker joins again at once.
func (w *Worker) smallGather(ctx context.Context, ring Collective, meta []byte) ([][]byte, error) {
	gctx, cancel := context.WithTimeout(ctx, w.cfg.StepTimeout)
	defer cancel()
	raw, err := ring.AllGather(gctx, meta)
	if err != nil && ctx.Err() == nil && errors.Is(gctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("%w: %v", errStepTimeout, err)
	}
	return raw, err
}
