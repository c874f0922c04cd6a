package coordinator

import (
	"fmt"
	"slices"
	"sort"
)

// This file holds the membership commands: join, leave and death.

// maxStringLen bounds every free-text field a request carries into the log.
const maxStringLen = 512

func (s *State) applyJoin(atMS int64, b *JoinRequest) (any, error) {
	if err := s.requireJob(); err != nil {
		return nil, err
	}
	if b.Instance == "" {
		return nil, fmt.Errorf("%w: join needs an instance nonce", ErrBadRequest)
	}
	if len(b.Name) > maxStringLen || len(b.Instance) > maxStringLen || len(b.Addr) > maxStringLen || len(b.Device) > maxStringLen || len(b.Server) > maxStringLen || len(b.Identity) > maxStringLen {
		return nil, fmt.Errorf("%w: a join field is longer than %d bytes", ErrBadRequest, maxStringLen)
	}
	for _, w := range s.Workers {
		if w.Instance == b.Instance {
			if w.Identity != b.Identity {
				return nil, fmt.Errorf("%w: instance %q joined as worker %d with another credential", ErrForbidden, b.Instance, w.ID)
			}
			return s.joinReply(w), nil // a retried join
		}
	}
	if s.JobState != JobRunning {
		return nil, fmt.Errorf("%w: job is %s", ErrJobNotRunning, s.JobState)
	}
	if len(s.Members) >= s.Job.MaxWorkers {
		return nil, fmt.Errorf("%w: %d members, max_workers %d", ErrJobFull, len(s.Members), s.Job.MaxWorkers)
	}
	s.NextWorkerID++
	w := &Worker{ID: s.NextWorkerID, Name: b.Name, Instance: b.Instance, Addr: b.Addr, Device: b.Device, Server: b.Server, Identity: b.Identity, JoinedAtMS: atMS}
	s.Workers = append(s.Workers, w) // ids only grow, so the slice stays sorted
	s.Members = slices.Insert(s.Members, s.topologySlot(w.Server), w.ID)
	s.bump(atMS)
	w.JoinedGen = s.Generation
	return s.joinReply(w), nil
}

func (s *State) joinReply(w *Worker) *JoinReply {
	return &JoinReply{
		WorkerID:   w.ID,
		Rank:       s.rank(w.ID),
		Generation: s.generationInfo(),
		Job:        *s.Job,
		Restore:    s.Restore.clone(),
	}
}

func (s *State) applyDeparture(atMS int64, b *Departure) (any, error) {
	if len(b.Reason) > maxStringLen {
		return nil, fmt.Errorf("%w: reason longer than %d bytes", ErrBadRequest, maxStringLen)
	}
	i := sort.Search(len(s.Workers), func(i int) bool { return s.Workers[i].ID >= b.WorkerID })
	if i == len(s.Workers) || s.Workers[i].ID != b.WorkerID {
		return nil, fmt.Errorf("%w: worker %d", ErrUnknownWorker, b.WorkerID)
	}
	s.Workers = append(s.Workers[:i], s.Workers[i+1:]...)
	if r := s.rank(b.WorkerID); r >= 0 {
		s.Members = append(s.Members[:r], s.Members[r+1:]...)
	}
	// Its units wait, orphaned, for the survivors to say how far the last committed step got.
	for _, e := range s.Epochs {
		for j := range e.Units {
			if u := &e.Units[j]; u.State == UnitLeased && u.Worker == b.WorkerID {
				u.State = UnitOrphaned
				s.Handover = true
			}
		}
	}
	s.bump(atMS)
	if len(s.Members) == 0 && s.JobState != JobCompleted {
		// Nobody holds the parameters any more: whatever was trained after the latest usable
		// checkpoint is lost, so the data it consumed goes back to pending. A completed job has
		// nothing left to train (its final report marked every unit done): it stays completed.
		s.rollbackTo(atMS, s.latestUsable())
	}
	return &LeaveReply{Generation: s.Generation}, nil
}

// topologySlot is where a member connected to NATS server `server` enters the
// ring: right after the last member on the same server, so that members of
// one server stay adjacent (allreduce.TopologyOrder) and a ring relayed by a
// NATS cluster crosses between servers once per server rather than up to
// once per hop; at the end when no member shares its server (or it names
// none). Members after the slot move up one rank in the next generation.
func (s *State) topologySlot(server string) int {
	if server == "" {
		return len(s.Members)
	}
	for r := len(s.Members) - 1; r >= 0; r-- {
		if w := s.worker(s.Members[r]); w != nil && w.Server == server {
			return r + 1
		}
	}
	return len(s.Members)
}
