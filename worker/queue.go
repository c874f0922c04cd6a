package worker

import "github.com/e2evlp/vlp/coordinator"

// Segment is a run of consecutive pairs of one unit that a rank consumed in
// one step.
type Segment struct {
	Epoch  uint64 `json:"e"`
	Unit   uint32 `json:"u"`
	Offset uint32 `json:"o"`
	Count  uint32 `json:"n"`
}

// unitQueue is one rank's leased units in the order it consumes them; the
// front unit's Offset is the next pair. Units leave the queue when their last
// pair is consumed. It is plain data, changed only when a step commits.
type unitQueue struct {
	units []coordinator.UnitLease
}

// remaining counts the pairs left in the queue.
func (q *unitQueue) remaining() int {
	n := 0
	for _, u := range q.units {
		n += int(u.Pairs - u.Offset)
	}
	return n
}

// push appends leased units (a unit with nothing left is ignored).
func (q *unitQueue) push(units ...coordinator.UnitLease) {
	for _, u := range units {
		if u.Offset < u.Pairs {
			q.units = append(q.units, u)
		}
	}
}

// peek returns the segments the next n pairs come from (fewer when the queue
// runs short), without consuming them.
func (q *unitQueue) peek(n int) []Segment {
	var segs []Segment
	for _, u := range q.units {
		if n <= 0 {
			break
		}
		c := min(n, int(u.Pairs-u.Offset))
		segs = append(segs, Segment{Epoch: u.Epoch, Unit: u.Unit, Offset: u.Offset, Count: uint32(c)})
		n -= c
	}
	return segs
}

// consume removes the pairs of segs (as returned by peek) from the front and
// returns the units they finished.
func (q *unitQueue) consume(segs []Segment) []coordinator.DoneUnit {
	var done []coordinator.DoneUnit
	for _, s := range segs {
		if len(q.units) == 0 {
			break
		}
		u := &q.units[0]
		u.Offset += s.Count
		if u.Offset >= u.Pairs {
			done = append(done, coordinator.DoneUnit{Epoch: u.Epoch, Unit: u.Unit})
			q.units = q.units[1:]
		}
	}
	return done
}

// cursor is where the queue stands: the front unit and its offset, or unit
// -1 when the queue is empty.
func (q *unitQueue) cursor(rank int, worker uint64) coordinator.RankCursor {
	c := coordinator.RankCursor{Rank: rank, WorkerID: worker, Unit: -1}
	if len(q.units) > 0 {
		u := q.units[0]
		c.Epoch, c.Unit, c.Offset = u.Epoch, int64(u.Unit), u.Offset
	}
	return c
}

// advanceTo moves the queue forward to a cursor some step committed on
// another rank: units before the cursor's unit were finished, the cursor's
// unit continues at its offset; an empty cursor (unit -1) finished every unit
// the queue held when that step began, so the queue empties. Units the
// cursor does not name stay untouched when the cursor's unit is not held.
func (q *unitQueue) advanceTo(c coordinator.RankCursor) {
	if c.Unit < 0 {
		q.units = nil
		return
	}
	for i, u := range q.units {
		if u.Epoch == c.Epoch && int64(u.Unit) == c.Unit {
			q.units = q.units[i:]
			q.units[0].Offset = c.Offset
			return
		}
	}
}

// pairs expands segments into pairs.
func pairsOf(segs []Segment) []Pair {
	var out []Pair
	for _, s := range segs {
		for i := uint32(0); i < s.Count; i++ {
			out = append(out, Pair{Epoch: s.Epoch, Unit: s.Unit, Offset: s.Offset + i})
		}
	}
	return out
}

// rankBatch is how many pairs rank takes of a global batch over size ranks:
// an even split, the first global%size ranks taking one more.
func rankBatch(global, size, rank int) int {
	b := global / size
	if rank < global%size {
		b++
	}
	return b
}
