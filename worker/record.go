package worker

import (
	"encoding/json"
	"fmt"

	"github.com/e2evlp/vlp/coordinator"
)

// stepMeta is what each rank contributes to a step's all-reduce besides its
// gradient: it rides on the first bucket and every rank receives every
// rank's, so all ranks commit the same record.
type stepMeta struct {
	Worker    uint64                 `json:"w"`
	Count     int                    `json:"c"`           // pairs this rank consumed
	Segments  []Segment              `json:"s,omitempty"` // which pairs
	After     coordinator.RankCursor `json:"a"`           // cursor after the step
	Remaining int                    `json:"r"`           // pairs left in the queue after it
	Done      []coordinator.DoneUnit `json:"d,omitempty"` // units this step finished (Step unset)
	Losses    Losses                 `json:"l,omitempty"`
	Acked     uint64                 `json:"k,omitempty"` // rank 0: last step the coordinator acknowledged
	Stopping  bool                   `json:"x,omitempty"` // this rank leaves after the step
	// JobStopped: this rank heard that the job was stopped. Every rank
	// finishes together once all of them have (a job stop is joint).
	JobStopped bool `json:"j,omitempty"`
}

// Commit is the record of one committed global step that every rank of the
// generation agrees on.
type Commit struct {
	Step       uint64
	Generation uint64
	// Ranks are every rank's contribution, index = rank.
	Ranks []RankCommit
	// Losses are the global means by name.
	Losses map[string]float64
	// Pairs is the global number of pairs consumed.
	Pairs int
}

// RankCommit is one rank's part of a committed step.
type RankCommit struct {
	Worker   uint64
	Segments []Segment
	After    coordinator.RankCursor
}

// record is the synchronised bookkeeping every rank of a generation holds
// identically: the last committed step and what the coordinator still has
// to hear about it. It travels in the state broadcast.
type record struct {
	Step uint64 `json:"step"`
	// Gen is the generation that committed Step (or restored it).
	Gen uint64 `json:"gen"`
	// Cursors are every rank's cursor after Step, in that generation's rank
	// order; Remaining the pairs each still held.
	Cursors   []coordinator.RankCursor `json:"cursors"`
	Remaining []int                    `json:"remaining"`
	// Done are finished units the coordinator has not acknowledged yet.
	Done []coordinator.DoneUnit `json:"done,omitempty"`
	// Acked is the last step the coordinator acknowledged a report of.
	Acked uint64 `json:"acked"`
	// Epoch is the epoch of the lowest cursor (for checkpoints and logs).
	Epoch uint64 `json:"epoch"`
	// Reclaim holds a restored checkpoint's cursors: before leasing anything
	// else, each rank leases back the unit its cursor names.
	Reclaim []coordinator.RankCursor `json:"reclaim,omitempty"`
}

// cursorOf returns the cursor the record holds for worker, if any.
func (r *record) cursorOf(worker uint64) (coordinator.RankCursor, bool) {
	for _, c := range r.Cursors {
		if c.WorkerID == worker {
			return c, true
		}
	}
	return coordinator.RankCursor{}, false
}

// commit folds a step's metas (index = rank) into the record.
func (r *record) commit(step, gen uint64, metas []stepMeta) {
	r.Step, r.Gen = step, gen
	r.Cursors = r.Cursors[:0]
	r.Remaining = r.Remaining[:0]
	epoch := uint64(0)
	first := true
	for rank, m := range metas {
		c := m.After
		c.Rank, c.WorkerID = rank, m.Worker
		r.Cursors = append(r.Cursors, c)
		r.Remaining = append(r.Remaining, m.Remaining)
		for _, d := range m.Done {
			d.Step = step
			r.Done = append(r.Done, d)
		}
		if c.Unit >= 0 && (first || c.Epoch < epoch) {
			epoch, first = c.Epoch, false
		}
		if rank == 0 && m.Acked > r.Acked {
			r.Acked = m.Acked
		}
	}
	if !first {
		r.Epoch = epoch
	}
	r.prune()
}

// acked drops the done units a report up to step covered.
func (r *record) acked(step uint64) {
	if step > r.Acked {
		r.Acked = step
	}
	r.prune()
}

func (r *record) prune() {
	out := r.Done[:0]
	for _, d := range r.Done {
		if d.Step > r.Acked {
			out = append(out, d)
		}
	}
	r.Done = out
}

// progress is the report of the record.
func (r *record) progress(handover bool) coordinator.ProgressRequest {
	cs := append([]coordinator.RankCursor(nil), r.Cursors...)
	if len(cs) == 0 {
		cs = []coordinator.RankCursor{{Rank: 0, Unit: -1}}
	}
	return coordinator.ProgressRequest{
		Generation: r.Gen, Step: r.Step, Handover: handover,
		Cursors: cs, Done: append([]coordinator.DoneUnit(nil), r.Done...),
	}
}

func encodeMeta(m stepMeta) ([]byte, error) { return json.Marshal(m) }

func decodeMetas(raw [][]byte) ([]stepMeta, error) {
	out := make([]stepMeta, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("%w: rank %d's step metadata: %v", ErrState, i, err)
		}
	}
	return out, nil
}
