package coordinator

import (
	"fmt"
	"sort"
)

// This file holds the data-unit commands: lease and progress.

// Bounds on one lease request.
const (
	maxLeaseAsks  = 1 << 16
	maxLeaseCount = 4096
)

func (s *State) applyLease(b *LeaseRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if len(b.RequestID) > maxStringLen {
		return nil, fmt.Errorf("%w: request_id longer than %d bytes", ErrBadRequest, maxStringLen)
	}
	if len(b.Asks) == 0 || len(b.Asks) > maxLeaseAsks {
		return nil, fmt.Errorf("%w: a lease needs 1 to %d asks", ErrBadRequest, maxLeaseAsks)
	}
	for _, a := range b.Asks {
		if a.Count < 1 || a.Count > maxLeaseCount {
			return nil, fmt.Errorf("%w: lease count %d: want 1 to %d", ErrBadRequest, a.Count, maxLeaseCount)
		}
		if s.worker(a.WorkerID) == nil {
			return nil, fmt.Errorf("%w: worker %d", ErrUnknownWorker, a.WorkerID)
		}
	}
	if b.Generation != s.Generation {
		return nil, fmt.Errorf("%w: generation %d, current %d", ErrStaleGeneration, b.Generation, s.Generation)
	}
	if b.RequestID != "" {
		if w := s.worker(b.Asks[0].WorkerID); w.LastLeaseID == b.RequestID {
			return s.replayLease(b), nil
		}
	}
	reply := &LeaseReply{Generation: s.Generation, Grants: make([]LeaseGrant, 0, len(b.Asks))}
	if s.JobState != JobRunning {
		reply.Complete = s.JobState == JobCompleted
		if !reply.Complete {
			return nil, fmt.Errorf("%w: job is %s", ErrJobNotRunning, s.JobState)
		}
		for _, a := range b.Asks {
			reply.Grants = append(reply.Grants, LeaseGrant{WorkerID: a.WorkerID, Units: []UnitLease{}})
		}
		return reply, nil
	}
	for _, a := range b.Asks {
		w := s.worker(a.WorkerID)
		rank := s.rank(a.WorkerID)
		g := LeaseGrant{WorkerID: a.WorkerID, Units: []UnitLease{}}
		refs := s.pickUnits(rank, a.Count)
		for _, ref := range refs {
			u := s.unit(ref.Epoch, ref.Unit)
			u.State, u.Worker, u.Gen, u.Pin = UnitLeased, a.WorkerID, s.Generation, 0
			g.Units = append(g.Units, UnitLease{Epoch: ref.Epoch, Unit: ref.Unit, Pairs: u.Pairs, Offset: u.Offset})
		}
		w.LastLeaseID, w.LastLease = b.RequestID, refs
		reply.Grants = append(reply.Grants, g)
	}
	reply.Exhausted = !s.anyPending()
	return reply, nil
}

// pickUnits chooses up to n pending units for rank: first those pinned to it, then unpinned ones
// (and ones pinned to a rank the generation does not have), lowest epoch and id first.
func (s *State) pickUnits(rank, n int) []UnitRef {
	var refs []UnitRef
	pinned := func(u *Unit) bool { return u.Pin > 0 && int(u.Pin-1) < len(s.Members) }
	for pass := 0; pass < 2 && len(refs) < n; pass++ {
		for _, e := range s.Epochs {
			for i := range e.Units {
				u := &e.Units[i]
				if u.State != UnitPending {
					continue
				}
				mine := pass == 0 && u.Pin == int32(rank)+1
				free := pass == 1 && !pinned(u)
				if (mine || free) && !containsRef(refs, e.Number, uint32(i)) {
					refs = append(refs, UnitRef{Epoch: e.Number, Unit: uint32(i)})
					if len(refs) == n {
						return refs
					}
				}
			}
		}
	}
	return refs
}

func containsRef(refs []UnitRef, epoch uint64, unit uint32) bool {
	for _, r := range refs {
		if r.Epoch == epoch && r.Unit == unit {
			return true
		}
	}
	return false
}

func (s *State) anyPending() bool {
	for _, e := range s.Epochs {
		for i := range e.Units {
			if e.Units[i].State == UnitPending {
				return true
			}
		}
	}
	return false
}

// replayLease answers a retried lease request with what the first one granted.
func (s *State) replayLease(b *LeaseRequest) *LeaseReply {
	reply := &LeaseReply{Generation: s.Generation}
	for _, a := range b.Asks {
		g := LeaseGrant{WorkerID: a.WorkerID, Units: []UnitLease{}}
		for _, ref := range s.worker(a.WorkerID).LastLease {
			if u := s.unit(ref.Epoch, ref.Unit); u != nil {
				g.Units = append(g.Units, UnitLease{Epoch: ref.Epoch, Unit: ref.Unit, Pairs: u.Pairs, Offset: u.Offset})
			}
		}
		reply.Grants = append(reply.Grants, g)
	}
	return reply
}

func validCursors(cs []RankCursor) error {
	seen := make([]bool, len(cs))
	for _, c := range cs {
		if c.Rank < 0 || c.Rank >= len(cs) || seen[c.Rank] {
			return fmt.Errorf("%w: cursor ranks must be 0..%d, each once", ErrBadRequest, len(cs)-1)
		}
		seen[c.Rank] = true
		if c.Unit < -1 || c.Unit >= maxUnitsPerEpoch {
			return fmt.Errorf("%w: cursor of rank %d: unit %d", ErrBadRequest, c.Rank, c.Unit)
		}
	}
	return nil
}

func sortedCursors(cs []RankCursor) []RankCursor {
	out := append([]RankCursor(nil), cs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	return out
}

func (s *State) applyProgress(atMS int64, b *ProgressRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if len(b.Cursors) == 0 || len(b.Cursors) > maxWorkersLimit {
		return nil, fmt.Errorf("%w: a progress report needs 1 to %d cursors", ErrBadRequest, maxWorkersLimit)
	}
	if len(b.Done) > maxUnitsPerEpoch {
		return nil, fmt.Errorf("%w: too many done units", ErrBadRequest)
	}
	if err := validCursors(b.Cursors); err != nil {
		return nil, err
	}
	if b.Generation > s.Generation {
		return nil, fmt.Errorf("%w: generation %d is in the future (current %d)", ErrConflict, b.Generation, s.Generation)
	}
	if b.Handover {
		if b.Generation < s.RollbackGen {
			return nil, fmt.Errorf("%w: generation %d was rolled back (timeline starts at %d)", ErrStaleGeneration, b.Generation, s.RollbackGen)
		}
	} else {
		if b.Generation != s.Generation {
			return nil, fmt.Errorf("%w: generation %d, current %d", ErrStaleGeneration, b.Generation, s.Generation)
		}
		if s.Handover {
			return nil, fmt.Errorf("%w: report the last committed step's cursors with handover set first", ErrHandoverPending)
		}
	}
	reply := &ProgressReply{Step: s.Step, Generation: s.Generation}
	switch {
	case b.Step < s.Step:
		return nil, fmt.Errorf("%w: step %d is behind the committed step %d", ErrConflict, b.Step, s.Step)
	case b.Step == s.Step && !b.Handover:
		if b.Checkpoint {
			s.announceCheckpoint(atMS)
		}
		return reply, nil // a retried report, or one that only announces a checkpoint
	}
	// Validate everything before changing anything.
	for _, d := range b.Done {
		u := s.unit(d.Epoch, d.Unit)
		switch {
		case u == nil:
			return nil, fmt.Errorf("%w: done unit %d of epoch %d does not exist", ErrConflict, d.Unit, d.Epoch)
		case d.Step > b.Step:
			return nil, fmt.Errorf("%w: unit %d/%d done at step %d, after the reported step %d", ErrBadRequest, d.Epoch, d.Unit, d.Step, b.Step)
		case u.State == UnitDone:
			if u.Step != d.Step {
				return nil, fmt.Errorf("%w: unit %d/%d was done at step %d already", ErrConflict, d.Epoch, d.Unit, u.Step)
			}
		case u.State == UnitPending:
			return nil, fmt.Errorf("%w: unit %d/%d is not leased", ErrConflict, d.Epoch, d.Unit)
		case d.Step <= s.Step:
			return nil, fmt.Errorf("%w: unit %d/%d done at step %d, not after the committed step %d", ErrConflict, d.Epoch, d.Unit, d.Step, s.Step)
		}
	}
	for _, c := range b.Cursors {
		if c.Unit < 0 {
			continue
		}
		u := s.unit(c.Epoch, uint32(c.Unit))
		switch {
		case u == nil:
			return nil, fmt.Errorf("%w: rank %d's unit %d of epoch %d does not exist", ErrConflict, c.Rank, c.Unit, c.Epoch)
		case c.Offset > u.Pairs:
			return nil, fmt.Errorf("%w: rank %d's offset %d is past unit %d/%d's %d pairs", ErrBadRequest, c.Rank, c.Offset, c.Epoch, c.Unit, u.Pairs)
		case u.State == UnitDone:
		case b.Handover && b.Step == s.Step && c.Offset == u.Offset && (u.State == UnitPending || u.Worker != c.WorkerID):
			// A handover repeated for the step already reported: since the first one the unit
			// went back to pending and may have been leased again (to a member that departed
			// before committing a step, which is why a handover is due again). The cursor names
			// the offset the first report set: nothing more was consumed, and the unit stays
			// as it is. Refusing it would refuse every handover of this ring for ever.
		case u.State == UnitPending:
			return nil, fmt.Errorf("%w: rank %d's unit %d/%d is not leased", ErrConflict, c.Rank, c.Epoch, c.Unit)
		case u.Worker != c.WorkerID:
			return nil, fmt.Errorf("%w: rank %d's unit %d/%d is leased to worker %d, not %d", ErrConflict, c.Rank, c.Epoch, c.Unit, u.Worker, c.WorkerID)
		case c.Offset < u.Offset:
			return nil, fmt.Errorf("%w: rank %d's offset in unit %d/%d goes back from %d to %d", ErrConflict, c.Rank, c.Epoch, c.Unit, u.Offset, c.Offset)
		}
	}
	for _, d := range b.Done {
		u := s.unit(d.Epoch, d.Unit)
		u.State, u.Step, u.Offset, u.Pin = UnitDone, d.Step, u.Pairs, 0
	}
	for _, c := range b.Cursors {
		if c.Unit < 0 {
			continue
		}
		if u := s.unit(c.Epoch, uint32(c.Unit)); u.State != UnitDone {
			u.Offset = c.Offset
		}
	}
	if b.Handover && s.Handover {
		// Every orphaned unit not finished above goes back to pending where its cursor left it:
		// a departed member that was not in the reporting ring never stepped on its units.
		for _, e := range s.Epochs {
			for i := range e.Units {
				if u := &e.Units[i]; u.State == UnitOrphaned {
					u.State, u.Worker, u.Gen = UnitPending, 0, 0
				}
			}
		}
		s.Handover = false
	}
	s.Step = b.Step
	s.Cursors = sortedCursors(b.Cursors)
	s.LastProgressAtMS = atMS
	s.Restore = nil
	s.refreshEpochs()
	if b.Checkpoint {
		s.announceCheckpoint(atMS)
	}
	s.pruneEpochs()
	reply.Step, reply.Generation = s.Step, s.Generation
	return reply, nil
}
