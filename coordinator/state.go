package coordinator

import "sort"

// StateVersion is the version of the snapshot format (State as JSON).
const StateVersion = 1

// State is everything the FSM holds. It is plain data: the FSM mutates it only inside Apply and
// Restore, and it serialises (JSON, slices only — no map, so no ordering question) byte for byte
// the same on every replica that applied the same log.
type State struct {
	Version  int      `json:"version"`
	Job      *JobSpec `json:"job,omitempty"`
	JobState JobState `json:"job_state"`
	Reason   string   `json:"reason,omitempty"`

	// Workers are the live members, ascending by ID; NextWorkerID the id the next join gets.
	Workers      []*Worker `json:"workers"`
	NextWorkerID uint64    `json:"next_worker_id"`

	// Generation is the ring generation; Members its worker ids in rank order.
	Generation     uint64   `json:"generation"`
	Members        []uint64 `json:"members"`
	GenerationAtMS int64    `json:"generation_at_ms"`
	// RollbackGen is the generation the last rollback created: steps committed by older
	// generations belong to an abandoned timeline.
	RollbackGen uint64 `json:"rollback_gen"`
	// Handover: units are orphaned (their worker departed) until the survivors report the last
	// committed step's cursors.
	Handover bool `json:"handover"`

	// Step is the last committed global step reported; Cursors every rank's cursor after it.
	Step             uint64       `json:"step"`
	Cursors          []RankCursor `json:"cursors,omitempty"`
	LastProgressAtMS int64        `json:"last_progress_at_ms"`
	// Restore is set while no ring holds the parameters (fresh job, or after a rollback).
	Restore *Restore `json:"restore,omitempty"`

	// Epochs are the epochs opened and not yet pruned, ascending; EpochsPruned counts the done
	// epochs dropped before them; NextEpoch is the number the next OpenEpoch must carry.
	Epochs       []*Epoch `json:"epochs"`
	EpochsPruned int      `json:"epochs_pruned"`
	NextEpoch    uint64   `json:"next_epoch"`

	// Checkpoints are the retained checkpoint records, ascending by step.
	Checkpoints []CheckpointRecord `json:"checkpoints"`
}

// Worker is a live member.
type Worker struct {
	ID         uint64 `json:"id"`
	Name       string `json:"name"`
	Instance   string `json:"instance"`
	Addr       string `json:"addr,omitempty"`
	Device     string `json:"device,omitempty"`
	Server     string `json:"server,omitempty"`
	JoinedAtMS int64  `json:"joined_at_ms"`
	JoinedGen  uint64 `json:"joined_gen"`
	// LastLeaseID and LastLease make a retried lease request idempotent.
	LastLeaseID string    `json:"last_lease_id,omitempty"`
	LastLease   []UnitRef `json:"last_lease,omitempty"`
	// Identity is the public nkey the worker joined with ("" on the shared subjects): only
	// requests carrying it act for this worker.
	Identity string `json:"identity,omitempty"`
}

// UnitRef names a unit.
type UnitRef struct {
	Epoch uint64 `json:"e"`
	Unit  uint32 `json:"u"`
}

// Epoch is an opened epoch: the state of each of its units, indexed by unit id.
type Epoch struct {
	Number   uint64 `json:"number"`
	Units    []Unit `json:"units"`
	Done     bool   `json:"done"`
	DoneStep uint64 `json:"done_step,omitempty"`
}

// UnitState is a work unit's state.
type UnitState uint8

const (
	// UnitPending: waiting to be leased (from Offset on).
	UnitPending UnitState = iota
	// UnitLeased: leased to Worker in generation Gen.
	UnitLeased
	// UnitOrphaned: its Worker departed; it waits for the survivors' handover report.
	UnitOrphaned
	// UnitDone: its last pair was consumed in committed step Step.
	UnitDone
)

func (s UnitState) String() string {
	switch s {
	case UnitPending:
		return "pending"
	case UnitLeased:
		return "leased"
	case UnitOrphaned:
		return "orphaned"
	case UnitDone:
		return "done"
	}
	return "invalid"
}

// Unit is one work unit. Short JSON names: an epoch may have 100,000 of them.
type Unit struct {
	Pairs  uint32    `json:"p"`
	State  UnitState `json:"s,omitempty"`
	Offset uint32    `json:"o,omitempty"`
	Worker uint64    `json:"w,omitempty"`
	Gen    uint64    `json:"g,omitempty"`
	Step   uint64    `json:"t,omitempty"`
	// Pin is rank+1 of the rank that held the unit at the checkpoint a rollback restored (0: none):
	// a lease for that rank gets it first, so a resumed run reads the same pairs on the same ranks.
	Pin int32 `json:"r,omitempty"`
}

// newState is the empty state.
func newState() *State {
	return &State{Version: StateVersion, Workers: []*Worker{}, Members: []uint64{}, Epochs: []*Epoch{}, Checkpoints: []CheckpointRecord{}}
}

// worker finds a live worker by id.
func (s *State) worker(id uint64) *Worker {
	i := sort.Search(len(s.Workers), func(i int) bool { return s.Workers[i].ID >= id })
	if i < len(s.Workers) && s.Workers[i].ID == id {
		return s.Workers[i]
	}
	return nil
}

// rank is a worker's rank in the current generation, or -1.
func (s *State) rank(id uint64) int {
	for r, m := range s.Members {
		if m == id {
			return r
		}
	}
	return -1
}

// epoch finds an open epoch by number.
func (s *State) epoch(n uint64) *Epoch {
	for _, e := range s.Epochs {
		if e.Number == n {
			return e
		}
	}
	return nil
}

// unit finds a unit, or nil.
func (s *State) unit(epoch uint64, id uint32) *Unit {
	e := s.epoch(epoch)
	if e == nil || int(id) >= len(e.Units) {
		return nil
	}
	return &e.Units[id]
}

// usable reports whether a checkpoint can be restored: durable or verified.
func (c *CheckpointRecord) usable() bool {
	return c.Status == CheckpointDurable || c.Status == CheckpointVerified
}

// latestUsable is the newest usable checkpoint record, or nil.
func (s *State) latestUsable() *CheckpointRecord {
	for i := len(s.Checkpoints) - 1; i >= 0; i-- {
		if s.Checkpoints[i].usable() {
			return &s.Checkpoints[i]
		}
	}
	return nil
}

// partials lists the units partly consumed now: in a rank's hands or returned by a handover.
func (s *State) partials() []UnitOffset {
	var out []UnitOffset
	for _, e := range s.Epochs {
		for i := range e.Units {
			if u := &e.Units[i]; u.State != UnitDone && u.Offset > 0 {
				out = append(out, UnitOffset{Epoch: e.Number, Unit: uint32(i), Offset: u.Offset})
			}
		}
	}
	return out
}

// checkpoint finds the record of a step.
func (s *State) checkpoint(step uint64) *CheckpointRecord {
	for i := range s.Checkpoints {
		if s.Checkpoints[i].Step == step {
			return &s.Checkpoints[i]
		}
	}
	return nil
}

// epochsDone counts the done epochs, pruned ones included.
func (s *State) epochsDone() int {
	n := s.EpochsPruned
	for _, e := range s.Epochs {
		if e.Done {
			n++
		}
	}
	return n
}

// generationInfo describes the current generation.
func (s *State) generationInfo() GenerationInfo {
	g := GenerationInfo{Number: s.Generation, Members: make([]Member, 0, len(s.Members)), HandoverPending: s.Handover}
	for r, id := range s.Members {
		w := s.worker(id)
		g.Members = append(g.Members, Member{WorkerID: id, Rank: r, Name: w.Name, Addr: w.Addr, Device: w.Device, Server: w.Server, Identity: w.Identity})
	}
	if s.Job != nil {
		g.Ready = len(s.Members) >= s.Job.MinWorkers
	}
	g.Restore = s.Restore.clone()
	g.RollbackGen = s.RollbackGen
	return g
}

func (r *Restore) clone() *Restore {
	if r == nil {
		return nil
	}
	c := *r
	c.Cursors = append([]RankCursor(nil), r.Cursors...)
	return &c
}

// unitCounts counts the units of the open epochs by state.
func (s *State) unitCounts() UnitCounts {
	var c UnitCounts
	for _, e := range s.Epochs {
		for i := range e.Units {
			switch e.Units[i].State {
			case UnitPending:
				c.Pending++
			case UnitLeased:
				c.Leased++
			case UnitOrphaned:
				c.Orphaned++
			case UnitDone:
				c.Done++
			}
		}
	}
	return c
}

// ConsumedPairs counts the pairs consumed by reported committed steps in the open epochs.
func (s *State) ConsumedPairs() uint64 {
	var n uint64
	for _, e := range s.Epochs {
		for i := range e.Units {
			n += uint64(e.Units[i].Offset)
		}
	}
	return n
}

// status builds a JobStatus (without the Raft fields).
func (s *State) status() JobStatus {
	st := JobStatus{
		State:      s.JobState,
		Reason:     s.Reason,
		Generation: s.generationInfo(),
		Step:       s.Step,
		EpochsDone: s.epochsDone(),
		Units:      s.unitCounts(),
		Cursors:    append([]RankCursor(nil), s.Cursors...),
	}
	if s.Job != nil {
		j := *s.Job
		st.Job = &j
	}
	st.Checkpoints = append(st.Checkpoints, s.Checkpoints...)
	st.Epoch = s.NextEpoch
	for _, e := range s.Epochs {
		if e.Done {
			continue
		}
		st.Epoch = e.Number
		var total, consumed uint64
		for i := range e.Units {
			total += uint64(e.Units[i].Pairs)
			consumed += uint64(e.Units[i].Offset)
		}
		if total > 0 {
			st.EpochProgress = float64(consumed) / float64(total)
		}
		break
	}
	if s.JobState == JobCompleted {
		st.EpochProgress = 1
	}
	return st
}
