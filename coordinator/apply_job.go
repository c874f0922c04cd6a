package coordinator

import (
	"encoding/json"
	"fmt"
	"sort"
)

// This file holds the job-level commands: submit, stop, open epoch, checkpoint, rollback.

func (s *State) requireJob() error {
	if s.Job == nil {
		return fmt.Errorf("%w: submit a job first", ErrNoJob)
	}
	return nil
}

func (s *State) applySubmit(atMS int64, b *SubmitRequest) (any, error) {
	spec := b.Spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if s.Job != nil {
		old, _ := json.Marshal(s.Job)
		nw, _ := json.Marshal(&spec)
		if string(old) == string(nw) {
			if s.JobState == JobStopped {
				// The same spec again resumes a stopped job (vlp job resume):
				// workers that join restore the checkpoint its stop wrote.
				s.JobState, s.Reason = JobRunning, ""
			}
			return s.status(), nil // a retried submit, or a resume
		}
		if !s.replaceable() {
			return nil, fmt.Errorf("%w: job %q was submitted already and has trained (step %d, %d worker(s)); stop it and let its workers leave to replace it", ErrJobExists, s.Job.Name, s.Step, len(s.Workers))
		}
		s.resetJob(atMS)
	}
	s.Job = &spec
	s.JobState = JobRunning
	s.Restore = &Restore{Step: 0}
	s.GenerationAtMS = atMS
	return s.status(), nil
}

// replaceable says whether a new spec may replace the job: it has no member, and it either
// never committed a step (its workers failed, e.g. on a dataset they could not read) or it was
// stopped by the operator.
func (s *State) replaceable() bool {
	return len(s.Workers) == 0 && (s.JobState == JobStopped || (s.Step == 0 && len(s.Checkpoints) == 0))
}

// resetJob forgets the job's progress before a replacement: epochs, units, step, checkpoint
// records. The generation moves on, so nothing of the old job's rings is current.
func (s *State) resetJob(atMS int64) {
	s.Reason = ""
	s.Members = []uint64{}
	s.Handover = false
	s.Step, s.Cursors, s.LastProgressAtMS = 0, nil, 0
	s.Epochs, s.EpochsPruned, s.NextEpoch = []*Epoch{}, 0, 0
	s.Checkpoints = []CheckpointRecord{}
	s.bump(atMS)
	s.RollbackGen = s.Generation
}

func (s *State) applyStop(b *StopRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if len(b.Reason) > maxStringLen {
		return nil, fmt.Errorf("%w: reason longer than %d bytes", ErrBadRequest, maxStringLen)
	}
	if s.JobState == JobRunning {
		s.JobState = JobStopped
		s.Reason = b.Reason
	}
	return s.status(), nil
}

func (s *State) applyOpenEpoch(b *OpenEpoch) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if b.Epoch != s.NextEpoch {
		return nil, fmt.Errorf("%w: open epoch %d, the next epoch is %d", ErrConflict, b.Epoch, s.NextEpoch)
	}
	if b.Epoch >= uint64(s.Job.Epochs) {
		return nil, fmt.Errorf("%w: open epoch %d, the job has %d epochs", ErrConflict, b.Epoch, s.Job.Epochs)
	}
	sizes, err := decodeRuns(b.Runs)
	if err != nil {
		return nil, err
	}
	e := &Epoch{Number: b.Epoch, Units: make([]Unit, len(sizes))}
	for i, n := range sizes {
		e.Units[i] = Unit{Pairs: n}
	}
	s.Epochs = append(s.Epochs, e)
	s.NextEpoch++
	return Empty{}, nil
}

// needsEpoch reports whether the leader should open the next epoch: the job runs, epochs remain,
// and the newest open epoch has no pending unit left (so leases never run dry at an epoch's end).
func (s *State) needsEpoch() (uint64, bool) {
	if s.Job == nil || s.JobState != JobRunning || s.NextEpoch >= uint64(s.Job.Epochs) {
		return 0, false
	}
	if n := len(s.Epochs); n > 0 {
		for _, u := range s.Epochs[n-1].Units {
			if u.State == UnitPending {
				return 0, false
			}
		}
	}
	return s.NextEpoch, true
}

func (s *State) applyCheckpoint(atMS int64, b *CheckpointRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if b.Step == 0 {
		return nil, fmt.Errorf("%w: checkpoint step must be >= 1", ErrBadRequest)
	}
	if len(b.Location) > maxStringLen || len(b.Checksum) > maxStringLen || len(b.Cursors) > maxWorkersLimit {
		return nil, fmt.Errorf("%w: checkpoint location, checksum or cursors too long", ErrBadRequest)
	}
	rec := s.checkpoint(b.Step)
	switch b.Status {
	case CheckpointDurable, CheckpointVerified:
		if rec == nil || rec.Status == CheckpointWriting {
			if b.Location == "" || b.Checksum == "" {
				return nil, fmt.Errorf("%w: recording a checkpoint needs its location and checksum", ErrBadRequest)
			}
		}
		if rec == nil && b.Step != s.Step {
			// A rollback to this checkpoint must know the data state at its step.
			return nil, fmt.Errorf("%w: checkpoint at step %d: the reported step is %d; announce it with a progress report (checkpoint: true) at its step", ErrConflict, b.Step, s.Step)
		}
		if rec == nil {
			if err := validCursors(b.Cursors); err != nil {
				return nil, err
			}
		}
	case CheckpointCorrupt:
		if rec == nil {
			return nil, fmt.Errorf("%w: no checkpoint at step %d to mark corrupt", ErrConflict, b.Step)
		}
	default:
		return nil, fmt.Errorf("%w: checkpoint status %q: want durable, verified or corrupt", ErrBadRequest, b.Status)
	}
	if rec != nil && rec.Status != CheckpointWriting {
		if (b.Location != "" && b.Location != rec.Location) || (b.Checksum != "" && b.Checksum != rec.Checksum) {
			return nil, fmt.Errorf("%w: checkpoint at step %d is recorded with another location or checksum", ErrConflict, b.Step)
		}
		if rec.Status == CheckpointCorrupt && b.Status != CheckpointCorrupt {
			return nil, fmt.Errorf("%w: checkpoint at step %d is marked corrupt", ErrConflict, b.Step)
		}
	}
	reply := &CheckpointReply{}
	if rec == nil {
		cursors := sortedCursors(b.Cursors)
		if len(cursors) == 0 {
			cursors = append(cursors, s.Cursors...)
		}
		s.Checkpoints = append(s.Checkpoints, CheckpointRecord{Step: b.Step, Cursors: cursors, Partials: s.partials(), AtMS: atMS})
		sort.SliceStable(s.Checkpoints, func(i, j int) bool { return s.Checkpoints[i].Step < s.Checkpoints[j].Step })
		rec = s.checkpoint(b.Step)
	}
	switch {
	case rec.Status == CheckpointWriting || rec.Status == "":
		if b.Status == CheckpointCorrupt {
			rec.Status = CheckpointCorrupt
			break
		}
		rec.Status, rec.Location, rec.Checksum, rec.Bytes, rec.Epoch = b.Status, b.Location, b.Checksum, b.Bytes, b.Epoch
		if len(b.Cursors) > 0 {
			if err := validCursors(b.Cursors); err == nil {
				rec.Cursors = sortedCursors(b.Cursors)
			}
		}
	case b.Status == CheckpointVerified || b.Status == CheckpointCorrupt:
		rec.Status = b.Status
	}
	if b.Status == CheckpointCorrupt && s.Restore != nil && s.Restore.Step == b.Step {
		// The ring was told to restore this checkpoint and it does not verify: fall back to the
		// one before it.
		s.rollbackTo(atMS, s.usableBefore(b.Step))
		reply.Restore = s.Restore.clone()
	}
	s.retainCheckpoints()
	s.pruneEpochs()
	if l := s.latestUsable(); l != nil {
		c := *l
		reply.Latest = &c
	}
	return reply, nil
}

// announceCheckpoint records, at the reported step, that a checkpoint of it is being written.
func (s *State) announceCheckpoint(atMS int64) {
	if s.checkpoint(s.Step) != nil {
		return
	}
	s.Checkpoints = append(s.Checkpoints, CheckpointRecord{
		Step: s.Step, Cursors: append([]RankCursor(nil), s.Cursors...), Partials: s.partials(), Status: CheckpointWriting, AtMS: atMS,
	})
	sort.SliceStable(s.Checkpoints, func(i, j int) bool { return s.Checkpoints[i].Step < s.Checkpoints[j].Step })
	s.retainCheckpoints()
}

// usableBefore is the newest usable checkpoint before step, or nil.
func (s *State) usableBefore(step uint64) *CheckpointRecord {
	for i := len(s.Checkpoints) - 1; i >= 0; i-- {
		if c := &s.Checkpoints[i]; c.Step < step && c.usable() {
			return c
		}
	}
	return nil
}

// retainCheckpoints keeps the newest CheckpointRetain usable records, and the other records
// (writing, corrupt) newer than the oldest one kept.
func (s *State) retainCheckpoints() {
	keep, oldest := 0, uint64(0)
	for i := len(s.Checkpoints) - 1; i >= 0; i-- {
		if s.Checkpoints[i].usable() {
			keep++
			oldest = s.Checkpoints[i].Step
			if keep == s.Job.CheckpointRetain {
				break
			}
		}
	}
	out := s.Checkpoints[:0]
	for _, c := range s.Checkpoints {
		if c.Step >= oldest {
			out = append(out, c)
		}
	}
	s.Checkpoints = out
}

// pruneEpochs drops done epochs that no rollback can reach: done at or before the oldest retained
// usable checkpoint.
func (s *State) pruneEpochs() {
	var oldest *CheckpointRecord
	for i := range s.Checkpoints {
		if s.Checkpoints[i].usable() {
			oldest = &s.Checkpoints[i]
			break
		}
	}
	if oldest == nil {
		return
	}
	for len(s.Epochs) > 0 && s.Epochs[0].Done && s.Epochs[0].DoneStep <= oldest.Step {
		s.Epochs = s.Epochs[1:]
		s.EpochsPruned++
	}
}

func (s *State) applyRollback(atMS int64, b *RollbackRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	var to *CheckpointRecord
	if b.ToStep != 0 {
		to = s.checkpoint(b.ToStep)
		if to == nil || !to.usable() {
			return nil, fmt.Errorf("%w: no usable checkpoint at step %d", ErrConflict, b.ToStep)
		}
	}
	s.rollbackTo(atMS, to)
	return &RollbackReply{Generation: s.Generation, Restore: s.Restore.clone()}, nil
}

// applyLostState: no member of the current generation holds the job's state. While the job already
// waits for a restore (a rollback or a new job) that restore stands; otherwise the job goes back to
// its latest usable checkpoint, as when its last member departs. A request of an older generation
// is stale: the members sync again in the newer one.
func (s *State) applyLostState(atMS int64, b *LostStateRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if b.Generation != s.Generation {
		return nil, fmt.Errorf("%w: generation %d, current %d", ErrStaleGeneration, b.Generation, s.Generation)
	}
	if s.Restore != nil {
		return &LostStateReply{Generation: s.Generation, Restore: s.Restore.clone()}, nil
	}
	s.rollbackTo(atMS, s.latestUsable())
	return &LostStateReply{Generation: s.Generation, Restore: s.Restore.clone(), RolledBack: true}, nil
}

// rollbackTo makes the job restart from checkpoint c (nil: from scratch): every unit not done by
// c's step returns to pending, with the offset c's cursors give it and pinned to the rank that
// held it; every lease is dropped; every member must reload. It starts a new generation.
func (s *State) rollbackTo(atMS int64, c *CheckpointRecord) {
	var step uint64
	var cursors []RankCursor
	var partials []UnitOffset
	restore := &Restore{}
	if c != nil {
		step, cursors, partials = c.Step, c.Cursors, c.Partials
		restore = &Restore{Step: c.Step, Location: c.Location, Checksum: c.Checksum, Cursors: append([]RankCursor(nil), c.Cursors...)}
	}
	for _, e := range s.Epochs {
		for i := range e.Units {
			u := &e.Units[i]
			if u.State == UnitDone && u.Step <= step {
				continue
			}
			*u = Unit{Pairs: u.Pairs}
		}
	}
	for _, p := range partials {
		if u := s.unit(p.Epoch, p.Unit); u != nil && u.State != UnitDone && p.Offset <= u.Pairs {
			u.Offset = p.Offset
		}
	}
	for _, cur := range cursors {
		if cur.Unit < 0 {
			continue
		}
		if u := s.unit(cur.Epoch, uint32(cur.Unit)); u != nil && u.State != UnitDone {
			u.Pin = int32(cur.Rank) + 1
		}
	}
	s.refreshEpochs()
	for _, w := range s.Workers {
		w.LastLeaseID, w.LastLease = "", nil
	}
	out := s.Checkpoints[:0]
	for _, ck := range s.Checkpoints {
		if ck.Step <= step {
			out = append(out, ck)
		}
	}
	s.Checkpoints = out
	s.Step = step
	s.Cursors = sortedCursors(cursors)
	s.Restore = restore
	s.Handover = false
	if s.JobState == JobCompleted {
		s.JobState = JobRunning
	}
	s.bump(atMS)
	s.RollbackGen = s.Generation
}

// refreshEpochs recomputes each epoch's Done flag and the job's completion.
func (s *State) refreshEpochs() {
	for _, e := range s.Epochs {
		done, last := true, uint64(0)
		for i := range e.Units {
			if e.Units[i].State != UnitDone {
				done = false
				break
			}
			last = max(last, e.Units[i].Step)
		}
		e.Done, e.DoneStep = done, 0
		if done {
			e.DoneStep = last
		}
	}
	if s.Job != nil && s.JobState == JobRunning && s.epochsDone() >= s.Job.Epochs {
		s.JobState = JobCompleted
	}
}

// bump starts a new generation.
func (s *State) bump(atMS int64) {
	s.Generation++
	s.GenerationAtMS = atMS
}
